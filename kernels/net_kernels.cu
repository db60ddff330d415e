// The device network's own kernels: one thread per element (per plane, per column, per row for
// the reductions, which sum in order in double as the CPU layers do), element math from
// net_elem.h.
#include "net_kernels.h"

#include "amp_elem.h"
#include "net_elem.h"

#include <cstdio>

#include "launch.cuh"

namespace {

using rn::blocks_for;
using rn::kThreads;

__device__ __forceinline__ int64_t thread_index()
{
    return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}

__global__ void add_kernel(const float *a, const float *b, float *y, int64_t n)
{
    const int64_t i = thread_index();
    if (i < n) y[i] = rn_add_elem(a[i], b[i]);
}

__global__ void grad_copy_kernel(float *g, const float *d, int64_t n, int acc)
{
    const int64_t i = thread_index();
    if (i < n) g[i] = rn_grad_put(g[i], d[i], acc);
}

__global__ void relu_fwd(const float *x, float *y, int64_t n)
{
    const int64_t i = thread_index();
    if (i < n) y[i] = rn_relu_elem(x[i]);
}

__global__ void residual_relu_fwd(const float *x, float *y, int64_t n)
{
    const int64_t i = thread_index();
    if (i < n) y[i] = rn_residual_relu_elem(x[i]);
}

__global__ void relu_bwd(const float *y, const float *dy, float *gx, int64_t n, int acc)
{
    const int64_t i = thread_index();
    if (i < n) gx[i] = rn_grad_put(gx[i], rn_relu_grad(y[i], dy[i]), acc);
}

__global__ void leaky_fwd(const float *x, float *y, int64_t n, float a)
{
    const int64_t i = thread_index();
    if (i < n) y[i] = rn_leaky_relu_elem(x[i], a);
}

__global__ void leaky_bwd(const float *x, const float *dy, float *gx, int64_t n, float a, int acc)
{
    const int64_t i = thread_index();
    if (i < n) gx[i] = rn_grad_put(gx[i], rn_leaky_relu_grad(x[i], dy[i], a), acc);
}

__global__ void gelu_fwd(const float *x, float *y, int64_t n)
{
    const int64_t i = thread_index();
    if (i < n) y[i] = rn_gelu_elem(x[i]);
}

__global__ void gelu_bwd(const float *x, const float *dy, float *gx, int64_t n, int acc)
{
    const int64_t i = thread_index();
    if (i < n) gx[i] = rn_grad_put(gx[i], rn_gelu_grad(x[i], dy[i]), acc);
}

__global__ void bn_coef(const float *gamma, const float *beta, const float *rm, const float *rv,
                        double eps, float *coef, int64_t c)
{
    const int64_t ch = thread_index();
    if (ch < c) rn_bn_eval_coef(gamma[ch], beta[ch], rm[ch], rv[ch], eps, coef + 4 * ch);
}

// x, y (n, c, hw): element i is in channel (i / hw) % c.
__global__ void bn_eval_fwd(const float *x, float *y, const float *coef, int64_t total,
                            int64_t c, int64_t hw)
{
    const int64_t i = thread_index();
    if (i < total) y[i] = rn_bn_apply(x[i], coef + 4 * (i / hw % c));
}

__global__ void bn_eval_bwd(const float *x, const float *dy, float *gx, const float *coef,
                            int64_t total, int64_t c, int64_t hw, int acc)
{
    const int64_t i = thread_index();
    if (i < total)
        gx[i] = rn_grad_put(gx[i], rn_bn_eval_grad(x[i], dy[i], coef + 4 * (i / hw % c)), acc);
}

__global__ void gap_fwd(const float *x, float *y, int64_t planes, int64_t hw)
{
    const int64_t p = thread_index();
    if (p < planes) y[p] = rn_plane_mean(x + p * hw, hw);
}

__global__ void gap_bwd(const float *dy, float *gx, int64_t total, int64_t hw, int acc)
{
    const int64_t i = thread_index();
    if (i < total) gx[i] = rn_grad_put(gx[i], rn_plane_mean_grad(dy[i / hw], hw), acc);
}

__global__ void bias_rows(const float *b, float *y, int64_t total, int64_t f)
{
    const int64_t i = thread_index();
    if (i < total) y[i] = b[i % f];
}

__global__ void bias_grad(const float *dy, float *db, int64_t n, int64_t f)
{
    const int64_t j = thread_index();
    if (j < f) db[j] = rn_col_sum(dy, n, f, j);
}

__global__ void row_hits(const float *z, int64_t n, int64_t k, const int32_t *labels,
                         const float *soft, int32_t *hits)
{
    const int64_t i = thread_index();
    if (i < n)
        hits[i] = rn_row_hit(z + i * k, k, labels ? labels[i] : -1,
                             labels ? nullptr : soft + i * k);
}

__global__ void clamp_kernel(float *g, int64_t n, float v)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) g[i] = rn_clamp_elem(g[i], v);
}

__global__ void acc_kernel(float *a, const float *g, int64_t n, float w, int first)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) a[i] = rn_acc_elem(a[i], g[i], w, first);
}

