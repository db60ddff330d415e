/* The losses, dropout and gradient-norm kernels (nn_kernels.cu), for the CUDA backend. Each
 * enqueues on `stream` (a cudaStream_t) and returns 0, or -1 with the launch error in err. */
#ifndef RN_NN_KERNELS_H
#define RN_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Cross-entropy over logits (n, k) on the device: row_loss[i] = rn_ce_row's loss of row i (the
 * caller sums them in order for the mean), dlogits (n, k) when not NULL, each element multiplied
 * by grad_scale after rounding (fp16's loss scale; at 1 no multiply, the unscaled bits); soft
 * (n, k) or labels (n) as in rn_cross_entropy2. One thread per row. */
int rn_cuda_cross_entropy(const float *logits, int64_t n, int64_t k, const int32_t *labels,
                          const float *soft, double label_smoothing, double *row_loss,
                          float *dlogits, float grad_scale, void *stream, char *err, size_t len);
/* The multi-class hinge loss (rn_multi_margin) the same way: row_loss[i] = rn_mm_row's loss of
 * row i (NaN, and a zero gradient row, for a label outside [0, k)), dlogits times grad_scale
 * when not NULL. p must be 1 or 2 (else -1, nothing launched). One thread per row. */
int rn_cuda_multi_margin(const float *logits, int64_t n, int64_t k, const int32_t *labels,
                         double margin, int p, double *row_loss, float *dlogits,
                         float grad_scale, void *stream, char *err, size_t len);

/* Dropout forward with the CPU's mask (rn_dropout_elem under `key`): y and mask (n bytes). */
int rn_cuda_dropout_forward(const float *x, float *y, uint8_t *mask, int64_t n, uint64_t key,
                            double p, void *stream, char *err, size_t len);
/* gx = mask ? g * scale : 0. */
int rn_cuda_dropout_backward(const float *g, const uint8_t *mask, float *gx, int64_t n,
                             float scale, void *stream, char *err, size_t len);

/* partial[c] = sum of g^2 over chunk c of RN_MT_CHUNK elements, in double: the host (or a second
 * pass) adds them in chunk order, as rn_grads_norm does, so the norm is deterministic. */
int rn_cuda_sumsq_chunks(const float *g, int64_t n, double *partial, void *stream, char *err,
                         size_t len);

#ifdef __cplusplus
}
#endif
#endif
