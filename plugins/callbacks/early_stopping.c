/* early_stopping — stop a stage (or the run) when a monitored metric stops improving, and put
 * back the weights of its best epoch.
 *
 * PyTorch Lightning's EarlyStopping, checked once per epoch after the epoch's evaluation
 * (on_epoch_end), with the same rule, starting from best = +inf (min) / -inf (max), wait = 0:
 *
 *   not finite (check_finite)               -> stop now
 *   min: value + min_delta < best  or  max: value - min_delta > best
 *                                           -> improvement: best = value, wait = 0
 *   otherwise                               -> wait += 1; stop when wait >= patience
 *
 * so with patience 3 the stage stops at the 3rd epoch in a row without an improvement of more
 * than min_delta. The counters reset at every stage's beginning.
 *
 * Beyond Lightning:
 *  - mode "auto" (the default): max for a metric ending in "acc", "accuracy" or "f1", else min
 *    (Lightning's default is always "min").
 *  - ema > 0 compares an exponential moving average of the metric instead of the metric itself:
 *    m_t = ema * m_{t-1} + (1 - ema) * value_t, m_0 = 0, compared as m_t / (1 - ema^t) (bias
 *    corrected, so the first value is the metric itself); best is kept in the same terms.
 *  - restore_best (default true; Keras' restore_best_weights, default false there): the run's
 *    state is saved (host->save_state) at every improvement and put back (host->restore_state)
 *    when it stops, or when the stage ends without a stop, with a log line naming the epoch.
 *  - scope "run" stops the whole run (RN_STOP_RUN) instead of the stage (RN_STOP_STAGE).
 *  - check_finite = false: a non-finite value is not fed to the EMA and counts as an epoch
 *    without improvement.
 * A monitor the run does not have at a check is an error listing the metrics it has.
 *
 * Checkpointed state (state_save): the stage the counters belong to, best, wait, the EMA and its
 * count, the best epoch and whether it stopped; a resumed run decides as the uninterrupted one.
 * The saved weights are not part of it: after a resume, a restore needs a new improvement first
 * (until then the stage end logs that the best weights are not available and keeps the current
 * ones).
 */
#include "callback_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ES_ID "early_stopping"
#define ES_STATE_VERSION 1

/* What a checkpoint keeps. */
typedef struct es_state {
    cb_state_header header;
    int64_t stage;      /* stage index the counters belong to; -1 before the first check */
    double best;        /* best (smoothed) value of the stage; +-inf before the first check */
    int64_t wait;       /* checks since the last improvement */
    double ema;         /* biased moving average (ema > 0) */
    int64_t ema_n;      /* values averaged into it */
    int64_t best_epoch; /* 0-based epoch of the stage where best was seen; -1 for none */
    int64_t stopped;    /* 1 once it asked to stop in this stage */
} es_state;

typedef struct early_stopping {
    const rn_host *host;
    rn_ctx *ctx;
    char monitor[128];
    int max_mode, restore_best, stop_run, check_finite;
    int64_t patience;
    double min_delta, beta;
    es_state st;
    int have_copy; /* host->save_state holds the weights of st.best_epoch */
    int restored;  /* the best weights were put back in this stage */
} early_stopping;

static const rn_setting es_settings[] = {
    {"monitor", RN_SETTING_STRING, 0, "val.loss", 1, 0, NULL,
     "metric checked at the end of each epoch, e.g. val.loss, test.acc", 0},
    {"mode", RN_SETTING_STRING, 0, "auto", 1, 0, "auto|min|max",
     "min: should fall; max: should rise; auto: max for names ending in acc/accuracy/f1, else "
     "min", 0},
    {"patience", RN_SETTING_INT, 3, NULL, 0, 1e9, NULL,
     "epochs in a row without improvement after which it stops", 0},
    {"min_delta", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "an improvement must exceed this (absolute, in the metric's unit)", 0},
    {"ema", RN_SETTING_NUMBER, 0, NULL, 0, 1, NULL,
     "0: compare the metric itself; else beta of a bias-corrected moving average, in [0, 1)",
     RN_SETTING_MAX_EXCLUSIVE},
    {"restore_best", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,
     "save the state at each improvement and put it back when the stage stops or ends", 0},
    {"scope", RN_SETTING_STRING, 0, "stage", 1, 0, "stage|run",
     "stage: stop the stage (the next one runs); run: stop the whole run", 0},
    {"check_finite", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,
     "stop as soon as the metric is NaN or infinite", 0},
};

static void reset(early_stopping *s, int64_t stage)
{
    s->st.stage = stage;
    s->st.best = s->max_mode ? -INFINITY : INFINITY;
    s->st.wait = 0;
    s->st.ema = 0;
    s->st.ema_n = 0;
    s->st.best_epoch = -1;
    s->st.stopped = 0;
    s->have_copy = 0;
    s->restored = 0;
}

static int es_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    const char *monitor = host->get_string(ctx, "monitor");
    if (!monitor[0] || strlen(monitor) >= sizeof ((early_stopping *)0)->monitor) {
        host->set_error(ctx, "monitor: expected a metric name such as \"val.loss\" (at most 127 "
                        "characters), got \"%s\"", monitor);
        return RN_ERR_CONFIG;
    }
    early_stopping *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    snprintf(s->monitor, sizeof s->monitor, "%s", monitor);
    s->max_mode = cb_mode_is_max(host->get_string(ctx, "mode"), monitor);
    s->patience = host->get_int(ctx, "patience");
    s->min_delta = host->get_number(ctx, "min_delta");
    s->beta = host->get_number(ctx, "ema");
    s->restore_best = host->get_bool(ctx, "restore_best");
    s->stop_run = strcmp(host->get_string(ctx, "scope"), "run") == 0;
    s->check_finite = host->get_bool(ctx, "check_finite");
    cb_header_fill(&s->st.header, ES_ID, ES_STATE_VERSION);
    reset(s, -1);
    *self = s;
    return RN_OK;
}

