/* org.example.step_decay — a third-party scheduler plugin, written against the public header alone.
 *
 * lr = base_lr * gamma ^ floor(epoch / step_size_epochs), with epoch the 0-based epoch within the
 * stage: torch.optim.lr_scheduler.StepLR(step_size=step_size_epochs, gamma=gamma) stepped once per
 * epoch. Momentum is left as it is.
 *
 * Build it (one line), then put step_decay.so in a directory on RUNNER_PLUGIN_PATH or in your
 * recipe's plugins/ directory, and check with `runner plugins org.example.step_decay`:
 *
 *   cc -shared -fPIC -O2 -I<runner>/include -o step_decay.so step_decay.c -lm
 *
 * (-Wl,--no-undefined may be added: the plugin needs nothing from the runner at link time.)
 * Use it in a recipe:  schedule = { "org.example.step_decay", step_size_epochs = 30, gamma = 0.1 }
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct step_decay {
    const rn_host *host;
    int64_t step_size;
    double gamma;
} step_decay;

/* Every setting has a default; the host refuses unknown keys and out-of-range values with the
 * recipe's key path before create() runs. */
static const rn_setting step_decay_settings[] = {
    {"step_size_epochs", RN_SETTING_INT, 30, NULL, 1, 1e9, NULL,
     "epochs between decays", 0},
    {"gamma", RN_SETTING_NUMBER, 0.1, NULL, 0, 1, NULL,
     "factor the lr is multiplied by every step_size_epochs epochs", 0},
};

static int step_decay_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    step_decay *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->step_size = host->get_int(ctx, "step_size_epochs");
    s->gamma = host->get_number(ctx, "gamma");
    *self = s;
    return RN_OK;
}

static void step_decay_destroy(void *self)
{
    step_decay *s = self;
    if (s) s->host->free(s);
}

/* Called before every optimizer step, per parameter group; a pure function of `at`. */
static int step_decay_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const step_decay *s = self;
    v->lr = v->base_lr * pow(s->gamma, (double)(at->epoch / s->step_size));
    return RN_OK;
}

static int step_decay_counts(void *self)
{
    (void)self;
    return RN_COUNTS_EPOCHS;
}

static const rn_scheduler_api step_decay_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = step_decay_values,
    .counts = step_decay_counts,
};

static const rn_plugin step_decay_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "org.example.step_decay",
    .version = "1.0.0",
    .summary = "multiply the lr by gamma every step_size_epochs epochs (StepLR)",
    .devices = RN_DEVICE_CPU,
    .settings = step_decay_settings,
    .n_settings = sizeof step_decay_settings / sizeof step_decay_settings[0],
    .create = step_decay_create,
    .destroy = step_decay_destroy,
    .api = &step_decay_api,
};

static const rn_plugin *const step_decay_plugins[] = {&step_decay_plugin};

static const rn_library step_decay_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = step_decay_plugins,
    .n_plugins = 1,
};

/* The one exported symbol. Return NULL for a host speaking another ABI major. */
RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &step_decay_library : NULL;
}
