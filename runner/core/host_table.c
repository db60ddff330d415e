/* The rn_host function table: what a plugin may ask of the runner. */
#include "plugin_ctx.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const rn_setting *rn_find_setting(const rn_plugin *p, const char *key, size_t *index)
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
    if (!rn_find_setting(ctx->plugin, key, &i)) {
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

/* The metrics belong to the training thread; augment plugins run on the loader thread, so they
 * see none (reading them there would race with the training thread's updates). */
static const rn_metrics *ctx_metrics(const rn_ctx *ctx)
{
    if (!ctx->run || ctx->plugin->kind == RN_KIND_AUGMENT) return NULL;
    return ctx->run->metrics;
}

static size_t host_metric_count(rn_ctx *ctx)
{
    const rn_metrics *m = ctx_metrics(ctx);
    return m ? m->n : 0;
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
    const rn_metrics *m = ctx_metrics(ctx);
    return m ? rn_metrics_get(m, name, value) : 0;
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

static size_t host_metric_history(rn_ctx *ctx, const char *name, double *out, size_t cap)
{
    const rn_metrics *m = ctx_metrics(ctx);
    return m ? rn_metrics_history(m, name, out, cap) : 0;
}

/* ---- ABI 1.1: callbacks acting on the run through run->ops ----------------------------------- */

/* Whether ctx may act on the run; sets the error (naming the function) when it may not. */
static int may_act(rn_ctx *ctx, const char *fn)
{
    if (ctx->plugin->kind != RN_KIND_CALLBACK) {
        host_set_error(ctx, "host->%s is for callbacks only, not a %s", fn,
                       rn_kind_name(ctx->plugin->kind));
        return 0;
    }
    if (!ctx->run) {
        host_set_error(ctx, "host->%s: there is no run here (the instance was made without one)",
                       fn);
        return 0;
    }
    if (!ctx->run->ops) {
        host_set_error(ctx, "host->%s: there is no run to act on here (this host offers no run "
                       "actions)", fn);
        return 0;
    }
    return 1;
}

static int host_save_state(rn_ctx *ctx)
{
    if (!may_act(ctx, "save_state")) return RN_ERR;
    const rn_run_ops *ops = ctx->run->ops;
    char err[RN_ERRLEN] = "";
    if (ops->save_state(ctx->run->run, &ctx->state_copy, err, sizeof err) != 0) {
        /* A copy reused by a failed save may be half overwritten: drop it, so that a later
         * restore_state fails loudly instead of restoring a mix of two states. */
        if (ctx->state_copy) ops->free_state(ctx->state_copy);
        ctx->state_copy = NULL;
        host_set_error(ctx, "save_state: %s", err[0] ? err : "failed without a message");
        return RN_ERR;
    }
    return RN_OK;
}

static int host_restore_state(rn_ctx *ctx)
{
    if (!may_act(ctx, "restore_state")) return RN_ERR;
    if (!ctx->state_copy) {
        host_set_error(ctx, "restore_state: this instance has no saved state (call "
                       "host->save_state first)");
        return RN_ERR;
    }
    char err[RN_ERRLEN] = "";
    if (ctx->run->ops->restore_state(ctx->run->run, ctx->state_copy, err, sizeof err) != 0) {
        host_set_error(ctx, "restore_state: %s", err[0] ? err : "failed without a message");
        return RN_ERR;
    }
    return RN_OK;
}

/* A plain file name inside the run directory: no '/', no leading '.', ends in ".safetensors". */
static int checkpoint_name_ok(const char *name)
{
    static const char suffix[] = ".safetensors";
    size_t n = name ? strlen(name) : 0, m = sizeof suffix - 1;
    return n > m && n <= 255 && name[0] != '.' && !strchr(name, '/') &&
           strcmp(name + n - m, suffix) == 0;
}

static int host_write_checkpoint(rn_ctx *ctx, const char *name)
{
    if (!may_act(ctx, "write_checkpoint")) return RN_ERR;
    if (!checkpoint_name_ok(name)) {
        host_set_error(ctx, "write_checkpoint: expected a plain file name ending in "
                       "\".safetensors\" (no '/', not starting with '.'), got \"%s\"",
                       name ? name : "(null)");
        return RN_ERR;
    }
    char err[RN_ERRLEN] = "";
    if (ctx->run->ops->write_checkpoint(ctx->run->run, name, err, sizeof err) != 0) {
        host_set_error(ctx, "write_checkpoint %s: %s", name,
                       err[0] ? err : "failed without a message");
        return RN_ERR;
    }
    return RN_OK;
}

static int host_scale_lr(rn_ctx *ctx, double factor)
{
    if (!may_act(ctx, "scale_lr")) return RN_ERR;
    if (!(factor > 0) || !isfinite(factor)) {
        host_set_error(ctx, "scale_lr: expected a finite factor > 0, got %g", factor);
        return RN_ERR;
    }
    ctx->run->ops->scale_lr(ctx->run->run, factor);
    return RN_OK;
}

/* Refused calls return 0 (no groups) rather than RN_ERR, so a caller testing the result as a
 * boolean never reads outputs that were not written. */
static size_t host_group_count(rn_ctx *ctx)
{
    if (!may_act(ctx, "group_count")) return 0;
    return ctx->run->ops->group_count(ctx->run->run);
}

static int host_group_at(rn_ctx *ctx, size_t i, const char **name, double *lr, double *momentum)
{
    if (!may_act(ctx, "group_at")) return 0;
    const char *n = NULL;
    double l = NAN, mom = NAN;
    if (!ctx->run->ops->group_at(ctx->run->run, i, &n, &l, &mom)) return 0;
    if (name) *name = n;
    if (lr) *lr = l;
    if (momentum) *momentum = mom;
    return 1;
}

static int metric_name_ok(const char *name)
{
    if (!name || !name[0]) return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.'))
            return 0;
    return 1;
}

/* Acts on the metrics, not through ops: a run view with metrics is enough. */
static int host_set_metric(rn_ctx *ctx, const char *name, double value)
{
    if (ctx->plugin->kind != RN_KIND_CALLBACK) {
        host_set_error(ctx, "host->set_metric is for callbacks only, not a %s",
                       rn_kind_name(ctx->plugin->kind));
        return RN_ERR;
    }
    if (!ctx->run || !ctx->run->metrics) {
        host_set_error(ctx, "host->set_metric: there is no run here (the instance was made "
                       "without one)");
        return RN_ERR;
    }
    if (!metric_name_ok(name)) {
        host_set_error(ctx, "set_metric: expected a metric name of letters, digits, '_' and '.', "
                       "got \"%s\"", name ? name : "(null)");
        return RN_ERR;
    }
    if (rn_metrics_set(ctx->run->metrics, name, value) != 0) {
        host_set_error(ctx, "set_metric %s: out of memory", name);
        return RN_ERR_NOMEM;
    }
    return RN_OK;
}

static int64_t host_resumed_at(rn_ctx *ctx)
{
    return ctx->run && ctx->run->resumed ? ctx->run->resumed_step : -1;
}

/* An undeclared key is reported like the other getters'; another type just holds no numbers. */
static size_t host_get_numbers(rn_ctx *ctx, const char *key, double *out, size_t cap)
{
    size_t i;
    const rn_setting *s = rn_find_setting(ctx->plugin, key, &i);
    if (!s) {
        ctx_value(ctx, key);
        return 0;
    }
    if (s->type != RN_SETTING_NUMBERS) return 0;
    const rn_setting_value *v = &ctx->values[i];
    for (size_t k = 0; k < v->n_numbers && k < cap; k++) out[k] = v->numbers[k];
    return v->n_numbers;
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
    .metric_history = host_metric_history,
    .save_state = host_save_state,
    .restore_state = host_restore_state,
    .write_checkpoint = host_write_checkpoint,
    .scale_lr = host_scale_lr,
    .group_count = host_group_count,
    .group_at = host_group_at,
    .set_metric = host_set_metric,
    .resumed_at = host_resumed_at,
    .get_numbers = host_get_numbers,
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
