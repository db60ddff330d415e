/* The optimizers' multi-tensor launch (optim_kernels.cu), for the CUDA backend. */
#ifndef RN_OPTIM_KERNELS_H
#define RN_OPTIM_KERNELS_H

#include <stddef.h>

#include "multi_tensor.h"
#include "optim_elem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The same values as the plugin ABI's rn_update_kind. */
typedef enum rn_cuda_optim_kind {
    RN_CUDA_OPTIM_SGD = RN_UPDATE_SGD,
    RN_CUDA_OPTIM_ADAM = RN_UPDATE_ADAM,       /* Adam and AdamW (the coefficients say which decay) */
    RN_CUDA_OPTIM_RMSPROP = RN_UPDATE_RMSPROP,
    RN_CUDA_OPTIM_LION = RN_UPDATE_LION,
    RN_CUDA_OPTIM_LAMB = RN_UPDATE_LAMB,
} rn_cuda_optim_kind;

/* One group's update. tensors and chunks are device copies of the group's table and of
 * rn_mt_plan_chunks' plan; state blocks per kind: SGD s0 = momentum buffer (or NULL); Adam s0 =
 * exp_avg, s1 = exp_avg_sq, s2 = max_exp_avg_sq (or NULL); RMSprop s0 = square_avg, s1 =
 * momentum buffer, s2 = grad_avg (each optional but s0); Lion s0 = exp_avg; LAMB s0 = exp_avg,
 * s1 = exp_avg_sq, with partial = 2 * n_chunks doubles of device scratch. */
typedef struct rn_cuda_optim_launch {
    rn_cuda_optim_kind kind;
    const rn_mt_tensor *tensors;
    const rn_mt_chunk *chunks;
    int64_t n_chunks;
    void *stream;               /* cudaStream_t */
    rn_sgd_coef sgd;
    rn_adam_coef adam;
    rn_rmsprop_coef rmsprop;
    rn_lion_coef lion;
    rn_lamb_coef lamb;
    int lamb_adapt;             /* apply the trust ratio (weight_decay != 0 or always_adapt) */
    double *partial;
} rn_cuda_optim_launch;

/* Kind and coefficients from an optimizer plugin's device_update; the caller sets the tensor
 * table (each tensor's s0..s2 being the state blocks u->state names), chunks, stream, partial. */
static inline void rn_cuda_optim_from_update(rn_cuda_optim_launch *l, const rn_update *u)
{
    l->kind = (rn_cuda_optim_kind)u->kind;
    switch (u->kind) {
    case RN_UPDATE_SGD: l->sgd = u->c.sgd; break;
    case RN_UPDATE_ADAM: l->adam = u->c.adam; break;
    case RN_UPDATE_RMSPROP: l->rmsprop = u->c.rmsprop; break;
    case RN_UPDATE_LION: l->lion = u->c.lion; break;
    case RN_UPDATE_LAMB: l->lamb = u->c.lamb; break;
    }
    l->lamb_adapt = u->lamb_adapt;
}

/* Enqueues the update on the stream: one launch (two for LAMB). 0, or -1 with the launch error. */
int rn_cuda_optim_step(const rn_cuda_optim_launch *l, char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
