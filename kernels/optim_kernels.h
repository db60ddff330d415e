/* The optimizers' multi-tensor launch (optim_kernels.cu), for the CUDA backend. */
#ifndef RN_OPTIM_KERNELS_H
#define RN_OPTIM_KERNELS_H

#include <stddef.h>

#include "multi_tensor.h"
#include "optim_elem.h"

#ifdef __cplusplus
extern "C" {
#endif


/* One group's update. tensors and chunks are device copies of the group's table and of
 * rn_mt_plan_chunks' plan; state blocks per kind: SGD s0 = momentum buffer (or NULL); Adam s0 =
 * exp_avg, s1 = exp_avg_sq, s2 = max_exp_avg_sq (or NULL); RMSprop s0 = square_avg, s1 =
 * momentum buffer, s2 = grad_avg (each optional but s0); Lion s0 = exp_avg; LAMB s0 = exp_avg,
 * s1 = exp_avg_sq, with partial = 2 * n_chunks doubles of device scratch. */
typedef struct rn_cuda_optim_launch {
    rn_update u;                /* the plugin's device_update: kind, coefficients, lamb_adapt
                                   (u.state is for the caller building the tensor table) */
    const rn_mt_tensor *tensors;
    const rn_mt_chunk *chunks;
    int64_t n_chunks;
    void *stream;               /* cudaStream_t */
    double *partial;
} rn_cuda_optim_launch;

/* Enqueues the update on the stream: one launch (two for LAMB). 0, or -1 with the launch error. */
int rn_cuda_optim_step(const rn_cuda_optim_launch *l, char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
