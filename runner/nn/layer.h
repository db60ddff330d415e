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
struct rn_node;      /* net.h */
struct rn_grad_pool; /* chain.h */

/* Activation layouts. Every activation is plain (N, C, H, W) or (N, F) row-major, except where a
 * chain (chain.h) makes it blocked: oneDNN's nChw16c, for 4-d activations whose C is a multiple
 * of 16, with element (n, c, h, w) at ((n C/16 + c/16) H W + h W + w) 16 + c % 16 (the same
 * numel, and the first k samples of a batch are still a prefix). Between two convolutions, and
 * through the batch norms and element-wise layers between them, blocked tensors spare oneDNN a
 * reorder at each convolution's edges in every direction. A gradient has its activation's
 * layout. A layer states what it handles with these flags (rn_layer_ops.layouts): */
enum {
    RN_LAYOUT_IN = 1,   /* it can take a blocked input */
    RN_LAYOUT_OUT = 2,  /* it can give a blocked output */
    RN_LAYOUT_SAME = 4, /* its input and output have one layout, whichever (element-wise layers) */
};

/* One parameter or buffer of a layer, named as PyTorch names it ("conv1.weight"). */
typedef struct rn_param_ref {
    char *name;       /* full name, owned by the layer */
    rn_tensor *value;
    rn_tensor *grad;  /* NULL for buffers (running stats) */
    /* true: backward leaves `grad` as it is (stale: whatever it held before the freeze) and the
     * optimizer must not step this tensor. Set by rn_model_set_trainable (model.h); false by
     * default and always for buffers. */
    bool frozen;
} rn_param_ref;

