/* Device resolution: the CUDA backend is a module loaded on demand, so a machine without CUDA
 * never needs it and a machine with it says exactly what is missing when it cannot train. */
#include "device.h"

#include "../cuda/backend.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Why the GPU path cannot run, or "" when it can (then *info is filled). */
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
    /* A GPU is there; the training loop on it is not (the CUDA issue lands it in pieces). */
    snprintf(why, len, "found %s (sm_%d%d, %.1f GiB), but this build trains on the CPU only: the "
             "GPU training path is not complete yet", info->name, info->cc_major, info->cc_minor,
             (double)info->memory_bytes / (1u << 30));
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
    if (strcmp(asked, "auto") == 0) {
        snprintf(dev->note, sizeof dev->note, "device auto: %s; training on the CPU", why);
        return 0;
    }
    snprintf(err, errlen, "device cuda: %s", why);
    return -1;
}
