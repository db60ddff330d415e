/* The plugin host: scans plugin directories, checks each library's ABI, validates settings against
 * a plugin's schema, and hands plugins the rn_host function table. */
#include "plugin_host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RN_ERRLEN 512

/* One setting's resolved value. */
typedef struct rn_setting_value {
    double number; /* NUMBER, INT, BOOL */
    char *string;  /* STRING (owned) */
    int given;     /* set by the recipe (not the schema's default) */
} rn_setting_value;

struct rn_ctx {
    const rn_plugin *plugin;
    rn_setting_value *values; /* parallel to plugin->settings */
    const rn_run_view *run;
    uint64_t seed;
    char error[RN_ERRLEN];
};

typedef struct rn_entry {
    const rn_plugin *plugin;
    char *path;
} rn_entry;

struct rn_registry {
    void **handles;
    size_t n_handles;
    rn_entry *entries;
    size_t n_entries;
};

/* ---- the host table ------------------------------------------------------------------------ */

static const rn_setting *find_setting(const rn_plugin *p, const char *key, size_t *index)
{
    for (size_t i = 0; i < p->n_settings; i++) {
        if (strcmp(p->settings[i].name, key) == 0) {
            if (index) *index = i;
            return &p->settings[i];
        }
    }
    return NULL;
}

/* A getter for an undeclared key is a plugin bug: report it through the error buffer. */
static const rn_setting_value *ctx_value(rn_ctx *ctx, const char *key)
{
    size_t i;
    if (!find_setting(ctx->plugin, key, &i)) {
        if (!ctx->error[0])
            snprintf(ctx->error, sizeof ctx->error, "%s: asked for undeclared setting \"%s\"",
                     ctx->plugin->id, key);
        return NULL;
    }
    return &ctx->values[i];
}

static double host_get_number(rn_ctx *ctx, const char *key)
{
    const rn_setting_value *v = ctx_value(ctx, key);
    return v ? v->number : NAN;
}

static int64_t host_get_int(rn_ctx *ctx, const char *key)
{
    const rn_setting_value *v = ctx_value(ctx, key);
    return v ? (int64_t)v->number : 0;
}

static int host_get_bool(rn_ctx *ctx, const char *key)
{
    const rn_setting_value *v = ctx_value(ctx, key);
    return v ? v->number != 0 : 0;
}

static const char *host_get_string(rn_ctx *ctx, const char *key)
{
    const rn_setting_value *v = ctx_value(ctx, key);
    return v && v->string ? v->string : "";
}

static void host_set_error(rn_ctx *ctx, const char *fmt, ...)
{
    if (ctx->error[0]) return; /* keep the first, most specific line */
    int off = snprintf(ctx->error, sizeof ctx->error, "%s: ", ctx->plugin->id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error + off, sizeof ctx->error - (size_t)off, fmt, ap);
    va_end(ap);
}

static void host_log(rn_ctx *ctx, rn_log_level level, const char *fmt, ...)
{
    FILE *out = level >= RN_LOG_WARN ? stderr : stdout;
    fprintf(out, "[%s] ", ctx->plugin->id);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

static void *host_alloc(size_t bytes) { return calloc(1, bytes ? bytes : 1); }
static void host_free(void *p) { free(p); }
static const char *host_run_dir(rn_ctx *ctx) { return ctx->run ? ctx->run->run_dir : "."; }
static uint64_t host_seed(rn_ctx *ctx) { return ctx->seed; }
static int host_is_tty(rn_ctx *ctx) { return ctx->run ? ctx->run->is_tty : 0; }

static size_t host_metric_count(rn_ctx *ctx)
{
    return ctx->run && ctx->run->metrics ? ctx->run->metrics->n : 0;
}

static int host_metric_at(rn_ctx *ctx, size_t i, const char **name, double *value)
{
    if (i >= host_metric_count(ctx)) return 0;
    *name = ctx->run->metrics->names[i];
    *value = ctx->run->metrics->values[i];
    return 1;
}

static int host_metric(rn_ctx *ctx, const char *name, double *value)
{
    if (!ctx->run || !ctx->run->metrics) return 0;
    return rn_metrics_get(ctx->run->metrics, name, value);
}

static void host_parallel_for(int64_t n, void (*fn)(void *, int64_t, int64_t), void *arg)
{
    if (n <= 0) return;
    /* Chunks of at least 32k elements: below that a thread team costs more than it saves. */
    const int64_t grain = 1 << 15;
    int64_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t begin = c * grain, end = begin + grain < n ? begin + grain : n;
        fn(arg, begin, end);
    }
}