typedef struct rn_layer_ops {
    const char *type; /* "conv2d", "relu", ... */
    /* Check the input shape (batch dim = max batch) and compute the output shape.
     * On error write one line to err (names the layer and both shapes) and return nonzero. */
    int (*setup)(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen);
    /* y = f(x). `train` selects train/eval behaviour (dropout, batch norm). */
    int (*forward)(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train);
    /* Given dy, accumulate nothing: WRITE dx (if dx != NULL) and WRITE (not add) the gradients
     * of the parameters that are not frozen; a frozen parameter's grad is not written.
     * x and y are the tensors of the matching forward call. */
    int (*backward)(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                    rn_tensor *dx);
    void (*destroy)(rn_layer *l);   /* frees what impl points to; NULL when nothing to free */
    /* true when y is x under another shape (flatten): the model lets y and dy share the buffers
     * of x and dx, and forward/backward skip the copy when the pointers are equal. */
    bool output_is_input;
    /* Fills node's kind and hyperparameters (net.h) for a backend that builds the layer itself;
     * NULL for containers, which rn_net_describe walks. */
    void (*describe)(const rn_layer *l, struct rn_node *node);
    /* RN_LAYOUT_* flags; 0 (the default): plain input and output only. */
    unsigned layouts;
    /* For a container, whose flags depend on its children: returns them (`layouts` unused). */
    unsigned (*layouts_of)(const rn_layer *l);
    /* Called once the chain has set in_blocked / out_blocked (after setup, before any forward),
     * to rebuild what depends on them; allow is the chain's (false: every activation plain),
     * for a container to pass to its chains. Returns 0, or nonzero with one line in err. NULL
     * when the layer just reads the flags. */
    int (*relayout)(rn_layer *l, bool allow, char *err, size_t errlen);
    /* true: with rn_layer.relu_out set, forward applies ReLU to its output itself, and backward
     * does not read its output (conv2d, batch norm). A chain then folds a ReLU that follows the
     * layer into it: the ReLU's output is the layer's, the ReLU's forward does not run, and its
     * backward masks the gradient in place, unless a neighbour does it (takes_relu_backward,
     * masks_own_relu). Same numbers, one pass and one activation fewer. */
    bool folds_relu;
    /* true: backward never reads y, so y's buffer may be reused once the layers after it have
     * read it (a residual block sums into its body's output). conv2d, batch norm, linear. */
    bool backward_skips_y;
    /* true: with rn_layer.relu_in set, backward also does the backward of the ReLU before it
     * (a folded one, see folds_relu), masking dx where that ReLU's output was not positive, and
     * the chain skips the ReLU's backward (max pooling: a window's max is that output). */
    bool takes_relu_backward;
    /* true: with rn_layer.relu_out set, backward also does the backward of that folded ReLU,
     * masking dy where the output (recomputed from x, as forward computed it) was not positive,
     * so the chain skips the ReLU's backward and nothing reads the output in backward (batch
     * norm). Takes precedence over the next layer's takes_relu_backward. */
    bool masks_own_relu;
    /* Rewrites y as the last forward computed it, bit for bit, from x and what that forward
     * kept (batch norm: its batch statistics). A chain then keeps no copy of y between forward
     * and backward when the next layer allows it (dx_may_alias_x; chain.h): it recomputes y just
     * before that layer's backward. NULL for layers that cannot. Returns 0 or sets l->err. */
    int (*recompute)(rn_layer *l, const rn_tensor *x, rn_tensor *y);
    /* true: backward reads all of x before it writes any of dx, so x may live in dx's buffer
     * (conv2d: backward-weights runs before backward-data). */
    bool dx_may_alias_x;
    /* With dx_may_alias_x: whether the backward of a batch of n reads x at all (a bf16 conv
     * reads the bf16 copy its forward made); the chain then skips recomputing x. NULL: it
     * does. Returns true when it cannot tell (no plan for n yet: no forward ran). */
    bool (*backward_reads_x)(rn_layer *l, int64_t n);
    /* bf16 input gradients between two layers (rn_chain_pair_bf16_grads): with rn_layer.dx_bf16
     * set, backward writes dx as bf16 (uint16_t, rounded as kernels/amp_elem.h's
     * rn_bf16_from_f32) in dx's buffer (batch norm, max pooling); with rn_layer.dy_bf16 set,
     * backward reads dy so (conv2d, which in bf16 would round it to bf16 itself). */
    bool writes_dx_bf16, takes_dy_bf16;
    /* For a layer with writes_dx_bf16 that can only sometimes (max pooling: windows that do not
     * overlap): whether it can for its setup. NULL: always. */
    bool (*dx_bf16_ok)(const rn_layer *l);
    /* For a container: rn_chain_share_grads for its chains and transients (chain.h), level
     * being that of the chain the container is in. NULL for other layers. */
    void (*share_grads)(rn_layer *l, struct rn_grad_pool *p, int level, bool bind);
    /* For --dry-run: how the layer computes on the CPU at its setup batch when that is not the
     * usual way, in a word or two (a convolution: "winograd"); "" otherwise. NULL: never. */
    const char *(*kernel)(const rn_layer *l);
    /* Eval-mode forward of this layer and the batch norm bn after it in one pass, y being bn's
     * output (its relu_out applied), when this layer has no relu_out itself: a convolution with
     * the batch norm folded into its weights and bias (rn_chain_fold_bn). NULL: cannot. Returns 0
     * or sets l->err. */
    int (*forward_bn)(rn_layer *l, rn_layer *bn, const rn_tensor *x, rn_tensor *y);
} rn_layer_ops;

struct rn_layer {
    const rn_layer_ops *ops;
    char *name;               /* "conv1"; may be "" for parameterless layers */
    rn_param_ref *params;     /* n_params entries, owned by the layer */
    int n_params;
    uint64_t seed;            /* for dropout: the run seed mixed with the layer index */
    uint64_t calls;           /* forward calls in train mode: dropout's mask counter, batch
                                 norm's num_batches_tracked (its batch-statistics calls). A
                                 backend that runs the layer itself advances it the same way. */
    void *impl;               /* the layer's own state */
    /* Whether its input / output (and their gradients) are blocked (see RN_LAYOUT_IN); set by
     * the chain that runs the layer, false (plain) until then. */
    bool in_blocked, out_blocked;
    /* Apply ReLU to the output (see folds_relu), or do the backward of the ReLU before this
     * layer (see takes_relu_backward); set by the chain before setup, false until. */
    bool relu_out, relu_in;
    /* Backward may overwrite dy, which nothing reads after it (a residual block masks it in
     * place instead of into a buffer of its own); set by rn_chain_share_grads (chain.h), false
     * until. */
    bool dy_scratch;
    /* The only layer of its chain, which then has no gradients of its own (a sequential there
     * may run its chain at the chain's level, container.c); set by rn_chain_share_grads. */
    bool alone;
    /* Backward writes dx / reads dy in bf16 (writes_dx_bf16, takes_dy_bf16); set by
     * rn_chain_pair_bf16_grads, false until. */
    bool dx_bf16, dy_bf16;
    char err[256];            /* why the last forward/backward failed (one line); "" otherwise */
};