__global__ void mean_kernel(float *g, const float *a, int64_t n, float inv)
{
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) g[i] = rn_scale_elem(a[i], inv);
}

__global__ void scale_kernel(float *g, int64_t n, float s)
{
    const int64_t i = thread_index();
    if (i < n) g[i] = rn_scale_elem(g[i], s);
}

// A 16-bit format's conversions, chosen per launch (the net's precision).
__device__ __forceinline__ uint16_t narrow(float x, int fp16)
{
    return fp16 ? rn_f16_from_f32(x) : rn_bf16_from_f32(x);
}

__device__ __forceinline__ float widen(uint16_t h, int fp16)
{
    return fp16 ? rn_f16_to_f32(h) : rn_bf16_to_f32(h);
}

__global__ void narrow_kernel(const float *x, uint16_t *h, int64_t n, int fp16)
{
    const int64_t i = thread_index();
    if (i < n) h[i] = narrow(x[i], fp16);
}

__global__ void widen_kernel(const uint16_t *h, float *y, int64_t n, int fp16, int acc)
{
    const int64_t i = thread_index();
    if (i < n) y[i] = rn_grad_put(y[i], widen(h[i], fp16), acc);
}

// A thread that meets a non-finite element stores 1: every such store writes the same value, so
// their number and order are moot (no reduction, no atomics needed).
__global__ void unscale_kernel(float *g, int64_t n, float inv_scale, int *found_inf)
{
    const int64_t i = thread_index();
    if (i < n && rn_unscale_elem(&g[i], inv_scale)) *found_inf = 1;
}

cudaStream_t as_stream(void *s)
{
    return static_cast<cudaStream_t>(s);
}

}  // namespace

extern "C" int rn_cuda_add(const float *a, const float *b, float *y, int64_t n, void *stream,
                           char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(add_kernel, blocks_for(n), kThreads, as_stream(stream))(a, b, y, n);
    return rn::launch_check("add launch", err, len);
}

extern "C" int rn_cuda_grad_copy(float *g, const float *d, int64_t n, int accumulate,
                                 void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(grad_copy_kernel, blocks_for(n), kThreads, as_stream(stream))(g, d, n, accumulate);
    return rn::launch_check("gradient copy launch", err, len);
}

extern "C" int rn_cuda_relu_forward(const float *x, float *y, int64_t n, void *stream, char *err,
                                    size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(relu_fwd, blocks_for(n), kThreads, as_stream(stream))(x, y, n);
    return rn::launch_check("relu launch", err, len);
}

extern "C" int rn_cuda_residual_relu_forward(const float *x, float *y, int64_t n, void *stream,
                                             char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(residual_relu_fwd, blocks_for(n), kThreads, as_stream(stream))(x, y, n);
    return rn::launch_check("residual relu launch", err, len);
}

extern "C" int rn_cuda_relu_backward(const float *y, const float *dy, float *gx, int64_t n,
                                     int accumulate, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(relu_bwd, blocks_for(n), kThreads, as_stream(stream))(y, dy, gx, n, accumulate);
    return rn::launch_check("relu backward launch", err, len);
}

extern "C" int rn_cuda_leaky_relu_forward(const float *x, float *y, int64_t n, float a,
                                          void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(leaky_fwd, blocks_for(n), kThreads, as_stream(stream))(x, y, n, a);
    return rn::launch_check("leaky_relu launch", err, len);
}

extern "C" int rn_cuda_leaky_relu_backward(const float *x, const float *dy, float *gx, int64_t n,
                                           float a, int accumulate, void *stream, char *err,
                                           size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(leaky_bwd, blocks_for(n), kThreads, as_stream(stream))(x, dy, gx, n, a, accumulate);
    return rn::launch_check("leaky_relu backward launch", err, len);
}

extern "C" int rn_cuda_gelu_forward(const float *x, float *y, int64_t n, void *stream, char *err,
                                    size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(gelu_fwd, blocks_for(n), kThreads, as_stream(stream))(x, y, n);
    return rn::launch_check("gelu launch", err, len);
}

extern "C" int rn_cuda_gelu_backward(const float *x, const float *dy, float *gx, int64_t n,
                                     int accumulate, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(gelu_bwd, blocks_for(n), kThreads, as_stream(stream))(x, dy, gx, n, accumulate);
    return rn::launch_check("gelu backward launch", err, len);
}

extern "C" int rn_cuda_bn_eval_forward(const float *x, float *y, const float *gamma,
                                       const float *beta, const float *rmean, const float *rvar,
                                       double eps, float *coef, int64_t n, int64_t c, int64_t hw,
                                       void *stream, char *err, size_t len)
{
    const int64_t total = n * c * hw;
    if (total <= 0) return 0;
    RN_LAUNCH(bn_coef, blocks_for(c), kThreads, as_stream(stream))(gamma, beta, rmean, rvar, eps,
                                                                    coef, c);
    if (rn::launch_check("batch norm (eval) coefficients launch", err, len)) return -1;
    RN_LAUNCH(bn_eval_fwd, blocks_for(total), kThreads, as_stream(stream))(x, y, coef, total, c,
                                                                            hw);
    return rn::launch_check("batch norm (eval) launch", err, len);
}

