/* An optimizer that declares the cuda device but gives no device_update (plugin ABI 1.2): on a GPU
 * the host could not run its step, so the loader must refuse the library, naming the plugin. */
#include <runner/plugin.h>

static size_t state_floats(void *self)
{
    (void)self;
    return 0;
}

static int step(void *self, rn_group *group)
{
    (void)self;
    (void)group;
    return RN_OK;
}

static int create(const rn_host *host, rn_ctx *ctx, void **self)
{
    (void)host;
    (void)ctx;
    *self = 0;
    return RN_OK;
}

static void destroy(void *self) { (void)self; }

static const rn_optimizer_api api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = state_floats,
    .step = step,
};

static const rn_setting settings[] = {
    {"lr", RN_SETTING_NUMBER, 0.1, 0, 0, 1e9, 0, "learning rate", 0},
};

static const rn_plugin plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "test.cuda_no_update",
    .version = "1.0.0",
    .summary = "declares cuda without device_update",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = settings,
    .n_settings = 1,
    .create = create,
    .destroy = destroy,
    .api = &api,
};

static const rn_plugin *const plugins[] = {&plugin};

static const rn_library lib = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    (void)host;
    return &lib;
}
