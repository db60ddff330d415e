/* Private to runner/nn: helpers shared by the layer files. */
#ifndef RN_NN_INTERNAL_H
#define RN_NN_INTERNAL_H

#include <stdarg.h>
#include "layer.h"

/* A layer with `n_params` empty param slots and a zeroed impl of impl_size bytes; NULL on OOM. */
rn_layer *rn_nn_layer_new(const rn_layer_ops *ops, const char *name, size_t impl_size,
                          int n_params);
/* Fills slot i with "<layer name>.<suffix>"; returns 0 or -1 on OOM. */
int rn_nn_layer_set_param(rn_layer *l, int i, const char *suffix, rn_tensor *value,
                          rn_tensor *grad);
/* "linear fc1", or just "relu" for an unnamed layer. */
const char *rn_nn_layer_label(const rn_layer *l, char *buf, size_t len);
/* Per-sample shape (the batch dim dropped), "1x12x12". */
const char *rn_nn_sample_str(const rn_shape *s, char *buf, size_t len);
/* snprintf into err when err is not NULL; returns -1 so callers can `return rn_nn_err(...)`. */
int rn_nn_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* p[i] = U(-bound, bound) from rn_uniform(key, i): same values for any thread count. */
void rn_nn_fill_uniform(float *p, int64_t n, double bound, uint64_t key);
/* t with its batch dim set to n, sharing t's data. */
rn_tensor rn_nn_batch_view(const rn_tensor *t, int64_t n);

/* Applies rn_chain_set_trainable to the chains inside a container layer (trainable: l->n_params
 * entries, or NULL) and mirrors the flags into l->params; false when l is not a container. */
bool rn_nn_container_set_trainable(rn_layer *l, const bool *trainable, bool train_bn);
/* Whether l is a ReLU (rn_relu_create), which a chain may fold (rn_layer_ops.folds_relu). */
bool rn_nn_is_relu(const rn_layer *l);
/* Whether l is a batch norm layer (rn_batchnorm2d_create). */
bool rn_nn_is_batchnorm(const rn_layer *l);
/* Whether l's eval forward can take next along (rn_layer_ops.forward_bn): l can fold a batch
 * norm, has no ReLU of its own folded in, and next is a batch norm. */
bool rn_nn_folds_bn(const rn_layer *l, const rn_layer *next);
/* Evaluation with a batch norm folded into the convolution before it (rn_layer_ops.forward_bn):
 * the batch norm's eval-mode map as y = x s[ch] + t[ch] (s = gamma / sqrt(running_var + eps),
 * t = beta - running_mean s), in double; records what an eval-mode forward records, as if it had
 * run. s, t: the layer's channels each. */
void rn_batchnorm2d_eval_affine(rn_layer *bn, double *s, double *t);
/* How many times a convolution's forward_bn ran with the batch norm folded in (not in bf16,
 * which runs the two apart); for tests; 0 for other layers. */
uint64_t rn_conv2d_folded_calls(const rn_layer *conv);

/* Whether the layer has a parameter whose gradient backward writes (a grad, not frozen). */
bool rn_nn_layer_trains(const rn_layer *l);

/* precision = "bf16": the layer's products run in bf16 from its next call (conv2d.c, linear.c). */
void rn_conv2d_set_bf16(rn_layer *l, bool on);
void rn_linear_set_bf16(rn_layer *l, bool on);

/* Key for a parameter's init: the layer seed and the parameter's slot. */
#define RN_NN_INIT_KEY(seed, slot) rn_key3((seed), 0x696e6974ull /* "init" */, (uint64_t)(slot))

#endif
