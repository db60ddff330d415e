/* The device network's own kernels (net_kernels.cu): the element-wise layers, the residual sum
 * and gradient accumulation, batch norm in eval mode, global average pooling, linear's bias,
 * the loss's hits, clip_grad's scaling, mixed precision's 16-bit conversions and fp16's
 * unscale. Element math is net_elem.h's (the CPU layers' formulas) and amp_elem.h's. Each
 * launcher enqueues on `stream` (a cudaStream_t), does nothing for n <= 0, and returns 0, or
 * -1 with "<what> launch: <CUDA's message>" in err. Pointers are device memory;
 * `accumulate` != 0 adds the result to what the output holds instead of writing it (the second
 * and later gradient contributions to one tensor). */
#ifndef RN_NET_KERNELS_H
#define RN_NET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[i] = a[i] + b[i], i < n (a residual sum; y may be a or b). */
int rn_cuda_add(const float *a, const float *b, float *y, int64_t n, void *stream, char *err,
                size_t len);
/* g[i] = d[i], or g[i] + d[i] with accumulate: a gradient passed through unchanged (ADD,
 * flatten, identity, eval-mode dropout) or accumulated from a scratch buffer. */
int rn_cuda_grad_copy(float *g, const float *d, int64_t n, int accumulate, void *stream,
                      char *err, size_t len);
/* ReLU: y = rn_relu_elem(x); backward gx (+)= rn_relu_grad(y, dy). */
int rn_cuda_relu_forward(const float *x, float *y, int64_t n, void *stream, char *err,
                         size_t len);
int rn_cuda_relu_backward(const float *y, const float *dy, float *gx, int64_t n, int accumulate,
                          void *stream, char *err, size_t len);
/* A residual block's activation (a RELU node without a layer): y = rn_residual_relu_elem(x);
 * its backward is rn_cuda_relu_backward's. */
int rn_cuda_residual_relu_forward(const float *x, float *y, int64_t n, void *stream, char *err,
                                  size_t len);
/* LeakyReLU with slope a (the layer's float slope). */
int rn_cuda_leaky_relu_forward(const float *x, float *y, int64_t n, float a, void *stream,
                               char *err, size_t len);
int rn_cuda_leaky_relu_backward(const float *x, const float *dy, float *gx, int64_t n, float a,
                                int accumulate, void *stream, char *err, size_t len);
/* GELU (erf form). */
int rn_cuda_gelu_forward(const float *x, float *y, int64_t n, void *stream, char *err,
                         size_t len);
int rn_cuda_gelu_backward(const float *x, const float *dy, float *gx, int64_t n, int accumulate,
                          void *stream, char *err, size_t len);

/* Batch norm in eval mode over x (n, c, hw): coef (4 c floats, device scratch) from gamma, beta,
 * running mean and variance (c each) by rn_bn_eval_coef, then y = rn_bn_apply. The backward
 * (input gradient only; eval mode's parameter gradients are not needed: a batch norm runs in
 * eval mode in training only with both parameters frozen) reads the coef the forward wrote. */
int rn_cuda_bn_eval_forward(const float *x, float *y, const float *gamma, const float *beta,
                            const float *rmean, const float *rvar, double eps, float *coef,
                            int64_t n, int64_t c, int64_t hw, void *stream, char *err,
                            size_t len);
int rn_cuda_bn_eval_backward(const float *x, const float *dy, float *gx, const float *coef,
                             int64_t n, int64_t c, int64_t hw, int accumulate, void *stream,
                             char *err, size_t len);

/* Global average pooling: y[p] = the mean of plane p of x (planes x hw), one thread per plane;
 * backward gx (+)= dy[p] / hw over the plane. */
int rn_cuda_gap_forward(const float *x, float *y, int64_t planes, int64_t hw, void *stream,
                        char *err, size_t len);
int rn_cuda_gap_backward(const float *dy, float *gx, int64_t planes, int64_t hw, int accumulate,
                         void *stream, char *err, size_t len);

/* Linear's bias: y (n, f) rows set to b (f) before the gemm adds x W^T; db[j] = the column sum
 * of dy (n, f) in double, row order. */
int rn_cuda_bias_rows(const float *b, float *y, int64_t n, int64_t f, void *stream, char *err,
                      size_t len);
int rn_cuda_bias_grad(const float *dy, float *db, int64_t n, int64_t f, void *stream, char *err,
                      size_t len);

/* hits[i] = rn_row_hit of row i of logits (n, k): against labels[i], or, with labels NULL, the
 * argmax of soft's row i. */
int rn_cuda_row_hits(const float *logits, int64_t n, int64_t k, const int32_t *labels,
                     const float *soft, int32_t *hits, void *stream, char *err, size_t len);

/* g[i] *= s (clip_grad's scaling). */
int rn_cuda_scale(float *g, int64_t n, float s, void *stream, char *err, size_t len);
/* g = rn_clamp_elem(g, v) over n (clip_grad.value). */
int rn_cuda_clamp(float *g, int64_t n, float v, void *stream, char *err, size_t len);
/* acc = rn_acc_elem(acc, g, w, first) over n, and g = acc * inv (gradient accumulation). */
int rn_cuda_accumulate(float *acc, const float *g, int64_t n, float w, int first, void *stream,
                       char *err, size_t len);
int rn_cuda_mean(float *g, const float *acc, int64_t n, float inv, void *stream, char *err,
                 size_t len);

/* Mixed precision's operands (bf16 / fp16 compute): h[i] = x[i] rounded to IEEE half when fp16
 * != 0 (rn_f16_from_f32), else to bfloat16 (rn_bf16_from_f32), as 16-bit patterns; and back,
 * y[i] (+)= the exact float of h[i] (rn_f16_to_f32 / rn_bf16_to_f32), accumulating when a
 * tensor's gradient already holds a contribution. */
int rn_cuda_narrow(const float *x, uint16_t *h, int64_t n, int fp16, void *stream, char *err,
                   size_t len);
int rn_cuda_widen(const uint16_t *h, float *y, int64_t n, int fp16, int accumulate, void *stream,
                  char *err, size_t len);
/* fp16's unscale (GradScaler.unscale_): g[i] times inv_scale by rn_unscale_elem over n; sets
 * *found_inf (a device int the caller zeroed before the first tensor) to 1 when any g[i] was inf
 * or NaN, and leaves it as it was otherwise, so one flag collects several tensors. */
int rn_cuda_unscale(float *g, int64_t n, float inv_scale, int *found_inf, void *stream,
                    char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
