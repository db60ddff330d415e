// The backend's ABI 2 and 3 functions (backend.h's rn_cuda_backend fields, documented there), as
// the net_*.cu files define them and probe.cu puts them in the table.
#ifndef RN_CUDA_NET_API_H
#define RN_CUDA_NET_API_H

#include "backend.h"

extern "C" {
int rn_cuda_net_plan_shapes(const struct rn_net *desc, int64_t n, int (*dims)[4], char *err,
                            size_t len);
int rn_cuda_net_create(rn_cuda_net **out, const struct rn_net *desc,
                       const struct rn_param_ref *params, int n_params, int64_t max_batch,
                       int precision, char *err, size_t len);
void rn_cuda_net_destroy(rn_cuda_net *net);
void *rn_cuda_host_alloc(size_t bytes);
void rn_cuda_host_free(void *p);
int rn_cuda_net_forward(rn_cuda_net *net, int64_t n, int train, char *err, size_t len);
int rn_cuda_net_loss(rn_cuda_net *net, int64_t n, const rn_cuda_loss *loss, int gradient,
                     double *out, int64_t *correct, char *err, size_t len);
int rn_cuda_net_backward(rn_cuda_net *net, int64_t n, const int *trainable, char *err,
                         size_t len);
int rn_cuda_net_grad_sumsq(rn_cuda_net *net, const int *idx, int n, double *sumsq, char *err,
                           size_t len);
int rn_cuda_net_grad_scale(rn_cuda_net *net, const int *idx, int n, float factor, char *err,
                           size_t len);
int rn_cuda_net_state_alloc(rn_cuda_net *net, int i, size_t floats, char *err, size_t len);
int rn_cuda_net_step(rn_cuda_net *net, const int *idx, int n, const struct rn_update *u,
                     char *err, size_t len);
int rn_cuda_net_augment(rn_cuda_net *net, int64_t n, const struct rn_augment_op *op,
                        const float *zero_value, char *err, size_t len);
int rn_cuda_net_download(rn_cuda_net *net, const struct rn_param_ref *params, int n_params,
                         int grads, float **state, char *err, size_t len);
int rn_cuda_net_upload(rn_cuda_net *net, const struct rn_param_ref *params, int n_params,
                       float *const *state, char *err, size_t len);
int rn_cuda_net_put_batch(rn_cuda_net *net, const float *x, const int32_t *labels,
                          const float *soft, int64_t n, char *err, size_t len);
int rn_cuda_net_logits(rn_cuda_net *net, float *host, int64_t n, char *err, size_t len);
int rn_cuda_net_grad_clamp(rn_cuda_net *net, const int *idx, int n, float v, char *err,
                           size_t len);
int rn_cuda_net_grad_accumulate(rn_cuda_net *net, const int *idx, int n, float w, int first,
                                char *err, size_t len);
int rn_cuda_net_grad_mean(rn_cuda_net *net, const int *idx, int n, int64_t total, char *err,
                          size_t len);
int rn_cuda_net_grad_unscale(rn_cuda_net *net, const int *idx, int n, float inv_scale,
                             int *found_inf, char *err, size_t len);
}

#endif