static void es_destroy(void *self)
{
    early_stopping *s = self;
    if (s) s->host->free(s);
}

/* A new stage starts from scratch; the same stage (a resumed run) keeps its counters. */
static void enter_stage(early_stopping *s, const rn_event *e)
{
    if (e->stage_index != s->st.stage) reset(s, e->stage_index);
}

static int es_stage_begin(void *self, const rn_event *e)
{
    enter_stage(self, e);
    return RN_CONTINUE;
}

/* Puts back the best epoch's weights once per stage; returns RN_OK or an error. */
static int restore_best(early_stopping *s, const rn_event *e)
{
    if (!s->restore_best || s->restored || s->st.best_epoch < 0) return RN_OK;
    s->restored = 1;
    if (!s->have_copy) {
        s->host->log(s->ctx, RN_LOG_WARN, "stage %s: the weights of epoch %lld (best %s %.6g) were "
                     "saved before the run was resumed and are not available; keeping the "
                     "current weights", e->stage ? e->stage : "?", (long long)s->st.best_epoch,
                     s->monitor, s->st.best);
        return RN_OK;
    }
    if (s->host->restore_state(s->ctx) != RN_OK) return RN_ERR;
    s->host->log(s->ctx, RN_LOG_INFO, "stage %s: restored the weights of epoch %lld (best %s "
                 "%.6g)", e->stage ? e->stage : "?", (long long)s->st.best_epoch, s->monitor,
                 s->st.best);
    return RN_OK;
}

static int stop(early_stopping *s, const rn_event *e)
{
    s->st.stopped = 1;
    if (restore_best(s, e) != RN_OK) return RN_ERR;
    return s->stop_run ? RN_STOP_RUN : RN_STOP_STAGE;
}

static int es_epoch_end(void *self, const rn_event *e)
{
    early_stopping *s = self;
    enter_stage(s, e);
    if (s->st.stopped) return s->stop_run ? RN_STOP_RUN : RN_STOP_STAGE;
    double value;
    if (!s->host->metric(s->ctx, s->monitor, &value))
        return cb_unknown_monitor(s->host, s->ctx, s->monitor);
    const char *what = s->stop_run ? "the run" : "the stage";
    if (!isfinite(value)) {
        if (s->check_finite) {
            s->host->log(s->ctx, RN_LOG_WARN, "epoch %lld: %s = %g is not finite (best %.6g at "
                         "epoch %lld); stopping %s", (long long)e->epoch, s->monitor, value,
                         s->st.best, (long long)s->st.best_epoch, what);
            return stop(s, e);
        }
    } else if (s->beta > 0) {
        s->st.ema = s->beta * s->st.ema + (1 - s->beta) * value;
        s->st.ema_n++;
        value = s->st.ema / (1 - pow(s->beta, (double)s->st.ema_n));
    }
    /* Lightning: monitor_op(current - min_delta, best), min_delta negated for "min". */
    int better = isfinite(value) && (s->max_mode ? value - s->min_delta > s->st.best
                                                 : value + s->min_delta < s->st.best);
    if (better) {
        s->st.best = value;
        s->st.wait = 0;
        s->st.best_epoch = e->epoch;
        if (s->restore_best) {
            if (s->host->save_state(s->ctx) != RN_OK) return RN_ERR;
            s->have_copy = 1;
        }
        return RN_CONTINUE;
    }
    s->st.wait++;
    if (s->st.wait < s->patience) return RN_CONTINUE;
    s->host->log(s->ctx, RN_LOG_INFO, "epoch %lld: %s did not improve by more than %g for %lld "
                 "epochs (best %.6g at epoch %lld); stopping %s", (long long)e->epoch, s->monitor,
                 s->min_delta, (long long)s->st.wait, s->st.best, (long long)s->st.best_epoch,
                 what);
    return stop(s, e);
}

static int es_stage_end(void *self, const rn_event *e)
{
    early_stopping *s = self;
    if (e->stage_index != s->st.stage) return RN_CONTINUE; /* no check ran in this stage */
    return restore_best(s, e) == RN_OK ? RN_CONTINUE : RN_ERR;
}

static size_t es_state_size(void *self)
{
    (void)self;
    return sizeof(es_state);
}

static int es_state_save(void *self, void *buf, size_t size)
{
    early_stopping *s = self;
    return cb_state_save(s->host, s->ctx, buf, size, &s->st, sizeof s->st);
}

static int es_state_load(void *self, const void *buf, size_t size)
{
    early_stopping *s = self;
    if (cb_state_load(s->host, s->ctx, buf, size, &s->st, sizeof s->st, ES_ID, ES_STATE_VERSION))
        return RN_ERR;
    s->have_copy = 0;            /* the weights of best_epoch did not survive the resume */
    s->restored = (int)s->st.stopped; /* a stop already put them back */
    return RN_OK;
}

static const rn_callback_api es_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_stage_begin = es_stage_begin,
    .on_epoch_end = es_epoch_end,
    .on_stage_end = es_stage_end,
    .state_size = es_state_size,
    .state_save = es_state_save,
    .state_load = es_state_load,
};

static const rn_plugin es_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = ES_ID,
    .version = "1.0.0",
    .summary = "EarlyStopping: stop when a metric stops improving; restore the best weights",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = es_settings,
    .n_settings = sizeof es_settings / sizeof es_settings[0],
    .create = es_create,
    .destroy = es_destroy,
    .api = &es_api,
};

static const rn_plugin *const es_plugins[] = {&es_plugin};

static const rn_library es_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = es_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return cb_host_ok(host) ? &es_library : NULL;
}
