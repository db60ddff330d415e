/* step — StepLR: the lr decays by gamma every step_size epochs (or optimizer steps); momentum is
 * untouched.
 *
 * With e the 0-based epoch within the stage and t the 0-based optimizer step:
 *
 *   step_size_epochs = n:  lr = base * gamma ^ floor(e / n)
 *   step_size_steps  = n:  lr = base * gamma ^ floor(t / n)
 *
 * Give exactly one of the two. This is torch.optim.lr_scheduler.StepLR(step_size=n, gamma=gamma)
 * stepped once per epoch (step_size_epochs) or once per optimizer step (step_size_steps), in its
 * closed form (_get_closed_form_lr); PyTorch 1.13 multiplies by gamma recursively, which agrees
 * with the closed form to an ulp or two (tests/test_schedulers.c checks 1e-9 against the recursive
 * values and 1e-12 against the closed form).
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct step_sched {
    const rn_host *host;
    int64_t size;   /* epochs or steps between decays */
    int per_epoch;  /* 1: size counts epochs, 0: optimizer steps */
    double gamma;
} step_sched;

static const rn_setting step_settings[] = {
    {"step_size_epochs", RN_SETTING_INT, 0, NULL, 1, 1e9, NULL,
     "epochs between decays; exclusive with step_size_steps", 0},
    {"step_size_steps", RN_SETTING_INT, 0, NULL, 1, 1e9, NULL,
     "optimizer steps between decays; exclusive with step_size_epochs", 0},
    {"gamma", RN_SETTING_NUMBER, 0.1, NULL, 0, 1, NULL,
     "factor the lr is multiplied by at every decay", 0},
};

static int step_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    int has_epochs = host->has_setting(ctx, "step_size_epochs");
    int has_steps = host->has_setting(ctx, "step_size_steps");
    if (has_epochs && has_steps) {
        host->set_error(ctx, "give step_size_epochs or step_size_steps, not both (got "
                        "step_size_epochs = %lld and step_size_steps = %lld)",
                        (long long)host->get_int(ctx, "step_size_epochs"),
                        (long long)host->get_int(ctx, "step_size_steps"));
        return RN_ERR_CONFIG;
    }
    if (!has_epochs && !has_steps) {
        host->set_error(ctx, "give step_size_epochs or step_size_steps (the decay period); "
                        "got neither");
        return RN_ERR_CONFIG;
    }
    step_sched *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->per_epoch = has_epochs;
    s->size = host->get_int(ctx, has_epochs ? "step_size_epochs" : "step_size_steps");
    s->gamma = host->get_number(ctx, "gamma");
    *self = s;
    return RN_OK;
}

static void step_destroy(void *self)
{
    step_sched *s = self;
    if (s) s->host->free(s);
}

static int step_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const step_sched *s = self;
    int64_t n = s->per_epoch ? at->epoch : at->step;
    if (n < 0) n = 0;
    v->lr = v->base_lr * pow(s->gamma, (double)(n / s->size));
    return RN_OK;
}

static int step_counts(void *self)
{
    const step_sched *s = self;
    return s->per_epoch ? RN_COUNTS_EPOCHS : RN_COUNTS_STEPS;
}

static const rn_scheduler_api step_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = step_values,
    .counts = step_counts,
};

static const rn_plugin step_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "step",
    .version = "1.0.0",
    .summary = "StepLR: lr times gamma every step_size epochs or steps",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = step_settings,
    .n_settings = sizeof step_settings / sizeof step_settings[0],
    .create = step_create,
    .destroy = step_destroy,
    .api = &step_api,
};

static const rn_plugin *const step_plugins[] = {&step_plugin};

static const rn_library step_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = step_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &step_library : NULL;
}