static int host_has_setting(rn_ctx *ctx, const char *key)
{
    const rn_setting_value *v = ctx_value(ctx, key);
    return v ? v->given : 0;
}

static const rn_host host_table = {
    .struct_size = sizeof(rn_host),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .get_number = host_get_number,
    .get_int = host_get_int,
    .get_bool = host_get_bool,
    .get_string = host_get_string,
    .set_error = host_set_error,
    .log = host_log,
    .alloc = host_alloc,
    .free = host_free,
    .run_dir = host_run_dir,
    .seed = host_seed,
    .metric_count = host_metric_count,
    .metric_at = host_metric_at,
    .metric = host_metric,
    .is_tty = host_is_tty,
    .parallel_for = host_parallel_for,
    .has_setting = host_has_setting,
};

const rn_host *rn_host_table(void) { return &host_table; }

const char *rn_kind_name(rn_plugin_kind kind)
{
    switch (kind) {
    case RN_KIND_OPTIMIZER: return "optimizer";
    case RN_KIND_SCHEDULER: return "scheduler";
    case RN_KIND_AUGMENT: return "augment";
    case RN_KIND_CALLBACK: return "callback";
    }
    return "unknown";
}

/* ---- scanning ------------------------------------------------------------------------------ */

static size_t api_size_for(rn_plugin_kind kind)
{
    switch (kind) {
    case RN_KIND_OPTIMIZER: return sizeof(rn_optimizer_api);
    case RN_KIND_SCHEDULER: return sizeof(rn_scheduler_api);
    case RN_KIND_AUGMENT: return sizeof(rn_augment_api);
    case RN_KIND_CALLBACK: return sizeof(rn_callback_api);
    }
    return 0;
}

/* The first field of every kind's api is its struct_size; a smaller one than this build knows is
 * an older minor version that lacks the functions we call. */
static int check_plugin(const rn_plugin *p, const char *path, char *err, size_t errlen)
{
    if (!p || p->struct_size < sizeof(rn_plugin)) {
        snprintf(err, errlen, "%s: plugin descriptor too small (struct_size %zu, expected %zu)",
                 path, p ? p->struct_size : 0, sizeof(rn_plugin));
        return -1;
    }
    if (!p->id || !p->id[0]) {
        snprintf(err, errlen, "%s: a plugin has no id", path);
        return -1;
    }
    size_t need = api_size_for(p->kind);
    if (!need) {
        snprintf(err, errlen, "%s: plugin \"%s\" has unknown kind %d", path, p->id, (int)p->kind);
        return -1;
    }
    if (!p->create || !p->destroy || !p->api || *(const size_t *)p->api < need) {
        snprintf(err, errlen, "%s: plugin \"%s\" lacks create/destroy or its %s api is incomplete",
                 path, p->id, rn_kind_name(p->kind));
        return -1;
    }
    if (p->n_settings && !p->settings) {
        snprintf(err, errlen, "%s: plugin \"%s\" declares %zu settings but no table", path, p->id,
                 p->n_settings);
        return -1;
    }
    for (size_t i = 0; i < p->n_settings; i++) {
        const rn_setting *s = &p->settings[i];
        if (!s->name || s->type < RN_SETTING_NUMBER || s->type > RN_SETTING_STRING) {
            snprintf(err, errlen, "%s: plugin \"%s\" setting %zu is malformed", path, p->id, i);
            return -1;
        }
    }
    return 0;
}

