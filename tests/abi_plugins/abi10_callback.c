/* Callbacks as an ABI 1.0 library and a 1.1 one hand them over, in one library: the 1.0 api's
 * struct_size stops after on_run_end, so the host must not read on_nonfinite and the state hooks
 * even though this file (compiled against the 1.1 header) fills them with functions that fail. */
#include <runner/plugin.h>

#include <stddef.h>

static int abi_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    static int token;
    (void)host;
    (void)ctx;
    *self = &token;
    return RN_OK;
}

static void abi_destroy(void *self) { (void)self; }

static int abi_run_end(void *self, const rn_event *e)
{
    (void)self;
    (void)e;
    return RN_CONTINUE;
}

/* Past a 1.0 struct_size: a host that calls these has read a field it must not. */
static int abi_never(void *self, const rn_event *e)
{
    (void)self;
    (void)e;
    return RN_ERR;
}

static size_t abi_never_size(void *self)
{
    (void)self;
    return (size_t)-1;
}

static int abi_never_save(void *self, void *buf, size_t size)
{
    (void)self;
    (void)buf;
    (void)size;
    return RN_ERR;
}

static int abi_never_load(void *self, const void *buf, size_t size)
{
    (void)self;
    (void)buf;
    (void)size;
    return RN_ERR;
}

static const rn_callback_api abi10_api = {
    .struct_size = offsetof(rn_callback_api, on_nonfinite),
    .on_run_end = abi_run_end,
    .on_nonfinite = abi_never,
    .state_size = abi_never_size,
    .state_save = abi_never_save,
    .state_load = abi_never_load,
};

static const rn_callback_api abi11_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_run_end = abi_run_end,
    .on_nonfinite = abi_never,
};

static const rn_plugin abi10_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = "test.abi10_callback",
    .version = "1.0.0",
    .summary = "an ABI 1.0 callback (struct_size up to on_run_end)",
    .devices = RN_DEVICE_CPU,
    .create = abi_create,
    .destroy = abi_destroy,
    .api = &abi10_api,
};

static const rn_plugin abi11_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = "test.abi11_callback",
    .version = "1.1.0",
    .summary = "an ABI 1.1 callback with on_nonfinite",
    .devices = RN_DEVICE_CPU,
    .create = abi_create,
    .destroy = abi_destroy,
    .api = &abi11_api,
};

static const rn_plugin *const abi_plugins[] = {&abi10_plugin, &abi11_plugin};

static const rn_library abi_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = 0,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = abi_plugins,
    .n_plugins = 2,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &abi_library : NULL;
}