/* Constructors. Each returns NULL and writes err on invalid arguments. Weights are initialised
 * like PyTorch's defaults (kaiming_uniform(a=sqrt(5)) for weights, uniform(+-1/sqrt(fan_in)) for
 * biases) from `seed` with rn_rand, so a run is reproducible. */
rn_layer *rn_conv2d_create(const char *name, int64_t in_ch, int64_t out_ch, int64_t kernel,
                           int64_t stride, int64_t padding, bool bias, uint64_t seed,
                           char *err, size_t errlen);
/* The scratchpad, in bytes, a CPU convolution may take to run Winograd (recipes:
 * conv_workspace_mib; default RN_CONV2D_CPU_WORKSPACE_MIB MiB): one that would need more runs
 * oneDNN's direct kernels, and 0 keeps every convolution direct (runner/cpu/cpu_conv.h).
 * Process-wide: call it before building models. A convolution makes a plan per batch size as it
 * meets them, and each plan follows the value at its making. */
#define RN_CONV2D_CPU_WORKSPACE_MIB 16
void rn_conv2d_set_cpu_workspace(size_t bytes);
rn_layer *rn_linear_create(const char *name, int64_t in_f, int64_t out_f, bool bias,
                           uint64_t seed, char *err, size_t errlen);
rn_layer *rn_relu_create(void);
rn_layer *rn_maxpool2d_create(int64_t kernel, int64_t stride, char *err, size_t errlen);
/* With -inf padding on every side (nn.MaxPool2d(kernel, stride, padding)); padding <= kernel/2. */
rn_layer *rn_maxpool2d_create2(int64_t kernel, int64_t stride, int64_t padding, char *err,
                               size_t errlen);
rn_layer *rn_dropout_create(double p, uint64_t seed, char *err, size_t errlen);
rn_layer *rn_flatten_create(void);

/* nn.Conv2d with every option: square kernel, symmetric zero padding. */
typedef struct rn_conv2d_args {
    int64_t in_ch, out_ch; /* >= 1, both divisible by groups */
    int64_t kernel;        /* >= 1 */
    int64_t stride;        /* >= 1; PyTorch's default is 1 */
    int64_t padding;       /* >= 0 on every side; default 0 */
    int64_t dilation;      /* >= 1 (1: a dense kernel); default 1 */
    int64_t groups;        /* >= 1; in_ch == out_ch == groups is a depthwise conv; default 1 */
    bool bias;             /* default true */
} rn_conv2d_args;
/* Params "<name>.weight" (out_ch, in_ch / groups, k, k) and "<name>.bias" (out_ch), both
 * U(+-1/sqrt(fan_in)) with fan_in = in_ch / groups * k * k. */
rn_layer *rn_conv2d_create2(const char *name, const rn_conv2d_args *a, uint64_t seed, char *err,
                            size_t errlen);

/* nn.BatchNorm2d(channels, eps, momentum) on (N, C, H, W). Params "<name>.weight" (ones) and
 * "<name>.bias" (zeros); buffers (grad NULL) "<name>.running_mean" (zeros) and
 * "<name>.running_var" (ones). Train mode normalises with the batch's mean and biased variance
 * and updates running = (1 - momentum) running + momentum batch (unbiased variance); eval mode
 * uses the running stats. eps > 0 (PyTorch: 1e-5), momentum in [0, 1] (PyTorch: 0.1).
 * With weight and bias both frozen (rn_param_ref.frozen) every forward runs in eval mode, and
 * backward passes dx = dy weight / sqrt(running_var + eps). */
rn_layer *rn_batchnorm2d_create(const char *name, int64_t channels, double eps, double momentum,
                                char *err, size_t errlen);
/* torchvision's "<name>.num_batches_tracked": train-mode forwards so far (an int64 buffer, not a
 * float param, so it is kept apart); -1 when l is not a batch norm. The setter is for loading a
 * state dict; it returns nonzero when l is not a batch norm. */