extern "C" int rn_cuda_bn_eval_backward(const float *x, const float *dy, float *gx,
                                        const float *coef, int64_t n, int64_t c, int64_t hw,
                                        int accumulate, void *stream, char *err, size_t len)
{
    const int64_t total = n * c * hw;
    if (total <= 0) return 0;
    RN_LAUNCH(bn_eval_bwd, blocks_for(total), kThreads, as_stream(stream))(x, dy, gx, coef, total,
                                                                            c, hw, accumulate);
    return rn::launch_check("batch norm (eval) backward launch", err, len);
}

extern "C" int rn_cuda_gap_forward(const float *x, float *y, int64_t planes, int64_t hw,
                                   void *stream, char *err, size_t len)
{
    if (planes <= 0 || hw <= 0) return 0;
    RN_LAUNCH(gap_fwd, blocks_for(planes), kThreads, as_stream(stream))(x, y, planes, hw);
    return rn::launch_check("global_avg_pool2d launch", err, len);
}

extern "C" int rn_cuda_gap_backward(const float *dy, float *gx, int64_t planes, int64_t hw,
                                    int accumulate, void *stream, char *err, size_t len)
{
    const int64_t total = planes * hw;
    if (total <= 0) return 0;
    RN_LAUNCH(gap_bwd, blocks_for(total), kThreads, as_stream(stream))(dy, gx, total, hw,
                                                                        accumulate);
    return rn::launch_check("global_avg_pool2d backward launch", err, len);
}

extern "C" int rn_cuda_bias_rows(const float *b, float *y, int64_t n, int64_t f, void *stream,
                                 char *err, size_t len)
{
    const int64_t total = n * f;
    if (total <= 0) return 0;
    RN_LAUNCH(bias_rows, blocks_for(total), kThreads, as_stream(stream))(b, y, total, f);
    return rn::launch_check("linear bias launch", err, len);
}

extern "C" int rn_cuda_bias_grad(const float *dy, float *db, int64_t n, int64_t f, void *stream,
                                 char *err, size_t len)
{
    if (f <= 0) return 0;
    RN_LAUNCH(bias_grad, blocks_for(f), kThreads, as_stream(stream))(dy, db, n, f);
    return rn::launch_check("linear bias gradient launch", err, len);
}

extern "C" int rn_cuda_row_hits(const float *logits, int64_t n, int64_t k, const int32_t *labels,
                                const float *soft, int32_t *hits, void *stream, char *err,
                                size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(row_hits, blocks_for(n), kThreads, as_stream(stream))(logits, n, k, labels, soft,
                                                                     hits);
    return rn::launch_check("accuracy launch", err, len);
}

extern "C" int rn_cuda_scale(float *g, int64_t n, float s, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(scale_kernel, blocks_for(n), kThreads, as_stream(stream))(g, n, s);
    return rn::launch_check("gradient scale launch", err, len);
}

extern "C" int rn_cuda_clamp(float *g, int64_t n, float v, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(clamp_kernel, blocks_for(n), kThreads, as_stream(stream))(g, n, v);
    return rn::launch_check("gradient clamp launch", err, len);
}

extern "C" int rn_cuda_accumulate(float *acc, const float *g, int64_t n, float w, int first,
                                  void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(acc_kernel, blocks_for(n), kThreads, as_stream(stream))(acc, g, n, w, first);
    return rn::launch_check("gradient accumulation launch", err, len);
}

extern "C" int rn_cuda_mean(float *g, const float *acc, int64_t n, float inv, void *stream,
                            char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(mean_kernel, blocks_for(n), kThreads, as_stream(stream))(g, acc, n, inv);
    return rn::launch_check("gradient mean launch", err, len);
}

extern "C" int rn_cuda_narrow(const float *x, uint16_t *h, int64_t n, int fp16, void *stream,
                              char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(narrow_kernel, blocks_for(n), kThreads, as_stream(stream))(x, h, n, fp16);
    return rn::launch_check(fp16 ? "float -> half launch" : "float -> bfloat16 launch", err,
                            len);
}

extern "C" int rn_cuda_widen(const uint16_t *h, float *y, int64_t n, int fp16, int accumulate,
                             void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(widen_kernel, blocks_for(n), kThreads, as_stream(stream))(h, y, n, fp16,
                                                                         accumulate);
    return rn::launch_check(fp16 ? "half -> float launch" : "bfloat16 -> float launch", err,
                            len);
}

extern "C" int rn_cuda_unscale(float *g, int64_t n, float inv_scale, int *found_inf,
                               void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    RN_LAUNCH(unscale_kernel, blocks_for(n), kThreads, as_stream(stream))(g, n, inv_scale,
                                                                           found_inf);
    return rn::launch_check("gradient unscale launch", err, len);
}
