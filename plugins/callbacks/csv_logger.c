/* csv_logger — the run's metrics as CSV in <run_dir>/<file> (default metrics.csv).
 *
 * One row at every epoch's end (after its evaluation); with every = "step" also one row every
 * every_steps optimizer steps. Columns: stage, epoch (0-based, within the stage), step (optimizer
 * steps done in the whole run), then every metric the host knows at the first row, in the host's
 * order. The columns are fixed by that first row: a metric the host adds later is not logged
 * (changing the header would break readers), while a known metric keeps its column by name.
 * Numbers are written with %.9g (round-trips a float); NaN (not measured yet) is an empty cell.
 * Each row is flushed, so a crash loses nothing written; the file is closed at the run's end.
 * A run that continues a checkpoint (runner --resume; host->resumed_at) keeps the header and the
 * rows up to the checkpoint's step, drops any written after it, and appends.
 */
#include <runner/plugin.h>

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct csv_logger {
    const rn_host *host;
    rn_ctx *ctx;
    char *path;
    int every_step;
    int64_t every_steps;
    FILE *f;
    char **columns; /* metric names fixed at the first row */
    size_t n_columns;
} csv_logger;

static const rn_setting csv_logger_settings[] = {
    {"file", RN_SETTING_STRING, 0, "metrics.csv", 1, 0, NULL,
     "file name inside the run directory (no '/' or '..')", 0},
    {"every", RN_SETTING_STRING, 0, "epoch", 1, 0, "epoch|step",
     "\"epoch\": a row per epoch; \"step\": also a row every every_steps steps", 0},
    {"every_steps", RN_SETTING_INT, 50, NULL, 1, 1e9, NULL,
     "optimizer steps between rows when every = \"step\"", 0},
};

