/* The CUDA backend module's interface to the core (internal: the core and rn_cuda.so are built
 * together). The core loads lib/runner/backends/rn_cuda.so with dlopen only when a recipe or
 * --device asks for "cuda" or "auto", so `runner` itself never links CUDA and starts on machines
 * without it. The module exports one symbol, rn_cuda_backend_entry. */
#ifndef RN_CUDA_BACKEND_H
#define RN_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RN_CUDA_BACKEND_ABI 1
#define RN_CUDA_BACKEND_FILE "rn_cuda.so"

/* What the probe found on device 0. */
typedef struct rn_cuda_info {
    int devices;             /* GPUs the runtime sees */
    char name[128];          /* device 0's name */
    int cc_major, cc_minor;  /* its compute capability */
    size_t memory_bytes;     /* its global memory */
    int runtime_version;     /* cudaRuntimeGetVersion, e.g. 13000 */
    int driver_version;      /* cudaDriverGetVersion, 0 without a driver */
    size_t cudnn_version;    /* cudnnGetVersion, e.g. 91900 */
} rn_cuda_info;

/* A 2-d convolution or pooling as cuDNN sees it: NCHW input and, for a convolution, the
 * filter (out_ch, in_ch / groups, kh, kw). */
typedef struct rn_cuda_conv_shape {
    int n, c, h, w;          /* input */
    int out_ch, kh, kw;      /* filter (pooling: out_ch ignored, the window is kh x kw) */
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
} rn_cuda_conv_shape;

typedef struct rn_cuda_backend {
    size_t struct_size;
    int abi;                 /* RN_CUDA_BACKEND_ABI */
    const char *build;       /* "CUDA 13.0, cuDNN 9.19.0, sm_80;90" */
    /* Whether there is a GPU to train on: 0 with *info filled, or -1 with one line saying what
     * is missing (the driver, a device, cuDNN) in why. Needs no GPU to run. */
    int (*probe)(rn_cuda_info *info, char *why, size_t len);
    /* Output shape (n, c, h, w) of a convolution from cuDNN's descriptors
     * (cudnnGetConvolution2dForwardOutputDim): descriptor calls need no device. 0, or -1 with
     * cuDNN's message. */
    int (*conv2d_output)(const rn_cuda_conv_shape *s, int out[4], char *err, size_t len);
    /* The same for max pooling (cudnnGetPooling2dForwardOutputDim). */
    int (*maxpool2d_output)(const rn_cuda_conv_shape *s, int out[4], char *err, size_t len);
} rn_cuda_backend;

typedef const rn_cuda_backend *(*rn_cuda_backend_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
