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
    rn_grad_pool *gpool;   /* the activation-gradient buffers of all its chains (chain.h) */
    bool described;        /* rn_net_describe ran: its graph runs these layers unfolded, on plain
                              float tensors (set_layouts and set_bf16 keep them so) */
} rn_model;

/* Takes ownership of `layers` (an array of n pointers, malloc'ed). Checks that shapes chain
 * (err names the layer index, type and both shapes) and allocates activations. On error the layers
 * are destroyed too and *m is left empty (rn_model_free on it is a no-op). acts[0] has shape
 * (max_batch, in_shape...); grads[0] has data NULL since no layer writes the input gradient. */
int rn_model_init(rn_model *m, rn_layer **layers, int n, rn_shape in_shape, int64_t max_batch,
                  char *err, size_t errlen);
void rn_model_free(rn_model *m);
/* Activation layouts (layer.h): rn_model_init lets the chains block what they can (allow true);
 * false makes every activation plain, as a graph for another backend needs (net.h). The input
 * and the logits are plain either way, and so are the results: a blocked activation holds the
 * same numbers in another order. Once m is described (rn_net_describe) its activations stay
 * plain whatever allow says, as its gradients stay float in rn_model_set_bf16: the graph's
 * nodes hand its layers plain float tensors. 0, or nonzero with one line in err. */
int rn_model_set_layouts(rn_model *m, bool allow, char *err, size_t errlen);

/* Eval-mode forward with each batch norm after a convolution folded into it (on, the default;
 * rn_chain_fold_bn; rn_net_forward folds the same pairs): faster, and equal to the unfolded
 * forward up to rounding. off: every layer runs its own forward, so the eval forward gives the
 * bits of a train-mode forward whose batch norms are frozen. Train mode is the same either
 * way. */
void rn_model_fold_bn(rn_model *m, bool on);

/* Runs the model on acts[0] holding n samples (n <= max_batch); returns the logits tensor view
 * (batch dim n) through *out. */
int rn_model_forward(rn_model *m, int64_t n, bool train, rn_tensor *out);
/* Backward from the gradient of the logits (grads[n_layers], batch dim n); writes the grads of
 * the parameters that are not frozen (see rn_model_set_trainable) and leaves the frozen ones'
 * as they are. Input gradients are computed only back to the first layer (in model order, depth
 * first) that has a parameter to train: the model's input gradient never, and with only the head
 * trainable, nothing before the head runs at all. */
int rn_model_backward(rn_model *m, int64_t n);
/* Total parameter count: the tensors with a gradient (not buffers), frozen or not. */
int64_t rn_model_param_count(const rn_model *m);

/* Freezing (fastai's freeze / freeze_to / unfreeze). trainable: m->n_params entries, one per
 * m->params[i] in that order, read during the call only; entries of buffers (grad NULL) are
 * ignored. NULL makes everything trainable again, the state after rn_model_init. Sets
 * params[i].frozen = !trainable[i] (also in the layers' and containers' own refs); buffers, and
 * with train_bn every batch norm weight and bias, stay frozen = false. Then:
 *   - rn_model_backward writes no frozen parameter's grad: it keeps whatever it held, so the
 *     optimizer and gradient-norm code must skip frozen params (or zero the grads first).
 *     linear and batch norm skip a frozen param's gradient computation; conv2d, when it runs at
 *     all (for its dx or its other param), still computes it into a spare buffer: the oneDNN
 *     plan (runner/cpu/cpu_conv.h) has no backward-data-only call.
 *   - A layer with nothing to train and nothing trainable before it (model order, depth first,
 *     into sequential and residual blocks) does not run backward, and the first layer that
 *     trains gets no dx: with only "fc.*" trainable, backward runs fc and nothing else.
 *   - train_bn false: a batch norm whose weight and bias are both frozen runs in eval mode in
 *     every forward, train = true included (running stats, not updated; num_batches_tracked
 *     not advanced) and passes dx = dy weight / sqrt(running_var + eps). One of the two frozen:
 *     the layer trains as usual (batch stats) and only the other gets a gradient.
 *   - train_bn true (fastai's default): batch norms train as if nothing were frozen (batch
 *     stats, running stats updated, weight and bias grads written) and, being trainable, keep
 *     backward running down to the first batch norm, so the backward saves little.
 *   - Nothing else changes: dropout and the other layers' forwards are as before.
 * Returns 0, or nonzero with err when m was not initialised. */
int rn_model_set_trainable(rn_model *m, const bool *trainable, bool train_bn, char *err,
                           size_t errlen);

/* precision = "bf16" (PyTorch's autocast to bf16 on the CPU): with on, every convolution and
 * linear layer computes in bfloat16 from its next call: its input, weights and output gradient
 * are rounded to bf16 (round to nearest even), products accumulate in float32, and what it
 * writes (activations, gradients) stays float32, as do the weights the optimizer steps (fp32
 * master weights) and every other layer; except that a convolution's output gradient is
 * written in bf16 by the layer after it when that layer can (rn_chain_pair_bf16_grads; not
 * once m is described, chain.h). off restores float32. Not between a forward and its
 * backward. */
void rn_model_set_bf16(rn_model *m, bool on);

#endif
