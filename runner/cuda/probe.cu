// The backend's entry and its probe: is there a driver, a GPU and a working cuDNN? Each missing
// piece is named in one line, so `device = "auto"` can say why it trains on the CPU and
// `device = "cuda"` why it cannot start.
#include "backend.h"
#include "net_api.h"

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>
#include <cstring>

extern "C" int rn_cuda_conv2d_output(const rn_cuda_conv_shape *s, int out[4], char *err,
                                     size_t len);
extern "C" int rn_cuda_maxpool2d_output(const rn_cuda_conv_shape *s, int out[4], char *err,
                                        size_t len);

static int probe(rn_cuda_info *info, char *why, size_t len)
{
    std::memset(info, 0, sizeof *info);
    cudaRuntimeGetVersion(&info->runtime_version);
    cudaDriverGetVersion(&info->driver_version); // 0 without a driver
    info->cudnn_version = cudnnGetVersion();
    cudaError_t rc = cudaGetDeviceCount(&info->devices);
    if (rc == cudaErrorInsufficientDriver && info->driver_version == 0) {
        std::snprintf(why, len, "no CUDA driver (cudaGetDeviceCount: %s)", cudaGetErrorString(rc));
        return -1;
    }
    if (rc == cudaErrorInsufficientDriver) {
        std::snprintf(why, len, "the CUDA driver (version %d) is older than the runtime (%d)",
                      info->driver_version, info->runtime_version);
        return -1;
    }
    if (rc == cudaErrorNoDevice || (rc == cudaSuccess && info->devices == 0)) {
        std::snprintf(why, len, "no GPU (the CUDA driver %d sees no device)",
                      info->driver_version);
        return -1;
    }
    if (rc != cudaSuccess) {
        std::snprintf(why, len, "no usable GPU (cudaGetDeviceCount: %s, %s)",
                      cudaGetErrorName(rc), cudaGetErrorString(rc));
        return -1;
    }
    cudaDeviceProp prop;
    rc = cudaGetDeviceProperties(&prop, 0);
    if (rc != cudaSuccess) {
        std::snprintf(why, len, "GPU 0 cannot be queried (%s)", cudaGetErrorString(rc));
        return -1;
    }
    std::snprintf(info->name, sizeof info->name, "%.127s", prop.name);
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    info->memory_bytes = prop.totalGlobalMem;
    cudnnHandle_t h;
    cudnnStatus_t st = cudnnCreate(&h);
    if (st != CUDNN_STATUS_SUCCESS) {
        std::snprintf(why, len, "cuDNN does not start on %s (cudnnCreate: %s)", prop.name,
                      cudnnGetErrorString(st));
        return -1;
    }
    cudnnDestroy(h);
    // The probe's context would otherwise hold GPU memory for a run that trains on the CPU.
    cudaDeviceReset();
    return 0;
}

#define RN_STR2(x) #x
#define RN_STR(x) RN_STR2(x)

static const rn_cuda_backend backend = {
    sizeof(rn_cuda_backend),
    RN_CUDA_BACKEND_ABI,
    "CUDA " RN_STR(CUDART_VERSION) ", cuDNN " RN_STR(CUDNN_MAJOR) "." RN_STR(CUDNN_MINOR) "."
    RN_STR(CUDNN_PATCHLEVEL) ", sm " RN_CUDA_ARCHS,
    probe,
    rn_cuda_conv2d_output,
    rn_cuda_maxpool2d_output,
    // ABI 2: training on the device (net*.cu)
    rn_cuda_net_plan_shapes,
    rn_cuda_net_create,
    rn_cuda_net_destroy,
    rn_cuda_host_alloc,
    rn_cuda_host_free,
    rn_cuda_net_forward,
    rn_cuda_net_loss,
    rn_cuda_net_backward,
    rn_cuda_net_grad_sumsq,
    rn_cuda_net_grad_scale,
    rn_cuda_net_state_alloc,
    rn_cuda_net_step,
    rn_cuda_net_augment,
    rn_cuda_net_download,
    rn_cuda_net_upload,
    rn_cuda_net_put_batch,
    rn_cuda_net_logits,
    rn_cuda_net_grad_clamp,
    rn_cuda_net_grad_accumulate,
    rn_cuda_net_grad_mean,
    // ABI 3: mixed precision (net_train.cu)
    rn_cuda_net_grad_unscale,
};

extern "C" __attribute__((visibility("default"))) const rn_cuda_backend *rn_cuda_backend_entry(void)
{
    return &backend;
}
