/* lr_range — the learning-rate range test ("LR finder"): the lr sweeps from start_lr to end_lr over
 * the stage, whatever the base lr; momentum is untouched. Run a short stage with it, then pick the
 * lr from the loss curve (the metrics log has the lr of every step).
 *
 * With t the 0-based optimizer step within the stage and T the stage's steps:
 *
 *   mode = "exp" (default):  lr = start_lr * (end_lr / start_lr) ^ (t / (T - 1))
 *   mode = "linear":         lr = start_lr + (end_lr - start_lr) * t / (T - 1)
 *
 * so the first step runs at start_lr and the last at end_lr (T = 1: start_lr; t >= T: end_lr).
 * This is the sweep of Smith, "Cyclical Learning Rates for Training Neural Networks" (2017), as
 * fastai's lr_find (exp) and the pytorch-lr-finder package (exp/linear) run it, one step per batch.
 * The base lr is ignored: every group gets the same lr. The tests check it against
 * torch.optim.lr_scheduler.LambdaLR with this formula.
 */
#include <runner/plugin.h>

#include <math.h>
#include <string.h>

typedef struct lr_range {
    const rn_host *host;
    double start, end;
    int linear;
} lr_range;

static const rn_setting lr_range_settings[] = {
    {"start_lr", RN_SETTING_NUMBER, 1e-7, NULL, 0, INFINITY, NULL,
     "lr of the stage's first step (> 0)", RN_SETTING_MIN_EXCLUSIVE},
    {"end_lr", RN_SETTING_NUMBER, 10, NULL, 0, INFINITY, NULL,
     "lr of the stage's last step (> start_lr)", RN_SETTING_MIN_EXCLUSIVE},
    {"mode", RN_SETTING_STRING, 0, "exp", 0, -1, "exp|linear",
     "exp: geometric sweep (evenly spaced in log lr); linear: evenly spaced lrs", 0},
};

static int lr_range_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double start = host->get_number(ctx, "start_lr");
    double end = host->get_number(ctx, "end_lr");
    if (!(end > start)) {
        host->set_error(ctx, "end_lr must be greater than start_lr (got start_lr = %g and "
                        "end_lr = %g)", start, end);
        return RN_ERR_CONFIG;
    }
    lr_range *r = host->alloc(sizeof *r);
    if (!r) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    r->host = host;
    r->start = start;
    r->end = end;
    r->linear = strcmp(host->get_string(ctx, "mode"), "linear") == 0;
    *self = r;
    return RN_OK;
}

static void lr_range_destroy(void *self)
{
    lr_range *r = self;
    if (r) r->host->free(r);
}

static int lr_range_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const lr_range *r = self;
    int64_t last = at->total_steps - 1;
    int64_t t = at->step < 0 ? 0 : at->step;
    if (last <= 0) {
        v->lr = r->start;
    } else if (t >= last) {
        v->lr = r->end;
    } else if (r->linear) {
        v->lr = r->start + (r->end - r->start) * (double)t / (double)last;
    } else {
        v->lr = r->start * pow(r->end / r->start, (double)t / (double)last);
    }
    return RN_OK;
}

static const rn_scheduler_api lr_range_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = lr_range_values,
};

static const rn_plugin lr_range_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "lr_range",
    .version = "1.0.0",
    .summary = "LR range test: sweep the lr from start_lr to end_lr over the stage",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = lr_range_settings,
    .n_settings = sizeof lr_range_settings / sizeof lr_range_settings[0],
    .create = lr_range_create,
    .destroy = lr_range_destroy,
    .api = &lr_range_api,
};

static const rn_plugin *const lr_range_plugins[] = {&lr_range_plugin};

static const rn_library lr_range_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = lr_range_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &lr_range_library : NULL;
}
