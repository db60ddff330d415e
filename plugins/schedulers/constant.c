/* constant — a flat learning rate: lr = base_lr * factor at every step; momentum is untouched.
 * With factor = 1 (the default) this is "no schedule"; it matches torch.optim.lr_scheduler.ConstantLR
 * with total_iters = infinity. */
#include <runner/plugin.h>

#include <math.h>

typedef struct constant {
    const rn_host *host;
    double factor;
} constant;

static const rn_setting constant_settings[] = {
    {"factor", RN_SETTING_NUMBER, 1, NULL, 0, INFINITY, NULL,
     "multiplies the base lr for the whole stage", 0},
};

static int constant_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    constant *c = host->alloc(sizeof *c);
    if (!c) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    c->host = host;
    c->factor = host->get_number(ctx, "factor");
    *self = c;
    return RN_OK;
}

static void constant_destroy(void *self)
{
    constant *c = self;
    if (c) c->host->free(c);
}

static int constant_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const constant *c = self;
    v->lr = v->base_lr * c->factor;
    return RN_OK;
}

static const rn_scheduler_api constant_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = constant_values,
};

static const rn_plugin constant_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "constant",
    .version = "1.0.0",
    .summary = "constant learning rate: base lr times factor",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = constant_settings,
    .n_settings = sizeof constant_settings / sizeof constant_settings[0],
    .create = constant_create,
    .destroy = constant_destroy,
    .api = &constant_api,
};

static const rn_plugin *const constant_plugins[] = {&constant_plugin};

static const rn_library constant_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = constant_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &constant_library : NULL;
}
