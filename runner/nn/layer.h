/* A layer: forward/backward over one input and one output tensor, with its parameters.
 *
 * Shapes: activations are (N, C, H, W) or (N, F). `setup` is called once per input shape
 * (excluding the batch size, which may change between the full and the last partial batch); it
 * checks the shape and reports the output shape. forward/backward get tensors whose batch
 * dimension may be any n <= the max batch given to setup.
 */
#ifndef RN_LAYER_H
#define RN_LAYER_H

#include <stdbool.h>
#include "tensor.h"

typedef struct rn_layer rn_layer;

/* One parameter or buffer of a layer, named as PyTorch names it ("conv1.weight"). */
typedef struct rn_param_ref {
    char *name;       /* full name, owned by the layer */
    rn_tensor *value;
    rn_tensor *grad;  /* NULL for buffers (running stats) */
} rn_param_ref;

typedef struct rn_layer_ops {
    const char *type; /* "conv2d", "relu", ... */
    /* Check the input shape (batch dim = max batch) and compute the output shape.
     * On error write one line to err (names the layer and both shapes) and return nonzero. */
    int (*setup)(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen);
    /* y = f(x). `train` selects train/eval behaviour (dropout, batch norm). */
    int (*forward)(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train);
    /* Given dy, accumulate nothing: WRITE dx (if dx != NULL) and WRITE (not add) parameter grads.
     * x and y are the tensors of the matching forward call. */
    int (*backward)(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                    rn_tensor *dx);
    void (*destroy)(rn_layer *l);   /* frees what impl points to; NULL when nothing to free */
    /* true when y is x under another shape (flatten): the model lets y and dy share the buffers
     * of x and dx, and forward/backward skip the copy when the pointers are equal. */
    bool output_is_input;
} rn_layer_ops;

struct rn_layer {
    const rn_layer_ops *ops;
    char *name;               /* "conv1"; may be "" for parameterless layers */
    rn_param_ref *params;     /* n_params entries, owned by the layer */
    int n_params;
    uint64_t seed;            /* for dropout: the run seed mixed with the layer index */
    uint64_t calls;           /* forward calls in train mode (dropout mask counter) */
    void *impl;               /* the layer's own state */
    char err[256];            /* why the last forward/backward failed (one line); "" otherwise */
};

/* Constructors. Each returns NULL and writes err on invalid arguments. Weights are initialised
 * like PyTorch's defaults (kaiming_uniform(a=sqrt(5)) for weights, uniform(+-1/sqrt(fan_in)) for
 * biases) from `seed` with rn_rand, so a run is reproducible. */
rn_layer *rn_conv2d_create(const char *name, int64_t in_ch, int64_t out_ch, int64_t kernel,
                           int64_t stride, int64_t padding, bool bias, uint64_t seed,
                           char *err, size_t errlen);
rn_layer *rn_linear_create(const char *name, int64_t in_f, int64_t out_f, bool bias,
                           uint64_t seed, char *err, size_t errlen);
rn_layer *rn_relu_create(void);
rn_layer *rn_maxpool2d_create(int64_t kernel, int64_t stride, char *err, size_t errlen);
rn_layer *rn_dropout_create(double p, uint64_t seed, char *err, size_t errlen);
rn_layer *rn_flatten_create(void);

void rn_layer_destroy(rn_layer *l);

/* Softmax cross-entropy over logits (N, K) and integer labels, mean over the batch.
 * Returns the loss; writes dlogits (N, K) = (softmax - onehot) / N when dlogits != NULL.
 * correct (optional) receives the number of argmax hits. */
double rn_cross_entropy(const rn_tensor *logits, const int32_t *labels, rn_tensor *dlogits,
                        int64_t *correct);

#endif
