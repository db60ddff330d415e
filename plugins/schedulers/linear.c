/* linear — LinearLR: the lr factor goes linearly from start_factor to end_factor over total_steps
 * optimizer steps, then stays at end_factor; momentum is untouched.
 *
 * With t the 0-based optimizer step within the stage and N = total_steps (default: the stage's
 * steps, T):
 *
 *   lr = base * (s + (e - s) * min(t, N) / N)      s = start_factor, e = end_factor
 *
 * This is torch.optim.lr_scheduler.LinearLR(start_factor=s, end_factor=e, total_iters=N) stepped
 * once per optimizer step, in its closed form (_get_closed_form_lr); PyTorch 1.13 updates the lr
 * recursively, which drifts from the closed form by ~2e-15 relative over 300 steps. As in PyTorch
 * with N = T, the stage's last step runs at s + (e - s) * (T-1)/T, one step short of end_factor.
 *
 * start_factor must be in (0, 1] and end_factor in [0, 1], PyTorch's ranges, except that PyTorch
 * accepts start_factor = 0 and then divides by zero on its second step (its recursive form divides
 * by total_iters * start_factor): refused here rather than given a meaning PyTorch does not have.
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct linear_sched {
    const rn_host *host;
    double start, end;
    int64_t total; /* 0: the stage's steps */
} linear_sched;

static const rn_setting linear_settings[] = {
    {"start_factor", RN_SETTING_NUMBER, 1.0 / 3.0, NULL, 0, 1, NULL,
     "lr of the first step as a fraction of the base lr, in (0, 1]", RN_SETTING_MIN_EXCLUSIVE},
    {"end_factor", RN_SETTING_NUMBER, 1.0, NULL, 0, 1, NULL,
     "fraction of the base lr reached after total_steps steps and kept after, in [0, 1]", 0},
    {"total_steps", RN_SETTING_INT, 0, NULL, 1, 1e9, NULL,
     "optimizer steps the factor takes from start_factor to end_factor (default: the stage's)", 0},
};

static int linear_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    linear_sched *l = host->alloc(sizeof *l);
    if (!l) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    l->host = host;
    l->start = host->get_number(ctx, "start_factor");
    l->end = host->get_number(ctx, "end_factor");
    l->total = host->has_setting(ctx, "total_steps") ? host->get_int(ctx, "total_steps") : 0;
    *self = l;
    return RN_OK;
}

static void linear_destroy(void *self)
{
    linear_sched *l = self;
    if (l) l->host->free(l);
}

static int linear_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const linear_sched *l = self;
    int64_t n = l->total > 0 ? l->total : at->total_steps;
    int64_t t = at->step < 0 ? 0 : at->step;
    double factor = l->end;
    if (n > 0) factor = l->start + (l->end - l->start) * (double)(t < n ? t : n) / (double)n;
    v->lr = v->base_lr * factor;
    return RN_OK;
}

static const rn_scheduler_api linear_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = linear_values,
};

static const rn_plugin linear_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "linear",
    .version = "1.0.0",
    .summary = "LinearLR: lr factor linear from start_factor to end_factor over total_steps",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = linear_settings,
    .n_settings = sizeof linear_settings / sizeof linear_settings[0],
    .create = linear_create,
    .destroy = linear_destroy,
    .api = &linear_api,
};

static const rn_plugin *const linear_plugins[] = {&linear_plugin};

static const rn_library linear_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = linear_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &linear_library : NULL;
}