static char *dup_string(const rn_host *host, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = host->alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int csv_logger_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    const char *file = host->get_string(ctx, "file");
    if (!file[0] || strchr(file, '/') || strstr(file, "..")) {
        host->set_error(ctx, "file must be a plain file name inside the run directory (no '/' "
                        "or '..'), got \"%s\"", file);
        return RN_ERR_CONFIG;
    }
    csv_logger *c = host->alloc(sizeof *c);
    if (!c) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    const char *dir = host->run_dir(ctx);
    size_t len = strlen(dir) + 1 + strlen(file) + 1;
    c->path = host->alloc(len);
    if (!c->path) {
        host->free(c);
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    snprintf(c->path, len, "%s/%s", dir, file);
    c->host = host;
    c->ctx = ctx;
    c->every_step = strcmp(host->get_string(ctx, "every"), "step") == 0;
    c->every_steps = host->get_int(ctx, "every_steps");
    *self = c;
    return RN_OK;
}

static void close_file(csv_logger *c)
{
    if (c->f) fclose(c->f);
    c->f = NULL;
}

static void csv_logger_destroy(void *self)
{
    csv_logger *c = self;
    if (!c) return;
    close_file(c);
    for (size_t i = 0; i < c->n_columns; i++) c->host->free(c->columns[i]);
    c->host->free(c->columns);
    c->host->free(c->path);
    c->host->free(c);
}

/* A cell, quoted when it holds a comma, a quote or a line break (RFC 4180). */
static void put_text(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_number(FILE *f, double v)
{
    if (!isnan(v)) fprintf(f, "%.9g", v);
}

/* The step column of a data row: the field after the second comma outside quotes. */
static long long row_step(const char *line)
{
    int commas = 0, quoted = 0;
    for (const char *p = line; *p; p++) {
        if (*p == '"') quoted = !quoted;
        if (*p == ',' && !quoted && ++commas == 2) return strtoll(p + 1, NULL, 10);
    }
    return -1;
}

/* Resuming: the columns are the header's (after stage,epoch,step), whatever metrics exist now,
 * so that appended rows line up with the rows kept. */
static int columns_from_header(csv_logger *c, const char *line)
{
    for (size_t i = 0; i < c->n_columns; i++) c->host->free(c->columns[i]);
    c->n_columns = 0;
    size_t cap = 1;
    for (const char *p = line; *p; p++) cap += *p == ',';
    c->host->free(c->columns);
    c->columns = c->host->alloc(cap * sizeof *c->columns);
    if (!c->columns) return RN_ERR_NOMEM;
    char cell[1024];
    size_t k = 0;
    int field = 0, quoted = 0;
    for (const char *p = line;; p++) {
        int end = !*p || *p == '\n' || *p == '\r';
        if (!end && *p == '"') {
            if (quoted && p[1] == '"') {
                if (k + 1 < sizeof cell) cell[k++] = '"';
                p++;
            } else {
                quoted = !quoted;
            }
            continue;
        }
        if (end || (*p == ',' && !quoted)) {
            cell[k] = 0;
            if (field++ >= 3 && !(c->columns[c->n_columns++] = dup_string(c->host, cell)))
                return RN_ERR_NOMEM;
            k = 0;
            if (end) break;
            continue;
        }
        if (k + 1 < sizeof cell) cell[k++] = *p;
    }
    return RN_OK;
}

/* Resuming: rewrites the file with its header and the rows of steps <= step (through a
 * temporary file and a rename, so a failure leaves it as it was), then opens it for appending.
 * Returns 0 when done, 1 when there is no file to continue (start afresh), or an error. */
static int keep_rows_until(csv_logger *c, int64_t step)
{
    FILE *in = fopen(c->path, "r");
    if (!in) return 1;
    size_t len = strlen(c->path) + 8;
    char *tmp = c->host->alloc(len), line[1 << 16];
    FILE *out = tmp ? (snprintf(tmp, len, "%s.tmp", c->path), fopen(tmp, "w")) : NULL;
    int rc = RN_ERR, header = 1;
    if (!out) goto done;
    while (fgets(line, sizeof line, in)) {
        if (header && columns_from_header(c, line) != RN_OK) {
            fclose(out);
            goto done;
        }
        if (header || row_step(line) <= step) fputs(line, out);
        header = 0;
    }
    if (fclose(out) == 0 && !ferror(in) && rename(tmp, c->path) == 0) rc = 0;
    out = NULL;
done:
    fclose(in);
    if (rc) {
        if (tmp) remove(tmp);
        c->host->set_error(c->ctx, "cannot rewrite %s to continue it", c->path);
    } else if (!(c->f = fopen(c->path, "a"))) {
        c->host->set_error(c->ctx, "cannot append to %s", c->path);
        rc = RN_ERR;
    }
    c->host->free(tmp);
    return rc;
}

/* Opens the file and fixes the columns to the metrics known now. */
static int start_file(csv_logger *c)
{
    size_t n = c->host->metric_count(c->ctx);
    c->columns = c->host->alloc((n ? n : 1) * sizeof *c->columns);
    if (!c->columns) goto nomem;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        double v;
        if (!c->host->metric_at(c->ctx, i, &name, &v)) break;
        c->columns[i] = dup_string(c->host, name);
        if (!c->columns[i]) goto nomem;
        c->n_columns = i + 1;
    }
    int64_t resumed = c->host->struct_size >= offsetof(rn_host, resumed_at) +
                                                  sizeof c->host->resumed_at
                          ? c->host->resumed_at(c->ctx) : -1;
    if (resumed >= 0) {
        int rc = keep_rows_until(c, resumed);
        if (rc <= 0) return rc; /* kept and reopened for appending (0), or an error */
    }
    c->f = fopen(c->path, "w");
    if (!c->f) {
        c->host->set_error(c->ctx, "cannot create %s", c->path);
        return RN_ERR;
    }
    fputs("stage,epoch,step", c->f);
    for (size_t i = 0; i < c->n_columns; i++) {
        fputc(',', c->f);
        put_text(c->f, c->columns[i]);
    }
    fputc('\n', c->f);
    return RN_OK;
nomem:
    c->host->set_error(c->ctx, "out of memory");
    return RN_ERR_NOMEM;
}

static int write_row(csv_logger *c, const rn_event *e)
{
    if (!c->f && !c->columns) {
        int rc = start_file(c);
        if (rc) return rc;
    }
    if (!c->f) return RN_CONTINUE; /* closed at the run's end */
    put_text(c->f, e->stage ? e->stage : "");
    fprintf(c->f, ",%lld,%lld", (long long)e->epoch, (long long)e->global_step);
    for (size_t k = 0; k < c->n_columns; k++) {
        double v = NAN;
        if (!c->host->metric(c->ctx, c->columns[k], &v)) v = NAN;
        fputc(',', c->f);
        put_number(c->f, v);
    }
    fputc('\n', c->f);
    if (fflush(c->f) != 0 || ferror(c->f)) {
        c->host->set_error(c->ctx, "cannot write %s", c->path);
        return RN_ERR;
    }
    return RN_CONTINUE;
}

static int csv_logger_step_end(void *self, const rn_event *e)
{
    csv_logger *c = self;
    if (!c->every_step || e->step <= 0 || e->step % c->every_steps != 0) return RN_CONTINUE;
    return write_row(c, e);
}

static int csv_logger_epoch_end(void *self, const rn_event *e)
{
    return write_row(self, e);
}

static int csv_logger_run_end(void *self, const rn_event *e)
{
    close_file(self);
    return RN_CONTINUE;
}

static const rn_callback_api csv_logger_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_step_end = csv_logger_step_end,
    .on_epoch_end = csv_logger_epoch_end,
    .on_run_end = csv_logger_run_end,
};

static const rn_plugin csv_logger_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = "csv_logger",
    .version = "1.0.0",
    .summary = "writes the metrics to <run_dir>/metrics.csv, one row per epoch (or step)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = csv_logger_settings,
    .n_settings = sizeof csv_logger_settings / sizeof csv_logger_settings[0],
    .create = csv_logger_create,
    .destroy = csv_logger_destroy,
    .api = &csv_logger_api,
};

static const rn_plugin *const csv_logger_plugins[] = {&csv_logger_plugin};

static const rn_library csv_logger_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = csv_logger_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &csv_logger_library : NULL;
}
