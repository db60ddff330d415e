/* A sequential model: layers in order, activations planned once per max batch size. */
#ifndef RN_MODEL_H
#define RN_MODEL_H

#include "chain.h"

typedef struct rn_model {
    rn_chain chain;        /* the layers and their activations */
    rn_shape in_shape;     /* per sample, e.g. 1x28x28 (ndim 3) */
    int64_t max_batch;     /* activations are allocated for this many samples */
    /* Views into `chain`, for callers: acts[0] is the input (the model's own buffer, written by
     * the caller), acts[n_layers] the logits; grads[n_layers] receives the loss gradient. */
    rn_layer **layers;
    int n_layers;
    rn_tensor *acts;       /* n_layers + 1 */
    rn_tensor *grads;      /* n_layers + 1; grads[0].data is NULL (nothing needs the input grad) */
    rn_param_ref *params;  /* all layers' params in model order (borrowed from the layers) */
    int n_params;
    char err[384];         /* why the last rn_model_forward/backward failed, naming the layer */
} rn_model;

/* Takes ownership of `layers` (an array of n pointers, malloc'ed). Checks that shapes chain
 * (err names the layer index, type and both shapes) and allocates activations. On error the layers
 * are destroyed too and *m is left empty (rn_model_free on it is a no-op). acts[0] has shape
 * (max_batch, in_shape...); grads[0] has data NULL since no layer writes the input gradient. */
int rn_model_init(rn_model *m, rn_layer **layers, int n, rn_shape in_shape, int64_t max_batch,
                  char *err, size_t errlen);
void rn_model_free(rn_model *m);

/* Runs the model on acts[0] holding n samples (n <= max_batch); returns the logits tensor view
 * (batch dim n) through *out. */
int rn_model_forward(rn_model *m, int64_t n, bool train, rn_tensor *out);
/* Backward from the gradient of the logits (grads[n_layers], batch dim n); fills param grads.
 * Skips computing the input gradient of the first layer. */
int rn_model_backward(rn_model *m, int64_t n);
/* Total parameter count (trainable tensors only). */
int64_t rn_model_param_count(const rn_model *m);

#endif