static int add_library(rn_registry *r, const char *path, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "%s: cannot load plugin: %s", path, dlerror());
        return -1;
    }
    void **handles = realloc(r->handles, (r->n_handles + 1) * sizeof *handles);
    if (!handles) {
        dlclose(h);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    r->handles = handles;
    r->handles[r->n_handles++] = h;

    rn_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, "rn_plugin_entry");
    if (!entry) {
        snprintf(err, errlen, "%s: no rn_plugin_entry symbol (not a runner plugin?)", path);
        return -1;
    }
    const rn_library *lib = entry(&host_table);
    if (!lib) {
        snprintf(err, errlen, "%s: the plugin refused this runner's ABI %d.%d", path,
                 RN_ABI_MAJOR, RN_ABI_MINOR);
        return -1;
    }
    if (lib->abi_major != RN_ABI_MAJOR) {
        snprintf(err, errlen, "%s: plugin ABI major %u, this runner speaks %d (rebuild it against "
                 "this runner's include/runner/plugin.h)", path, lib->abi_major, RN_ABI_MAJOR);
        return -1;
    }
    if (lib->struct_size < sizeof(rn_library)) {
        snprintf(err, errlen, "%s: library descriptor too small (struct_size %zu, expected %zu)",
                 path, lib->struct_size, sizeof(rn_library));
        return -1;
    }
    if (!lib->build_signature || strcmp(lib->build_signature, RN_BUILD_SIGNATURE_CPU) != 0) {
        snprintf(err, errlen, "%s: built for \"%s\", this runner is \"%s\"", path,
                 lib->build_signature ? lib->build_signature : "(none)", RN_BUILD_SIGNATURE_CPU);
        return -1;
    }
    for (size_t i = 0; i < lib->n_plugins; i++) {
        const rn_plugin *p = lib->plugins[i];
        if (check_plugin(p, path, err, errlen)) return -1;
        for (size_t j = 0; j < r->n_entries; j++) {
            if (strcmp(r->entries[j].plugin->id, p->id) == 0) {
                snprintf(err, errlen, "%s: duplicate plugin id \"%s\" (already in %s)", path,
                         p->id, r->entries[j].path);
                return -1;
            }
        }
        rn_entry *entries = realloc(r->entries, (r->n_entries + 1) * sizeof *entries);
        if (!entries) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        r->entries = entries;
        r->entries[r->n_entries].plugin = p;
        r->entries[r->n_entries].path = strdup(path);
        r->n_entries++;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const rn_entry *x = a, *y = b;
    if (x->plugin->kind != y->plugin->kind) return (int)x->plugin->kind - (int)y->plugin->kind;
    return strcmp(x->plugin->id, y->plugin->id);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Scans one directory, in name order so errors and ids are reported deterministically. */
static int scan_dir(rn_registry *r, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return 0; /* a missing directory on the search path is not an error */
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".so")) continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown) { rc = -1; snprintf(err, errlen, "%s: out of memory", dir); break; }
        names = grown;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = add_library(r, path, err, errlen);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int rn_registry_scan(rn_registry **out, const char *const *dirs, size_t n_dirs, char *err,
                     size_t errlen)
{
    rn_registry *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n_dirs; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        if (scan_dir(r, dirs[i], err, errlen)) {
            rn_registry_free(r);
            return -1;
        }
    }
    if (r->n_entries) qsort(r->entries, r->n_entries, sizeof *r->entries, cmp_entry);
    *out = r;
    return 0;
}

void rn_registry_free(rn_registry *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_entries; i++) free(r->entries[i].path);
    free(r->entries);
    /* Unload in reverse order of loading. */
    for (size_t i = r->n_handles; i-- > 0;) dlclose(r->handles[i]);
    free(r->handles);
    free(r);
}

size_t rn_registry_count(const rn_registry *r) { return r->n_entries; }

const rn_plugin *rn_registry_at(const rn_registry *r, size_t i, const char **path)
{
    if (i >= r->n_entries) return NULL;
    if (path) *path = r->entries[i].path;
    return r->entries[i].plugin;
}