int64_t rn_batchnorm2d_num_batches_tracked(const rn_layer *l);
int rn_batchnorm2d_set_num_batches_tracked(rn_layer *l, int64_t n);

/* nn.LeakyReLU(negative_slope): y = x for x > 0, negative_slope x otherwise (PyTorch: 0.01).
 * Returns NULL with err when the slope is not finite. */
rn_layer *rn_leaky_relu_create(double negative_slope, char *err, size_t errlen);
/* nn.GELU() (approximate='none'): y = x (1 + erf(x / sqrt 2)) / 2. */
rn_layer *rn_gelu_create(void);
/* nn.AvgPool2d(kernel, stride, padding, ceil_mode=False, count_include_pad): square window,
 * floor mode; stride >= 1 (PyTorch's default is the kernel), 0 <= padding <= kernel / 2. With
 * count_include_pad (PyTorch's default) the zero padding counts in every window's divisor. */
rn_layer *rn_avgpool2d_create(int64_t kernel, int64_t stride, int64_t padding,
                              bool count_include_pad, char *err, size_t errlen);
/* nn.AdaptiveAvgPool2d((1, 1)): (N, C, H, W) -> (N, C, 1, 1), the mean of each plane. */
rn_layer *rn_global_avgpool2d_create(void);
/* nn.Identity(): y = x (the model lets them share a buffer). */
rn_layer *rn_identity_create(void);

/* Containers. Each takes ownership of its child arrays (malloc'ed, n pointers), also on error;
 * `where` strings name the children in errors ("model.layers[5].body"). Children carry their full
 * PyTorch names already ("layer1.0.conv1"); a container's params are its children's, in order.
 * sequential: the children in order (torchvision's nn.Sequential, e.g. "layer1").
 * residual: y = relu?(body(x) + shortcut(x)), the shortcut being the identity when n_shortcut is
 * 0 (torchvision's BasicBlock with its optional downsample). */
rn_layer *rn_sequential_create(const char *name, rn_layer **children, int n, const char *where,
                               char *err, size_t errlen);
rn_layer *rn_residual_create(const char *name, rn_layer **body, int n_body, rn_layer **shortcut,
                             int n_shortcut, bool relu, const char *where_body,
                             const char *where_shortcut, char *err, size_t errlen);

void rn_layer_destroy(rn_layer *l);

/* Softmax cross-entropy over logits (N, K) and integer labels, mean over the batch.
 * Returns the loss; writes dlogits (N, K) = (softmax - onehot) / N when dlogits != NULL.
 * correct (optional) receives the number of argmax hits. */
double rn_cross_entropy(const rn_tensor *logits, const int32_t *labels, rn_tensor *dlogits,
                        int64_t *correct);
/* F.cross_entropy(logits, target, label_smoothing=ls), mean over the batch; logits (N, K).
 * The target is soft_targets (N, K, row-major; class probabilities, as for CutMix/Mixup) when
 * not NULL, else labels (N class indices). label_smoothing in [0, 1] mixes the target with the
 * uniform distribution: t' = (1 - ls) t + ls / K. Returns the loss (NaN for a label outside
 * [0, K), a bad label_smoothing, n == 0 or no target); writes dlogits (N, K) = (softmax *
 * sum(t') - t') / N when dlogits != NULL. correct (optional) receives the number of rows whose
 * argmax is the label, or the argmax of the soft target when labels is NULL. */
double rn_cross_entropy2(const rn_tensor *logits, const int32_t *labels, const float *soft_targets,
                         double label_smoothing, rn_tensor *dlogits, int64_t *correct);
/* torch.nn.MultiMarginLoss(p, margin) on logits (N, K) and class indices, mean over the batch:
 * loss_i = sum_{j != y_i} max(0, margin - z_{i,y_i} + z_{i,j})^p / K, p = 1 or 2. Returns NaN
 * for a label outside [0, K), another p, no labels or n == 0; writes dlogits (N, K) when not
 * NULL (the subgradient 0 at a hinge's kink, as torch); correct gets the argmax hits. */
double rn_multi_margin(const rn_tensor *logits, const int32_t *labels, double margin, int p,
                       rn_tensor *dlogits, int64_t *correct);

#endif
