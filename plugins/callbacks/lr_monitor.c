/* lr_monitor — every parameter group's lr (and momentum) as run metrics, so metrics.csv and
 * summary.json show them: "lr.<group>" and, with log_momentum, "momentum.<group>" (a character of
 * the group name outside [A-Za-z0-9_.] becomes '_').
 *
 * Lightning's LearningRateMonitor: the value is what the group used at the optimizer step
 * (host->group_at; a group frozen in the stage reports lr 0). interval "step" sets them after
 * every optimizer step; "epoch" after the first step of each epoch, i.e. the lr the epoch
 * started with (Lightning logs it at the epoch's start), and the epoch's metrics row holds it.
 * Where it differs: log_momentum defaults to true (Lightning: False), the momentum is the
 * optimizer's momentum or beta1 as the host schedules it, and the names follow the run's metric
 * names ("lr.head") rather than Lightning's "lr-SGD/pg1".
 */
#include "callback_util.h"

#include <stdio.h>
#include <string.h>

typedef struct lr_monitor {
    const rn_host *host;
    rn_ctx *ctx;
    int per_epoch, momentum;
    int have_last;          /* per_epoch: an epoch's values were set */
    int last_stage;
    int64_t last_epoch;
} lr_monitor;

static const rn_setting lrm_settings[] = {
    {"interval", RN_SETTING_STRING, 0, "step", 1, 0, "step|epoch",
     "step: after every optimizer step; epoch: the lr each epoch started with", 0},
    {"log_momentum", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,
     "also set momentum.<group> (momentum or beta1)", 0},
};

static int lrm_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    lr_monitor *m = host->alloc(sizeof *m);
    if (!m) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    m->host = host;
    m->ctx = ctx;
    m->per_epoch = strcmp(host->get_string(ctx, "interval"), "epoch") == 0;
    m->momentum = host->get_bool(ctx, "log_momentum");
    *self = m;
    return RN_OK;
}

static void lrm_destroy(void *self)
{
    lr_monitor *m = self;
    if (m) m->host->free(m);
}

/* "<prefix>.<group>" with the group name made a valid metric name. */
static void metric_name(char *buf, size_t len, const char *prefix, const char *group)
{
    int off = snprintf(buf, len, "%s.", prefix);
    if (off < 0 || (size_t)off >= len) return;
    size_t i = (size_t)off;
    for (const char *c = group && group[0] ? group : "group"; *c && i + 1 < len; c++, i++) {
        int ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                 (*c >= '0' && *c <= '9') || *c == '_' || *c == '.';
        buf[i] = ok ? *c : '_';
    }
    buf[i] = 0;
}

static int lrm_step_end(void *self, const rn_event *e)
{
    lr_monitor *m = self;
    if (m->per_epoch) {
        if (m->have_last && m->last_stage == e->stage_index && m->last_epoch == e->epoch)
            return RN_CONTINUE;
        m->have_last = 1;
        m->last_stage = e->stage_index;
        m->last_epoch = e->epoch;
    }
    size_t n = m->host->group_count(m->ctx);
    if (n == 0) {
        m->host->set_error(m->ctx, "expected the optimizer's parameter groups, found none");
        return RN_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        const char *group;
        double lr, momentum;
        if (!m->host->group_at(m->ctx, i, &group, &lr, &momentum)) break;
        char name[256];
        metric_name(name, sizeof name, "lr", group);
        if (m->host->set_metric(m->ctx, name, lr) != RN_OK) return RN_ERR;
        if (!m->momentum) continue;
        metric_name(name, sizeof name, "momentum", group);
        if (m->host->set_metric(m->ctx, name, momentum) != RN_OK) return RN_ERR;
    }
    return RN_CONTINUE;
}

static const rn_callback_api lrm_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_step_end = lrm_step_end,
};

static const rn_plugin lrm_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = "lr_monitor",
    .version = "1.0.0",
    .summary = "LearningRateMonitor: metrics lr.<group> and momentum.<group>",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = lrm_settings,
    .n_settings = sizeof lrm_settings / sizeof lrm_settings[0],
    .create = lrm_create,
    .destroy = lrm_destroy,
    .api = &lrm_api,
};

static const rn_plugin *const lrm_plugins[] = {&lrm_plugin};

static const rn_library lrm_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = lrm_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return cb_host_ok(host) ? &lrm_library : NULL;
}