const rn_plugin *rn_registry_find(const rn_registry *r, rn_plugin_kind kind, const char *id,
                                  const char *where, const char **path, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->n_entries; i++) {
        const rn_plugin *p = r->entries[i].plugin;
        if (p->kind == kind && strcmp(p->id, id) == 0) {
            if (path) *path = r->entries[i].path;
            return p;
        }
    }
    int off = snprintf(err, errlen, "%s: unknown %s \"%s\" (available:", where, rn_kind_name(kind),
                       id);
    int any = 0;
    for (size_t i = 0; i < r->n_entries && off > 0 && (size_t)off < errlen; i++) {
        if (r->entries[i].plugin->kind != kind) continue;
        off += snprintf(err + off, errlen - (size_t)off, "%s %s", any ? "," : "",
                        r->entries[i].plugin->id);
        any = 1;
    }
    if (off > 0 && (size_t)off < errlen)
        snprintf(err + off, errlen - (size_t)off, "%s)", any ? "" : " none");
    return NULL;
}

/* ---- settings validation ------------------------------------------------------------------- */

static const char *type_word(rn_setting_type t)
{
    switch (t) {
    case RN_SETTING_NUMBER: return "a number";
    case RN_SETTING_INT: return "an integer";
    case RN_SETTING_BOOL: return "a boolean";
    case RN_SETTING_STRING: return "a string";
    }
    return "?";
}

static int choice_ok(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, s, n) == 0) return 1;
        if (!bar) break;
        c = bar + 1;
    }
    return 0;
}

static void list_settings(const rn_plugin *p, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < p->n_settings && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", p->settings[i].name);
    if (!p->n_settings) snprintf(buf, len, "none");
}

/* Checks one recipe value against its schema entry and stores it. */
static int take_value(const rn_plugin *p, const rn_setting *s, const rn_value *v,
                      rn_setting_value *out, char *err, size_t errlen)
{
    char what[160];
    int range = s->min <= s->max;
    int lo_open = (s->flags & RN_SETTING_MIN_EXCLUSIVE) != 0;
    int hi_open = (s->flags & RN_SETTING_MAX_EXCLUSIVE) != 0;
    out->given = 1;
    switch (s->type) {
    case RN_SETTING_NUMBER:
    case RN_SETTING_INT: {
        int ok = v->type == RN_V_INT || v->type == RN_V_NUMBER;
        if (ok && s->type == RN_SETTING_INT && v->type == RN_V_NUMBER && v->n != floor(v->n))
            ok = 0;
        int outside = range && (v->n < s->min || v->n > s->max || (lo_open && v->n == s->min) ||
                                (hi_open && v->n == s->max));
        if (!ok || !isfinite(v->n) || outside) {
            if (range)
                snprintf(what, sizeof what, "%s in %c%g, %g%c", type_word(s->type),
                         lo_open ? '(' : '[', s->min, s->max, hi_open ? ')' : ']');
            else
                snprintf(what, sizeof what, "%s", type_word(s->type));
            if (ok) {
                snprintf(err, errlen, "%s: expected %s, got %.17g", v->path, what, v->n);
                return -1;
            }
            return rn_value_expected(v, what, err, errlen);
        }
        out->number = v->n;
        return 0;
    }
    case RN_SETTING_BOOL:
        if (v->type != RN_V_BOOL) return rn_value_expected(v, "a boolean", err, errlen);
        out->number = v->b;
        return 0;
    case RN_SETTING_STRING:
        if (v->type != RN_V_STRING) return rn_value_expected(v, "a string", err, errlen);
        if (s->choices && !choice_ok(s->choices, v->s)) {
            snprintf(what, sizeof what, "one of %s", s->choices);
            return rn_value_expected(v, what, err, errlen);
        }
        free(out->string);
        out->string = strdup(v->s);
        return 0;
    }
    (void)p;
    return -1;
}

static int apply_table(const rn_plugin *p, const rn_value *t, rn_setting_value *values,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        size_t k;
        const rn_setting *s = find_setting(p, t->keys[i], &k);
        if (!s) {
            char names[512];
            list_settings(p, names, sizeof names);
            snprintf(err, errlen, "%s: unknown setting of %s \"%s\" (settings: %s)",
                     t->fields[i]->path, rn_kind_name(p->kind), p->id, names);
            return -1;
        }
        if (take_value(p, s, t->fields[i], &values[k], err, errlen)) return -1;
    }
    return 0;
}

