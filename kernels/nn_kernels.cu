// Loss (cross-entropy, multi-margin), dropout and gradient-norm kernels. The element math is
// nn_elem.h's, which the CPU layers run and the CPU tests check against PyTorch; the norm's
// chunking is multi_tensor.h's.
#include "nn_kernels.h"

#include "multi_tensor.h"
#include "nn_elem.h"

#include <cstdio>

#include "launch.cuh"

namespace {

using rn::blocks_for;
using rn::kThreads;

// The loss scale multiplies the rounded gradient (a power of two: exact), skipped at 1 so the
// unscaled path is the same bits, NaNs included.
__device__ __forceinline__ void scale_row(float *g, int64_t k, float grad_scale)
{
    if (g && grad_scale != 1.0f)
        for (int64_t j = 0; j < k; j++) g[j] *= grad_scale;
}

__global__ void ce_kernel(const float *logits, int64_t n, int64_t k, const int32_t *labels,
                          const float *soft, double ls, double *row_loss, float *dlogits,
                          float grad_scale)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const float *z = logits + i * k;
    float *g = dlogits ? dlogits + i * k : nullptr;
    row_loss[i] = rn_ce_row(z, k, rn_row_argmax(z, k), labels ? labels[i] : -1,
                            soft ? soft + i * k : nullptr, ls, g, static_cast<double>(n));
    scale_row(g, k, grad_scale);
}

// A label outside [0, k) gives a NaN loss and a zero gradient row, as cross-entropy's.
__global__ void mm_kernel(const float *logits, int64_t n, int64_t k, const int32_t *labels,
                          double margin, int p, double *row_loss, float *dlogits,
                          float grad_scale)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    const int32_t y = labels[i];
    float *g = dlogits ? dlogits + i * k : nullptr;
    if (y < 0 || y >= k) {
        row_loss[i] = NAN;
        if (g)
            for (int64_t j = 0; j < k; j++) g[j] = 0.0f;
        return;
    }
    row_loss[i] = rn_mm_row(logits + i * k, k, y, margin, p, g, static_cast<double>(n));
    scale_row(g, k, grad_scale);
}

__global__ void dropout_fwd(const float *x, float *y, uint8_t *mask, int64_t n, uint64_t key,
                            double p, float scale)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) mask[i] = static_cast<uint8_t>(rn_dropout_elem(key, i, p, scale, x[i], &y[i]));
}

__global__ void dropout_bwd(const float *g, const uint8_t *mask, float *gx, int64_t n, float scale)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) gx[i] = mask[i] ? g[i] * scale : 0.0f;
}

__global__ void sumsq_chunks(const float *g, int64_t n, double *partial)
{
    __shared__ double s[kThreads];
    const int64_t start = static_cast<int64_t>(blockIdx.x) * RN_MT_CHUNK;
    const int64_t end = start + RN_MT_CHUNK < n ? start + RN_MT_CHUNK : n;
    double a = 0;
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
        a += static_cast<double>(g[i]) * g[i];
    s[threadIdx.x] = a;
    __syncthreads();
    for (int h = kThreads / 2; h > 0; h >>= 1) {
        if (static_cast<int>(threadIdx.x) < h) s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

}  // namespace

extern "C" int rn_cuda_cross_entropy(const float *logits, int64_t n, int64_t k,
                                     const int32_t *labels, const float *soft,
                                     double label_smoothing, double *row_loss, float *dlogits,
                                     float grad_scale, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(ce_kernel, blocks_for(n), kThreads, static_cast<cudaStream_t>(stream))(
        logits, n, k, labels, soft, label_smoothing, row_loss, dlogits, grad_scale);
    return rn::launch_check("cross-entropy launch", err, len);
}

extern "C" int rn_cuda_multi_margin(const float *logits, int64_t n, int64_t k,
                                    const int32_t *labels, double margin, int p,
                                    double *row_loss, float *dlogits, float grad_scale,
                                    void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    if (p != 1 && p != 2) {
        std::snprintf(err, len, "multi-margin: p must be 1 or 2, got %d", p);
        return -1;
    }
    RN_LAUNCH(mm_kernel, blocks_for(n), kThreads, static_cast<cudaStream_t>(stream))(
        logits, n, k, labels, margin, p, row_loss, dlogits, grad_scale);
    return rn::launch_check("multi-margin launch", err, len);
}

extern "C" int rn_cuda_dropout_forward(const float *x, float *y, uint8_t *mask, int64_t n,
                                       uint64_t key, double p, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    const float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
    RN_LAUNCH(dropout_fwd, blocks_for(n), kThreads, static_cast<cudaStream_t>(stream))(
        x, y, mask, n, key, p, scale);
    return rn::launch_check("dropout launch", err, len);
}

extern "C" int rn_cuda_dropout_backward(const float *g, const uint8_t *mask, float *gx,
                                        int64_t n, float scale, void *stream, char *err,
                                        size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(dropout_bwd, blocks_for(n), kThreads, static_cast<cudaStream_t>(stream))(
        g, mask, gx, n, scale);
    return rn::launch_check("dropout backward launch", err, len);
}

extern "C" int rn_cuda_sumsq_chunks(const float *g, int64_t n, double *partial, void *stream,
                                    char *err, size_t len)
{
    if (n <= 0) return 0;
    const unsigned chunks = static_cast<unsigned>((n + RN_MT_CHUNK - 1) / RN_MT_CHUNK);
    RN_LAUNCH(sumsq_chunks, chunks, kThreads, static_cast<cudaStream_t>(stream))(g, n, partial);
    return rn::launch_check("gradient norm launch", err, len);
}
