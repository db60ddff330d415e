/* Which device a run trains on: "cpu", "cuda" or "auto" resolved against what this machine and
 * this build have. */
#ifndef RN_DEVICE_H
#define RN_DEVICE_H

#include <stddef.h>

typedef enum rn_device_kind { RN_DEVICE_KIND_CPU = 0, RN_DEVICE_KIND_CUDA = 1 } rn_device_kind;

typedef struct rn_device {
    rn_device_kind kind;
    char name[160];          /* "cpu", or the GPU's name */
    char note[512];          /* for "auto" on the CPU: one line saying why there is no GPU */
} rn_device;

/* Resolves `asked` ("cpu", "cuda", "auto"). For "cuda" and "auto" it loads the CUDA backend
 * module (backend_dir/rn_cuda.so; a NULL dir means this build has none) and probes for a GPU.
 * "auto" without one resolves to the CPU with the reason in dev->note; "cuda" without one is an
 * error naming what is missing (the backend in this build, the CUDA runtime or cuDNN libraries,
 * the driver, a GPU). Returns 0 or -1 with err. The module stays loaded for the process. */
int rn_device_resolve(const char *asked, const char *backend_dir, rn_device *dev, char *err,
                      size_t errlen);

/* The CUDA backend's function table once rn_device_resolve found a usable GPU, else NULL. */
struct rn_cuda_backend;
const struct rn_cuda_backend *rn_device_backend(void);

#endif
