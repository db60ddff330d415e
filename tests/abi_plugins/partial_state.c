/* A callback with state_save but no state_size/state_load: the host must refuse the library. */
#include <runner/plugin.h>

static int ps_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    static int token;
    (void)host;
    (void)ctx;
    *self = &token;
    return RN_OK;
}

static void ps_destroy(void *self) { (void)self; }

static int ps_save(void *self, void *buf, size_t size)
{
    (void)self;
    (void)buf;
    (void)size;
    return RN_OK;
}

static const rn_callback_api ps_api = {
    .struct_size = sizeof(rn_callback_api),
    .state_save = ps_save,
};

static const rn_plugin ps_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = "test.partial_state",
    .version = "1.0.0",
    .summary = "state_save without state_size/state_load",
    .devices = RN_DEVICE_CPU,
    .create = ps_create,
    .destroy = ps_destroy,
    .api = &ps_api,
};

static const rn_plugin *const ps_plugins[] = {&ps_plugin};

static const rn_library ps_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = ps_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &ps_library : NULL;
}
