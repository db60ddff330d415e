/* An augment plugin that does nothing but declare RN_SETTING_NUMBERS settings (ABI 1.1), for the
 * host's settings validation: one with a default given as text, one required with an exclusive
 * minimum, and a plain NUMBER next to them. */
#include <runner/plugin.h>

#include <math.h>

static const rn_setting ns_settings[] = {
    {"gains", RN_SETTING_NUMBERS, 0, "0.5, 0.25,1e-1", 0, 1, NULL, "numbers in [0, 1]", 0},
    {"std", RN_SETTING_NUMBERS, 0, NULL, 0, INFINITY, NULL, "required numbers > 0",
     RN_SETTING_MIN_EXCLUSIVE},
    {"scale", RN_SETTING_NUMBER, 2, NULL, 0, 10, NULL, "a plain number in [0, 10]", 0},
};

static int ns_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    static int token;
    (void)host;
    (void)ctx;
    *self = &token;
    return RN_OK;
}

static void ns_destroy(void *self) { (void)self; }

static int ns_apply(void *self, rn_batch *batch)
{
    (void)self;
    (void)batch;
    return RN_OK;
}

static const rn_augment_api ns_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = ns_apply,
};

static const rn_plugin ns_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "test.numbers_settings",
    .version = "1.0.0",
    .summary = "declares NUMBERS settings and does nothing",
    .devices = RN_DEVICE_CPU,
    .settings = ns_settings,
    .n_settings = sizeof ns_settings / sizeof ns_settings[0],
    .create = ns_create,
    .destroy = ns_destroy,
    .api = &ns_api,
};

static const rn_plugin *const ns_plugins[] = {&ns_plugin};

static const rn_library ns_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = ns_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &ns_library : NULL;
}