static void free_values(const rn_plugin *p, rn_setting_value *values)
{
    if (!values) return;
    for (size_t i = 0; i < p->n_settings; i++) free(values[i].string);
    free(values);
}

int rn_instance_create(rn_instance *inst, const rn_registry *reg, rn_plugin_kind kind,
                       const rn_value *spec, const rn_run_view *run, uint64_t slot,
                       char *err, size_t errlen)
{
    memset(inst, 0, sizeof *inst);
    const char *id = NULL;
    if (spec->type == RN_V_STRING) {
        id = spec->s;
    } else if (spec->type == RN_V_TABLE && spec->n_items >= 1 &&
               spec->items[0]->type == RN_V_STRING) {
        id = spec->items[0]->s;
        if (spec->n_items > 1) {
            char what[96];
            snprintf(what, sizeof what, "a named setting (%s = value)", rn_kind_name(kind));
            return rn_value_expected(spec->items[1], what, err, errlen);
        }
    } else {
        char what[128];
        snprintf(what, sizeof what, "a %s: a table like {\"id\", setting = value}",
                 rn_kind_name(kind));
        return rn_value_expected(spec, what, err, errlen);
    }
    const char *where = spec->path && spec->path[0] ? spec->path : "recipe";
    const char *path = NULL;
    const rn_plugin *p = rn_registry_find(reg, kind, id, where, &path, err, errlen);
    if (!p) return -1;

    rn_ctx *ctx = calloc(1, sizeof *ctx);
    rn_setting_value *values = calloc(p->n_settings ? p->n_settings : 1, sizeof *values);
    if (!ctx || !values) {
        free(ctx);
        free(values);
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    for (size_t i = 0; i < p->n_settings; i++) {
        values[i].number = p->settings[i].default_number;
        if (p->settings[i].type == RN_SETTING_STRING && p->settings[i].default_string)
            values[i].string = strdup(p->settings[i].default_string);
    }
    int rc = spec->type == RN_V_TABLE ? apply_table(p, spec, values, err, errlen) : 0;
    for (size_t i = 0; rc == 0 && i < p->n_settings; i++) {
        const rn_setting *st = &p->settings[i];
        int missing = (st->flags & RN_SETTING_REQUIRED) && !values[i].given;
        if (st->type == RN_SETTING_STRING && !values[i].string) missing = 1;
        if (missing) {
            snprintf(err, errlen, "%s.%s: missing (expected %s: %s)", where, st->name,
                     type_word(st->type), st->doc ? st->doc : "required");
            rc = -1;
        }
    }
    if (rc) {
        free_values(p, values);
        free(ctx);
        return -1;
    }
    ctx->plugin = p;
    ctx->values = values;
    ctx->run = run;
    ctx->seed = rn_mix64((run ? run->seed : 0) ^ rn_mix64(slot * 0x100 + (uint64_t)kind));

    void *self = NULL;
    if (p->create(&host_table, ctx, &self) != RN_OK) {
        snprintf(err, errlen, "%s: %s", where,
                 ctx->error[0] ? ctx->error : "plugin create failed without a message");
        free_values(p, values);
        free(ctx);
        return -1;
    }
    inst->plugin = p;
    inst->path = path;
    inst->self = self;
    inst->ctx = ctx;
    return 0;
}

void rn_instance_destroy(rn_instance *inst)
{
    if (!inst->plugin) return;
    inst->plugin->destroy(inst->self);
    free_values(inst->plugin, inst->ctx->values);
    free(inst->ctx);
    memset(inst, 0, sizeof *inst);
}

const char *rn_instance_error(const rn_instance *inst)
{
    return inst->ctx && inst->ctx->error[0] ? inst->ctx->error : "unknown plugin error";
}

int rn_instance_number(const rn_instance *inst, const char *key, double *out)
{
    size_t i;
    const rn_setting *s = find_setting(inst->plugin, key, &i);
    if (!s || s->type == RN_SETTING_STRING) return 0;
    *out = inst->ctx->values[i].number;
    return 1;
}

uint64_t rn_instance_seed(const rn_instance *inst) { return inst->ctx->seed; }
