/* grad_norm — the gradient norm over each epoch: metrics "grad_norm.mean" and "grad_norm.max",
 * and a warning for a step whose norm exceeds warn_above.
 *
 * The host sets the metric "grad_norm" after every optimizer step: the global L2 norm of the
 * step's gradients before clipping (torch.nn.utils.clip_grad_norm_'s return value). This callback
 * reads it in on_step_end and keeps running values over the epoch: grad_norm.mean (the mean over
 * the epoch's steps so far) and grad_norm.max. They are set after every step, not at the epoch's
 * end, because the host takes the epoch's metrics row (metrics.csv, metric history) before
 * on_epoch_end: so the row of epoch e holds the mean and max over all of epoch e's steps. They
 * restart at the first step of each epoch (of each stage). A NaN norm (not measured) is skipped;
 * an infinite one counts (max and mean become inf).
 *
 * Lightning logs per-step norms (`grad_norm` utility, "grad_2.0_norm_total"); the per-epoch mean
 * and max and the warning are ours.
 *
 * Checkpointed state (state_save): the epoch being aggregated, the sum, count and max, so a run
 * resumed mid-epoch reports the same epoch values.
 */
#include "callback_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define GN_ID "grad_norm"
#define GN_STATE_VERSION 1

typedef struct gn_state {
    cb_state_header header;
    int64_t stage, epoch; /* the epoch aggregated; stage -1 before the first step */
    double sum, max;      /* over its steps with a measured norm */
    int64_t count;
} gn_state;

typedef struct grad_norm {
    const rn_host *host;
    rn_ctx *ctx;
    double warn_above;
    gn_state st;
} grad_norm;

static const rn_setting gn_settings[] = {
    {"warn_above", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "0: off; else log a warning for each step whose gradient norm exceeds it", 0},
};

static int gn_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    grad_norm *g = host->alloc(sizeof *g);
    if (!g) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    g->host = host;
    g->ctx = ctx;
    g->warn_above = host->get_number(ctx, "warn_above");
    cb_header_fill(&g->st.header, GN_ID, GN_STATE_VERSION);
    g->st.stage = -1;
    *self = g;
    return RN_OK;
}

static void gn_destroy(void *self)
{
    grad_norm *g = self;
    if (g) g->host->free(g);
}

static int gn_step_end(void *self, const rn_event *e)
{
    grad_norm *g = self;
    double norm;
    if (!g->host->metric(g->ctx, "grad_norm", &norm)) {
        g->host->set_error(g->ctx, "expected the host to set the metric \"grad_norm\" after "
                           "every optimizer step, found no such metric");
        return RN_ERR;
    }
    if (g->st.stage != e->stage_index || g->st.epoch != e->epoch) {
        g->st.stage = e->stage_index;
        g->st.epoch = e->epoch;
        g->st.sum = 0;
        g->st.max = -INFINITY;
        g->st.count = 0;
    }
    if (!isnan(norm)) {
        g->st.sum += norm;
        g->st.count++;
        if (norm > g->st.max) g->st.max = norm;
    }
    /* NaN until the epoch has a measured step, so no epoch shows the previous one's values. */
    double mean = g->st.count ? g->st.sum / (double)g->st.count : NAN;
    double max = g->st.count ? g->st.max : NAN;
    if (g->host->set_metric(g->ctx, "grad_norm.mean", mean) != RN_OK ||
        g->host->set_metric(g->ctx, "grad_norm.max", max) != RN_OK)
        return RN_ERR;
    if (g->warn_above > 0 && norm > g->warn_above)
        g->host->log(g->ctx, RN_LOG_WARN, "step %lld: gradient norm %.6g exceeds warn_above %g "
                     "(lr %g, loss %.6g)", (long long)e->global_step, norm, g->warn_above, e->lr,
                     e->loss);
    return RN_CONTINUE;
}

static size_t gn_state_size(void *self)
{
    (void)self;
    return sizeof(gn_state);
}

static int gn_state_save(void *self, void *buf, size_t size)
{
    grad_norm *g = self;
    return cb_state_save(g->host, g->ctx, buf, size, &g->st, sizeof g->st);
}

static int gn_state_load(void *self, const void *buf, size_t size)
{
    grad_norm *g = self;
    return cb_state_load(g->host, g->ctx, buf, size, &g->st, sizeof g->st, GN_ID,
                         GN_STATE_VERSION);
}

static const rn_callback_api gn_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_step_end = gn_step_end,
    .state_size = gn_state_size,
    .state_save = gn_state_save,
    .state_load = gn_state_load,
};

static const rn_plugin gn_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = GN_ID,
    .version = "1.0.0",
    .summary = "per-epoch mean and max of the gradient norm; warns above a threshold",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = gn_settings,
    .n_settings = sizeof gn_settings / sizeof gn_settings[0],
    .create = gn_create,
    .destroy = gn_destroy,
    .api = &gn_api,
};

static const rn_plugin *const gn_plugins[] = {&gn_plugin};

static const rn_library gn_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = gn_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return cb_host_ok(host) ? &gn_library : NULL;
}
