/* What happens to the gradients between backward and the optimizer step: accumulation over
 * micro-batches, the global norm, clipping. */
#ifndef RN_GRADS_H
#define RN_GRADS_H

#include "model.h"

typedef struct rn_grads {
    const rn_model *m;
    float **acc;       /* per parameter: the running sum of n_i * grad_i (accumulate > 1 only) */
    double *partial;   /* per chunk: partial sums of squares for the norm */
    int64_t max_chunks;
    const bool *trainable; /* per model parameter, whether it trains in this stage; NULL = all */
} rn_grads;

/* acc buffers only when accumulate > 1. */
int rn_grads_init(rn_grads *g, const rn_model *m, int64_t accumulate, char *err, size_t errlen);
void rn_grads_free(rn_grads *g);

/* After micro-batch i's backward (its grads are the mean over its n samples): acc = n * grad
 * when first, else acc += n * grad. */
void rn_grads_accumulate(rn_grads *g, int64_t n, int first);
/* grad = acc / total: the gradient of the mean loss over every sample of the step. */
void rn_grads_finish(rn_grads *g, int64_t total);

/* The L2 norm of all trainable gradients together (torch.nn.utils.clip_grad_norm_'s total
 * norm), summed in double over fixed chunks, so it does not depend on the thread count. */
double rn_grads_norm(rn_grads *g);
/* grad *= s for every trainable gradient. */
void rn_grads_scale(rn_grads *g, float s);
/* grad = clamp(grad, -v, v) (torch.nn.utils.clip_grad_value_). */
void rn_grads_clamp(rn_grads *g, float v);

#endif
