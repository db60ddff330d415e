/* nan_guard — survive a non-finite loss or gradient norm: roll back to the last good state and
 * lower the lr, or stop the run cleanly.
 *
 * It keeps the last good state (host->save_state) at the run's and every stage's beginning and
 * then every every_steps optimizer steps (counted since the last save). When a step is not finite
 * (on_nonfinite; the update was not applied):
 *   action "rollback": restore that state (host->restore_state), multiply the lr by factor
 *     (host->scale_lr; compounding, for the rest of the run), warn with the step and the lr, and
 *     carry on (the step is skipped). After max_rollbacks rollbacks in the run, the next
 *     non-finite step is an error saying how many rollbacks were made.
 *   action "stop": restore that state, warn, and stop the run (RN_STOP_RUN) without an error.
 * Steps are numbered 1-based over the run: the failed one is e->global_step + 1.
 *
 * fastai's TerminateOnNaNCallback and Lightning's EarlyStopping(check_finite=True) only stop;
 * action "stop" is that plus putting the last good weights back. The rollback is ours.
 *
 * Checkpointed state (state_save): rollbacks made and steps since the last save, so a resumed run
 * allows the same rollbacks and saves at the same steps. The copy itself is not part of it: the
 * resumed run takes one at on_run_begin (the checkpoint's state, a good one) without moving the
 * save schedule.
 */
#include "callback_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NG_ID "nan_guard"
#define NG_STATE_VERSION 1

typedef struct ng_state {
    cb_state_header header;
    int64_t rollbacks;        /* made in the run */
    int64_t steps_since_save; /* optimizer steps since the last save_state */
    int64_t saved_step;       /* global step of the saved state; -1 for none */
} ng_state;

typedef struct nan_guard {
    const rn_host *host;
    rn_ctx *ctx;
    int stop_run;
    double factor;
    int64_t every, max_rollbacks;
    ng_state st;
    int have_copy; /* host->save_state holds the state of st.saved_step */
} nan_guard;

static const rn_setting ng_settings[] = {
    {"action", RN_SETTING_STRING, 0, "rollback", 1, 0, "rollback|stop",
     "rollback: restore the last good state, scale the lr, carry on; stop: restore and stop", 0},
    {"factor", RN_SETTING_NUMBER, 0.5, NULL, 0, 1, NULL,
     "lr multiplier after each rollback, in (0, 1); compounds",
     RN_SETTING_MIN_EXCLUSIVE | RN_SETTING_MAX_EXCLUSIVE},
    {"every_steps", RN_SETTING_INT, 100, NULL, 1, 1e9, NULL,
     "optimizer steps between saves of the last good state (also saved at each stage begin)", 0},
    {"max_rollbacks", RN_SETTING_INT, 3, NULL, 0, 1e9, NULL,
     "rollbacks allowed in the run; one more non-finite step is an error", 0},
};

static int ng_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    nan_guard *g = host->alloc(sizeof *g);
    if (!g) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    g->host = host;
    g->ctx = ctx;
    g->stop_run = strcmp(host->get_string(ctx, "action"), "stop") == 0;
    g->factor = host->get_number(ctx, "factor");
    g->every = host->get_int(ctx, "every_steps");
    g->max_rollbacks = host->get_int(ctx, "max_rollbacks");
    cb_header_fill(&g->st.header, NG_ID, NG_STATE_VERSION);
    g->st.saved_step = -1;
    *self = g;
    return RN_OK;
}

static void ng_destroy(void *self)
{
    nan_guard *g = self;
    if (g) g->host->free(g);
}

static int save(nan_guard *g, const rn_event *e)
{
    if (g->host->save_state(g->ctx) != RN_OK) return RN_ERR;
    g->have_copy = 1;
    g->st.steps_since_save = 0;
    g->st.saved_step = e->global_step;
    return RN_CONTINUE;
}

static int ng_stage_begin(void *self, const rn_event *e) { return save(self, e); }

