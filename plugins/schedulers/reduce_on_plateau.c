/* reduce_on_plateau — ReduceLROnPlateau: the lr is multiplied by factor when a monitored metric
 * (test.loss by default) has stopped improving for more than `patience` epochs; momentum is
 * untouched.
 *
 * This is torch.optim.lr_scheduler.ReduceLROnPlateau (PyTorch 1.13) stepped once per epoch with
 * the metric measured at the end of the epoch (`scheduler.step(val_loss)`), with one min_lr for
 * every group. The lr of epoch e is a pure function of the monitored metric's values at the end
 * of epochs 0..e-1 of the stage (host->metric_history): values() replays PyTorch's state machine
 * over them from scratch, starting from
 *
 *   lr = base_lr, best = +inf (min) / -inf (max), bad = 0, cooldown_counter = 0
 *
 * and for each recorded value m, oldest first:
 *
 *   better = min, rel:  m < best * (1 - threshold)     max, rel:  m > best * (1 + threshold)
 *            min, abs:  m < best - threshold           max, abs:  m > best + threshold
 *   if better: best = m, bad = 0  else: bad += 1
 *   if cooldown_counter > 0: cooldown_counter -= 1, bad = 0    (bad epochs in cooldown ignored)
 *   if bad > patience:
 *       new = max(lr * factor, min_lr); if lr - new > eps: lr = new   (else the lr stays)
 *       cooldown_counter = cooldown, bad = 0
 *
 * NaN (the metric was not measured that epoch, or the loss diverged) is compared like any other
 * value, so it is never better: it counts as a bad epoch, exactly what PyTorch does with
 * scheduler.step(float("nan")). A diverged loss thus still leads to a reduction, and `best` is
 * never NaN.
 *
 * Epoch 0, and any epoch while the metric has no recorded epochs yet (the schedule plan the host
 * draws before training), gives base_lr. When the run has metrics but none named `monitor`,
 * values() at epoch >= 1 fails with a message listing the run's metrics (a typo, most likely).
 * values() costs O(e) (the host copies the history anyway); it allocates only when the history
 * outgrows the buffer made in create().
 */
#include <runner/plugin.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PLATEAU_INITIAL_CAP 32

typedef struct plateau_sched {
    const rn_host *host;
    rn_ctx *ctx;
    char *monitor;  /* copy of the setting */
    int max_mode;   /* 1: "max", 0: "min" */
    int abs_mode;   /* 1: threshold_mode "abs", 0: "rel" */
    double factor, threshold, min_lr, eps;
    int64_t patience, cooldown;
    double *buf;    /* history buffer (a cache: not part of the schedule's state) */
    size_t cap;
} plateau_sched;

static const rn_setting plateau_settings[] = {
    {"monitor", RN_SETTING_STRING, 0, "test.loss", 0, -1, NULL,
     "metric whose value at the end of each epoch is watched, e.g. test.loss, test.acc", 0},
    {"mode", RN_SETTING_STRING, 0, "min", 0, -1, "min|max",
     "min: the metric should fall (a loss); max: it should rise (an accuracy)", 0},
    {"factor", RN_SETTING_NUMBER, 0.1, NULL, 0, 1, NULL,
     "the lr is multiplied by this at each reduction, in (0, 1)",
     RN_SETTING_MIN_EXCLUSIVE | RN_SETTING_MAX_EXCLUSIVE},
    {"patience", RN_SETTING_INT, 10, NULL, 0, 1e9, NULL,
     "epochs without improvement tolerated; the lr is cut after patience + 1 of them", 0},
    {"threshold", RN_SETTING_NUMBER, 1e-4, NULL, 0, INFINITY, NULL,
     "least change that counts as an improvement (relative or absolute, see threshold_mode)", 0},
    {"threshold_mode", RN_SETTING_STRING, 0, "rel", 0, -1, "rel|abs",
     "rel: better than best * (1 -/+ threshold); abs: better than best -/+ threshold", 0},
    {"cooldown", RN_SETTING_INT, 0, NULL, 0, 1e9, NULL,
     "epochs after a reduction during which bad epochs are not counted", 0},
    {"min_lr", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "the lr is never cut below this (every group)", 0},
    {"eps", RN_SETTING_NUMBER, 1e-8, NULL, 0, INFINITY, NULL,
     "a reduction smaller than this is not applied", 0},
};

