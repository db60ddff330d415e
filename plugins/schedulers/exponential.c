/* exponential — ExponentialLR: the lr decays by gamma every epoch (or every optimizer step);
 * momentum is untouched.
 *
 * With e the 0-based epoch within the stage and t the 0-based optimizer step:
 *
 *   per = "epoch" (default):  lr = base * gamma ^ e
 *   per = "step":             lr = base * gamma ^ t
 *
 * This is torch.optim.lr_scheduler.ExponentialLR(gamma) stepped once per epoch or once per
 * optimizer step, in its closed form (_get_closed_form_lr); PyTorch 1.13 multiplies by gamma
 * recursively, which drifts from the closed form by ~1e-15 relative over 300 steps. gamma has no
 * default (as in PyTorch): the recipe must give it.
 */
#include <runner/plugin.h>

#include <math.h>
#include <string.h>

typedef struct exponential {
    const rn_host *host;
    double gamma;
    int per_epoch;
} exponential;

static const rn_setting exponential_settings[] = {
    {"gamma", RN_SETTING_NUMBER, 0, NULL, 0, 1, NULL,
     "factor the lr is multiplied by every epoch (or step, see per), in (0, 1]",
     RN_SETTING_REQUIRED | RN_SETTING_MIN_EXCLUSIVE},
    {"per", RN_SETTING_STRING, 0, "epoch", 0, -1, "epoch|step",
     "what one decay by gamma takes: an epoch or an optimizer step", 0},
};

static int exponential_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    exponential *x = host->alloc(sizeof *x);
    if (!x) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    x->host = host;
    x->gamma = host->get_number(ctx, "gamma");
    x->per_epoch = strcmp(host->get_string(ctx, "per"), "step") != 0;
    *self = x;
    return RN_OK;
}

static void exponential_destroy(void *self)
{
    exponential *x = self;
    if (x) x->host->free(x);
}

static int exponential_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const exponential *x = self;
    int64_t n = x->per_epoch ? at->epoch : at->step;
    if (n < 0) n = 0;
    v->lr = v->base_lr * pow(x->gamma, (double)n);
    return RN_OK;
}

static int exponential_counts(void *self)
{
    const exponential *s = self;
    return s->per_epoch ? RN_COUNTS_EPOCHS : RN_COUNTS_STEPS;
}

static const rn_scheduler_api exponential_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = exponential_values,
    .counts = exponential_counts,
};

static const rn_plugin exponential_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "exponential",
    .version = "1.0.0",
    .summary = "ExponentialLR: lr times gamma every epoch (or step)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = exponential_settings,
    .n_settings = sizeof exponential_settings / sizeof exponential_settings[0],
    .create = exponential_create,
    .destroy = exponential_destroy,
    .api = &exponential_api,
};

static const rn_plugin *const exponential_plugins[] = {&exponential_plugin};

static const rn_library exponential_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = exponential_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &exponential_library : NULL;
}
