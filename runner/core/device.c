/* Device resolution: the CUDA backend is a module loaded on demand, so a machine without CUDA
 * never needs it and a machine with it says exactly what is missing when it cannot train. */
#include "device.h"

#include "../cuda/backend.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The module's table once a usable GPU was found (the module stays loaded for the process). */
static const rn_cuda_backend *backend;

/* Why the GPU path cannot run, or "" when it can (then *info is filled and backend set). */
static void probe_cuda(const char *backend_dir, rn_cuda_info *info, char *why, size_t len)
{
    why[0] = 0;
    char path[4096];
    struct stat st;
    if (!backend_dir ||
        (snprintf(path, sizeof path, "%s/%s", backend_dir, RN_CUDA_BACKEND_FILE),
         stat(path, &st) != 0)) {
        snprintf(why, len, "this runner was built without the CUDA backend (no nvcc or cuDNN at "
                 "build time)");
        return;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        const char *what = strstr(e, "libcudnn") ? "no cuDNN" :
                           strstr(e, "libcudart") || strstr(e, "libcublas") ? "no CUDA runtime"
                                                                            : "a broken install";
        snprintf(why, len, "%s: cannot load %.160s (%.200s)", what, path, e);
        return;
    }
    rn_cuda_backend_entry_fn entry = (rn_cuda_backend_entry_fn)dlsym(h, "rn_cuda_backend_entry");
    const rn_cuda_backend *b = entry ? entry() : NULL;
    if (!b || b->abi != RN_CUDA_BACKEND_ABI || b->struct_size < sizeof *b) {
        snprintf(why, len, "%.200s is from another runner build (backend ABI %d, expected %d)",
                 path, b ? b->abi : -1, RN_CUDA_BACKEND_ABI);
        dlclose(h);
        return;
    }
    if (b->probe(info, why, len) != 0) return;
    /* Every function of the table, so the loop never meets a hole on the device. */
    const void *const *fn = (const void *const *)&b->net_plan_shapes;
    const void *const *end = (const void *const *)((const char *)b + sizeof *b);
    for (; fn < end; fn++)
        if (!*fn) {
            snprintf(why, len, "found %s, but %.200s lacks part of the training path (function "
                     "%d of the device network); rebuild runner", info->name, path,
                     (int)(fn - (const void *const *)&b->net_plan_shapes));
            return;
        }
    backend = b;
}

const rn_cuda_backend *rn_device_backend(void)
{
    return backend;
}

int rn_device_resolve(const char *asked, const char *backend_dir, rn_device *dev, char *err,
                      size_t errlen)
{
    memset(dev, 0, sizeof *dev);
    snprintf(dev->name, sizeof dev->name, "cpu");
    if (strcmp(asked, "cpu") == 0) return 0;
    rn_cuda_info info;
    char why[sizeof dev->note - 64];
    probe_cuda(backend_dir, &info, why, sizeof why);
    if (!why[0]) {
        dev->kind = RN_DEVICE_KIND_CUDA;
        snprintf(dev->name, sizeof dev->name, "%s (sm_%d%d, %.1f GiB)", info.name, info.cc_major,
                 info.cc_minor, (double)info.memory_bytes / (1u << 30));
        return 0;
    }
    if (strcmp(asked, "auto") == 0) {
        snprintf(dev->note, sizeof dev->note, "device auto: %s; training on the CPU", why);
        return 0;
    }
    snprintf(err, errlen, "device cuda: %s", why);
    return -1;
}