static int plateau_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    const char *monitor = host->get_string(ctx, "monitor");
    if (!monitor[0]) {
        host->set_error(ctx, "monitor: expected a metric name such as \"test.loss\", got an "
                        "empty string");
        return RN_ERR_CONFIG;
    }
    plateau_sched *s = host->alloc(sizeof *s);
    size_t len = strlen(monitor) + 1;
    char *name = s ? host->alloc(len) : NULL;
    double *buf = name ? host->alloc(PLATEAU_INITIAL_CAP * sizeof *buf) : NULL;
    if (!buf) {
        if (name) host->free(name);
        if (s) host->free(s);
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    memcpy(name, monitor, len);
    s->host = host;
    s->ctx = ctx;
    s->monitor = name;
    s->max_mode = strcmp(host->get_string(ctx, "mode"), "max") == 0;
    s->abs_mode = strcmp(host->get_string(ctx, "threshold_mode"), "abs") == 0;
    s->factor = host->get_number(ctx, "factor");
    s->threshold = host->get_number(ctx, "threshold");
    s->min_lr = host->get_number(ctx, "min_lr");
    s->eps = host->get_number(ctx, "eps");
    s->patience = host->get_int(ctx, "patience");
    s->cooldown = host->get_int(ctx, "cooldown");
    s->buf = buf;
    s->cap = PLATEAU_INITIAL_CAP;
    *self = s;
    return RN_OK;
}

static void plateau_destroy(void *self)
{
    plateau_sched *s = self;
    if (!s) return;
    s->host->free(s->buf);
    s->host->free(s->monitor);
    s->host->free(s);
}

/* PyTorch's is_better(a, best); any comparison with NaN is false. */
static int is_better(const plateau_sched *s, double a, double best)
{
    if (!s->max_mode) return s->abs_mode ? a < best - s->threshold : a < best * (1.0 - s->threshold);
    return s->abs_mode ? a > best + s->threshold : a > best * (s->threshold + 1.0);
}

/* "monitor \"x\" is not a metric of this run (metrics: a, b, c)". */
static int unknown_monitor(const plateau_sched *s)
{
    char list[400];
    size_t off = 0, n = s->host->metric_count(s->ctx);
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name;
        double value;
        if (!s->host->metric_at(s->ctx, i, &name, &value)) break;
        size_t need = strlen(name) + 2;
        if (off + need + 5 > sizeof list) {
            snprintf(list + off, sizeof list - off, "%s...", i ? ", " : "");
            break;
        }
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", name);
    }
    s->host->set_error(s->ctx, "monitor \"%s\" is not a metric of this run (metrics: %s)",
                       s->monitor, list);
    return RN_ERR_CONFIG;
}

static int plateau_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    plateau_sched *s = self;
    v->lr = v->base_lr;
    if (at->epoch <= 0) return RN_OK;

    size_t count = s->host->metric_history(s->ctx, s->monitor, s->buf, s->cap);
    if (count == 0) {
        double value;
        /* No metrics at all: the schedule is being planned before the run has any. A known
         * metric without recorded epochs: likewise (nothing to react to yet). */
        if (s->host->metric_count(s->ctx) > 0 && !s->host->metric(s->ctx, s->monitor, &value))
            return unknown_monitor(s);
        return RN_OK;
    }
    size_t n = (uint64_t)at->epoch < count ? (size_t)at->epoch : count;
    if (n > s->cap) {
        /* The history outgrew the buffer: grow it (the only allocation values() makes). */
        size_t cap = n > 2 * s->cap ? n : 2 * s->cap;
        double *buf = s->host->alloc(cap * sizeof *buf);
        if (!buf) {
            s->host->set_error(s->ctx, "out of memory (history of %zu epochs)", n);
            return RN_ERR_NOMEM;
        }
        s->host->free(s->buf);
        s->buf = buf;
        s->cap = cap;
        count = s->host->metric_history(s->ctx, s->monitor, s->buf, s->cap);
        if (count < n) n = count;
    }

    double lr = v->base_lr;
    double best = s->max_mode ? -INFINITY : INFINITY;
    int64_t bad = 0, cooldown_counter = 0;
    for (size_t e = 0; e < n; e++) {
        double m = s->buf[e];
        if (is_better(s, m, best)) {
            best = m;
            bad = 0;
        } else {
            bad++;
        }
        if (cooldown_counter > 0) {
            cooldown_counter--;
            bad = 0;
        }
        if (bad > s->patience) {
            double cut = lr * s->factor;
            double new_lr = cut > s->min_lr ? cut : s->min_lr; /* max(), as PyTorch */
            if (lr - new_lr > s->eps) lr = new_lr;
            cooldown_counter = s->cooldown;
            bad = 0;
        }
    }
    v->lr = lr;
    return RN_OK;
}

static int plateau_counts(void *self)
{
    (void)self;
    return RN_COUNTS_EPOCHS; /* it moves only when an epoch's metric arrives */
}

static const rn_scheduler_api plateau_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = plateau_values,
    .counts = plateau_counts,
};

static const rn_plugin plateau_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "reduce_on_plateau",
    .version = "1.0.0",
    .summary = "ReduceLROnPlateau: lr times factor when a metric stops improving",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = plateau_settings,
    .n_settings = sizeof plateau_settings / sizeof plateau_settings[0],
    .create = plateau_create,
    .destroy = plateau_destroy,
    .api = &plateau_api,
};

static const rn_plugin *const plateau_plugins[] = {&plateau_plugin};

static const rn_library plateau_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = plateau_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &plateau_library : NULL;
}
