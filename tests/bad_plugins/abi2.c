/* A plugin library built for a future ABI major: the host must refuse it, naming the file. */
#include <runner/plugin.h>

static const rn_library lib = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = 0,
    .n_plugins = 0,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    (void)host;
    return &lib;
}