/* A copy to roll back to from the first step on; after a resume, the save schedule goes on. */
static int ng_run_begin(void *self, const rn_event *e)
{
    nan_guard *g = self;
    int64_t since = g->st.steps_since_save;
    if (save(g, e) != RN_CONTINUE) return RN_ERR;
    g->st.steps_since_save = since;
    return RN_CONTINUE;
}

static int ng_step_end(void *self, const rn_event *e)
{
    nan_guard *g = self;
    g->st.steps_since_save++;
    if (!g->have_copy || g->st.steps_since_save >= g->every) return save(g, e);
    return RN_CONTINUE;
}

static int ng_nonfinite(void *self, const rn_event *e)
{
    nan_guard *g = self;
    long long step = (long long)e->global_step + 1;
    char what[96];
    if (isfinite(e->loss))
        snprintf(what, sizeof what, "the gradient norm is not finite (loss %g)", e->loss);
    else
        snprintf(what, sizeof what, "the loss is %g", e->loss);
    if (!g->have_copy) {
        if (g->stop_run) {
            g->host->log(g->ctx, RN_LOG_WARN, "step %lld: %s at lr %g; no good state saved yet, "
                         "stopping the run", step, what, e->lr);
            return RN_STOP_RUN;
        }
        g->host->set_error(g->ctx, "step %lld: %s at lr %g, and no good state was saved yet to "
                           "roll back to", step, what, e->lr);
        return RN_ERR;
    }
    if (g->stop_run) {
        if (g->host->restore_state(g->ctx) != RN_OK) return RN_ERR;
        g->host->log(g->ctx, RN_LOG_WARN, "step %lld: %s at lr %g; restored the state after "
                     "step %lld and stopping the run", step, what, e->lr,
                     (long long)g->st.saved_step);
        return RN_STOP_RUN;
    }
    if (g->st.rollbacks >= g->max_rollbacks) {
        g->host->set_error(g->ctx, "step %lld: %s at lr %g after %lld rollbacks (max_rollbacks = "
                           "%lld); lower the lr (or check the data)", step, what, e->lr,
                           (long long)g->st.rollbacks, (long long)g->max_rollbacks);
        return RN_ERR;
    }
    if (g->host->restore_state(g->ctx) != RN_OK || g->host->scale_lr(g->ctx, g->factor) != RN_OK)
        return RN_ERR;
    g->st.rollbacks++;
    g->host->log(g->ctx, RN_LOG_WARN, "step %lld: %s at lr %g; rolled back to the state after "
                 "step %lld, lr x%g from now on (rollback %lld of %lld)", step, what, e->lr,
                 (long long)g->st.saved_step, g->factor, (long long)g->st.rollbacks,
                 (long long)g->max_rollbacks);
    return RN_CONTINUE;
}

static size_t ng_state_size(void *self)
{
    (void)self;
    return sizeof(ng_state);
}

static int ng_state_save(void *self, void *buf, size_t size)
{
    nan_guard *g = self;
    return cb_state_save(g->host, g->ctx, buf, size, &g->st, sizeof g->st);
}

static int ng_state_load(void *self, const void *buf, size_t size)
{
    nan_guard *g = self;
    if (cb_state_load(g->host, g->ctx, buf, size, &g->st, sizeof g->st, NG_ID, NG_STATE_VERSION))
        return RN_ERR;
    g->have_copy = 0; /* taken again at on_run_begin */
    return RN_OK;
}

static const rn_callback_api ng_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_run_begin = ng_run_begin,
    .on_stage_begin = ng_stage_begin,
    .on_step_end = ng_step_end,
    .on_nonfinite = ng_nonfinite,
    .state_size = ng_state_size,
    .state_save = ng_state_save,
    .state_load = ng_state_load,
};

static const rn_plugin ng_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = NG_ID,
    .version = "1.0.0",
    .summary = "on a NaN/inf step: roll back to the last good state and lower the lr, or stop",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = ng_settings,
    .n_settings = sizeof ng_settings / sizeof ng_settings[0],
    .create = ng_create,
    .destroy = ng_destroy,
    .api = &ng_api,
};

static const rn_plugin *const ng_plugins[] = {&ng_plugin};

static const rn_library ng_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = ng_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return cb_host_ok(host) ? &ng_library : NULL;
}
