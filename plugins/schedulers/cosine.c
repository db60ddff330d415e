/* cosine — linear warm-up, then cosine annealing to min_lr; momentum is untouched.
 *
 * With t the 0-based optimizer step within the stage, T = total_steps, W warm-up steps
 * (warmup_steps, or round(warmup_epochs * steps_per_epoch)) and s = warmup_start_factor:
 *
 *   t <  W:  lr = base * (s + (1 - s) * t / W)
 *   t >= W:  lr = min_lr + (base - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2
 *   t >= T:  lr = min_lr (past the stage's end; PyTorch would start a new half period)
 *
 * This is PyTorch's SequentialLR([LinearLR(start_factor=s, end_factor=1, total_iters=W),
 * CosineAnnealingLR(T_max=T-W, eta_min=min_lr)], milestones=[W]) stepped once per optimizer step:
 * LinearLR in closed form for t < W, and at the milestone SequentialLR restarts the cosine with
 * step(0), so the cosine's own step count is t - W. PyTorch (1.13) evaluates both recursively; the
 * closed form here agrees with it to ~2e-14 relative (tests/test_cosine.c checks 1e-12). The last
 * step's lr is above min_lr (t = T-1 < T), as in PyTorch.
 *
 * warmup_start_factor defaults to 1e-3 (the first step runs at base/1000) and must be in (0, 1],
 * like LinearLR's start_factor; 1 disables the ramp while keeping the cosine's delayed start.
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct cosine {
    const rn_host *host;
    double warmup_epochs;
    int64_t warmup_steps;
    double min_lr;
    double start;
} cosine;

static const rn_setting cosine_settings[] = {
    {"warmup_epochs", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "linear warm-up length in epochs (rounded to steps); exclusive with warmup_steps", 0},
    {"warmup_steps", RN_SETTING_INT, 0, NULL, 0, 1e9, NULL,
     "linear warm-up length in optimizer steps; exclusive with warmup_epochs", 0},
    {"min_lr", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "lr the cosine ends at (eta_min)", 0},
    {"warmup_start_factor", RN_SETTING_NUMBER, 1e-3, NULL, 0, 1, NULL,
     "lr of the first warm-up step as a fraction of the base lr, in (0, 1]", 0},
};

static int cosine_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double warmup_epochs = host->get_number(ctx, "warmup_epochs");
    int64_t warmup_steps = host->get_int(ctx, "warmup_steps");
    double start = host->get_number(ctx, "warmup_start_factor");
    if (host->has_setting(ctx, "warmup_epochs") && host->has_setting(ctx, "warmup_steps")) {
        host->set_error(ctx, "give warmup_epochs or warmup_steps, not both (got warmup_epochs = "
                        "%g and warmup_steps = %lld)", warmup_epochs, (long long)warmup_steps);
        return RN_ERR_CONFIG;
    }
    if (!(start > 0)) {
        host->set_error(ctx, "warmup_start_factor must be in (0, 1], got %g", start);
        return RN_ERR_CONFIG;
    }
    cosine *c = host->alloc(sizeof *c);
    if (!c) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    c->host = host;
    c->warmup_epochs = warmup_epochs;
    c->warmup_steps = warmup_steps;
    c->min_lr = host->get_number(ctx, "min_lr");
    c->start = start;
    *self = c;
    return RN_OK;
}

static void cosine_destroy(void *self)
{
    cosine *c = self;
    if (c) c->host->free(c);
}

static int cosine_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const cosine *c = self;
    const double pi = 3.14159265358979323846;
    int64_t t = at->step, total = at->total_steps;
    int64_t w = c->warmup_steps;
    if (c->warmup_epochs > 0)
        w = llround(c->warmup_epochs * (double)at->steps_per_epoch);
    double base = v->base_lr;
    if (t < w) {
        v->lr = base * (c->start + (1.0 - c->start) * (double)t / (double)w);
    } else if (t >= total) {
        v->lr = w >= total ? base : c->min_lr;
    } else {
        double phase = (double)(t - w) / (double)(total - w);
        v->lr = c->min_lr + (base - c->min_lr) * (1.0 + cos(pi * phase)) / 2.0;
    }
    return RN_OK;
}

static const rn_scheduler_api cosine_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = cosine_values,
};

static const rn_plugin cosine_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "cosine",
    .version = "1.0.0",
    .summary = "linear warm-up then cosine annealing to min_lr over the stage",
    .devices = RN_DEVICE_CPU,
    .settings = cosine_settings,
    .n_settings = sizeof cosine_settings / sizeof cosine_settings[0],
    .create = cosine_create,
    .destroy = cosine_destroy,
    .api = &cosine_api,
};

static const rn_plugin *const cosine_plugins[] = {&cosine_plugin};

static const rn_library cosine_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = cosine_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &cosine_library : NULL;
}
