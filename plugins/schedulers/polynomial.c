/* polynomial — PolynomialLR: the lr decays as a power of the remaining fraction of the schedule,
 * down to min_lr; momentum is untouched.
 *
 * With t the 0-based optimizer step within the stage and N = total_steps (default: the stage's
 * steps, T):
 *
 *   lr = min_lr + (base - min_lr) * (1 - min(t, N) / N) ^ power
 *
 * With min_lr = 0 (the default) this is torch.optim.lr_scheduler.PolynomialLR(total_iters=N,
 * power=power) stepped once per optimizer step, in its closed form (_get_closed_form_lr); PyTorch
 * 1.13 updates the lr recursively (times ((1 - t/N) / (1 - (t-1)/N)) ^ power), which drifts from
 * the closed form by ~3e-15 relative over 300 steps. As in PyTorch with N = T, the stage's last step
 * runs at base * (1/T) ^ power, not at 0. PolynomialLR has no floor: min_lr > 0 is the usual
 * "end learning rate" of polynomial decay (an absolute lr, like cosine's min_lr, so groups with
 * different base lrs all end at min_lr); the tests check it against LambdaLR with this formula.
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct polynomial {
    const rn_host *host;
    double power, min_lr;
    int64_t total; /* 0: the stage's steps */
} polynomial;

static const rn_setting polynomial_settings[] = {
    {"power", RN_SETTING_NUMBER, 1.0, NULL, 0, 1e3, NULL,
     "power of the remaining fraction (1 = linear decay), in (0, 1000]",
     RN_SETTING_MIN_EXCLUSIVE},
    {"min_lr", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "lr reached after total_steps steps (absolute, the same for every group)", 0},
    {"total_steps", RN_SETTING_INT, 0, NULL, 1, 1e9, NULL,
     "optimizer steps the decay takes (default: the stage's)", 0},
};

static int polynomial_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    polynomial *p = host->alloc(sizeof *p);
    if (!p) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    p->host = host;
    p->power = host->get_number(ctx, "power");
    p->min_lr = host->get_number(ctx, "min_lr");
    p->total = host->has_setting(ctx, "total_steps") ? host->get_int(ctx, "total_steps") : 0;
    *self = p;
    return RN_OK;
}

static void polynomial_destroy(void *self)
{
    polynomial *p = self;
    if (p) p->host->free(p);
}

static int polynomial_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const polynomial *p = self;
    int64_t n = p->total > 0 ? p->total : at->total_steps;
    int64_t t = at->step < 0 ? 0 : at->step;
    double rest = 0;
    if (n > 0) rest = 1.0 - (double)(t < n ? t : n) / (double)n;
    v->lr = p->min_lr + (v->base_lr - p->min_lr) * pow(rest, p->power);
    return RN_OK;
}

static const rn_scheduler_api polynomial_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = polynomial_values,
};

static const rn_plugin polynomial_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "polynomial",
    .version = "1.0.0",
    .summary = "PolynomialLR: lr decays as (1 - t/N)^power down to min_lr",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = polynomial_settings,
    .n_settings = sizeof polynomial_settings / sizeof polynomial_settings[0],
    .create = polynomial_create,
    .destroy = polynomial_destroy,
    .api = &polynomial_api,
};

static const rn_plugin *const polynomial_plugins[] = {&polynomial_plugin};

static const rn_library polynomial_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = polynomial_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &polynomial_library : NULL;
}
