/* An augmentation that declares the cuda device but gives no device_plan (plugin ABI 1.2): on a
 * GPU the host could not run it, so the loader must refuse the library, naming the plugin. */
#include <runner/plugin.h>

static int apply(void *self, rn_batch *batch)
{
    (void)self;
    (void)batch;
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

static const rn_augment_api api = {.struct_size = sizeof(rn_augment_api), .apply = apply};

static const rn_plugin plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "test.cuda_no_plan",
    .version = "1.0.0",
    .summary = "declares cuda without device_plan",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
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
