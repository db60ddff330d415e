/* A chain: layers run in order, with the activations between them planned once. The model and the
 * container layers (nested sequential, residual) are all chains, so the bookkeeping lives here
 * once.
 *
 * acts[0]/grads[0] (the chain's input and its gradient) and acts[n]/grads[n] (its output and the
 * gradient coming in) belong to whoever owns the chain: forward/backward take them as arguments.
 * acts[1..n-1] and grads[1..n-1] are the chain's own, allocated for the max batch at init. */
#ifndef RN_CHAIN_H
#define RN_CHAIN_H

#include "layer.h"

/* Activation-gradient buffers shared by every chain of a model. Backward runs one chain at a
 * time, and a container's chains run inside the container's own backward, so buffers are needed
 * per nesting level, not per chain: a chain at level L alternates between the level's two
 * buffers; a container in it keeps its transients (a residual's summed gradient and its
 * shortcut's input gradient) at L + 1 and its chains at L + 2. */
#define RN_GRAD_LEVELS 32
typedef struct rn_grad_pool {
    int64_t need[RN_GRAD_LEVELS][2]; /* floats, the most any user of the buffer needs */
    float *buf[RN_GRAD_LEVELS][2];   /* owned by the pool's owner (the model) */
} rn_grad_pool;

typedef struct rn_chain {
    rn_layer **layers;     /* n layers, owned */
    int n;
    rn_tensor *acts;       /* n + 1 */
    rn_tensor *grads;      /* n + 1; grads[1..n-1] alternate between two buffers (gbuf) */
    unsigned char *gbuf;   /* n + 1: which of the two buffers grads[i] is */
    int64_t gmost;         /* floats each buffer needs */
    float *gpool[2];       /* the chain's own buffers, made on its first backward (first
                              forward with in_grad activations) unless rn_chain_share_grads
                              pointed grads at a model's pool */
    bool grads_ready;      /* grads[1..n-1].data point somewhere */
    bool *trains;          /* n: layer i has a parameter to train (a grad, not frozen) */
    bool *params_before;   /* n + 1: some layer before i trains (so layer i must pass dx) */
    bool *blocked;         /* n + 1: acts[i] and grads[i] are in the blocked layout (layer.h) */
    /* n: 0, or layer i is a ReLU folded into layer i - 1 (folds_relu): 1, and its backward
     * into layer i + 1 (takes_relu_backward): 2, or into layer i - 1 (masks_own_relu): 3 */
    unsigned char *folded;
    /* n + 1: 0, or j when acts[i] is not kept from forward to backward but lives in grads[j]'s
     * buffer: layer j (dx_may_alias_x) reads it as its input, and the layer that wrote it
     * (recompute) writes it again just before layer j's backward, which then overwrites it with
     * the gradient. acts[i..j] share it (a folded ReLU's output is its input). */
    int *in_grad;
    int n_recomputed;      /* how many activations are recomputed so */
    /* n: layer i is a convolution whose eval-mode forward takes the batch norm after it along
     * (rn_layer_ops.forward_bn), which then does not run; set at init (rn_chain_fold_bn) */
    bool *fold_bn;
    /* Whether the dy its owner passes to backward may be overwritten by its last layer (see
     * rn_layer.dy_scratch): set by a sequential for its chain before rn_chain_share_grads;
     * false for the model's chain and a residual's. */
    bool dy_scratch;
    rn_param_ref *params;  /* every layer's params in order (borrowed from the layers) */
    int n_params;
    char *where;           /* error prefix, e.g. "model.layers" -> "model.layers[3] (...)" */
} rn_chain;

/* Takes ownership of layers (a malloc'ed array of n), also on error (the layers are destroyed).
 * in: the input shape with the max batch as d[0]; out receives the output shape. Errors name the
 * layer: "<where>[i] (conv2d conv2): expected input 16xHxW, got 32x26x26" (i 1-based). */
int rn_chain_init(rn_chain *c, rn_layer **layers, int n, const rn_shape *in, rn_shape *out,
                  const char *where, char *err, size_t errlen);
void rn_chain_free(rn_chain *c);

/* y = layers(x). x and y carry the batch size n (<= max batch) in d[0]. */
int rn_chain_forward(rn_chain *c, const rn_tensor *x, rn_tensor *y, bool train, char *err,
                     size_t errlen);
/* From dy, writes every gradient of a parameter that is not frozen and, when dx is not NULL, the
 * input gradient. Layers with nothing to train and no trainable layer before them (in this chain)
 * are not run at all; the others get a dx only when the caller wants dx or a layer before them
 * trains. */
int rn_chain_backward(rn_chain *c, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                      rn_tensor *dx, char *err, size_t errlen);
/* Sets `frozen` on every parameter of the chain, its layers and the chains inside its containers,
 * and recomputes trains / params_before. trainable: c->n_params entries in c->params order
 * (entries of buffers ignored), or NULL for all trainable. train_bn: batch norm weights and biases
 * stay trainable whatever `trainable` says (see rn_model_set_trainable). */
void rn_chain_set_trainable(rn_chain *c, const bool *trainable, bool train_bn);

/* level: the chain's nesting level (the model's chain is 0). bind false: adds what the chain
 * and the containers in it need to p->need; bind true: points their gradients at p->buf (all
 * allocated), dropping any buffers of their own. A container too deep for the pool keeps its
 * own buffers. Both passes first set each layer's dy_scratch: true but for the last layer, which
 * gets the chain's. */
void rn_chain_share_grads(rn_chain *c, rn_grad_pool *p, int level, bool bind);

/* In bf16 (on), marks each inner gradient whose writer can write it in bf16 (writes_dx_bf16)
 * and whose one reader takes it so (takes_dy_bf16): a batch norm's or max pooling's input
 * gradient for the convolution before it, which would convert it to bf16 itself. Sets
 * dx_bf16 / dy_bf16 on the two layers (all false when off), in this chain and the chains inside
 * its containers. The same bits as the convolution's own conversion (a oneDNN reorder) but for
 * subnormal gradients, which oneDNN flushes to zero and rn_bf16_from_f32 keeps. Not between a
 * forward and its backward: a convolution whose pairing changes rebuilds its plans. */
void rn_chain_pair_bf16_grads(const rn_chain *c, bool on);

/* on: in eval mode, each convolution followed by a batch norm (and the ReLU folded into it, if
 * any) runs as one convolution with the batch norm folded into its weights and bias, as
 * inference engines do: the same function up to rounding (tests/test_fold_bn.c), one pass over
 * the activation fewer. off: each layer runs its own forward, as rn_net_forward does. In this
 * chain and the chains inside its containers; on by default. */
void rn_chain_fold_bn(const rn_chain *c, bool on);

/* Picks each activation's layout (layer.h): blocked where the layers on both sides take it
 * (through element-wise layers, which keep their input's) and C is a multiple of 16; plain
 * elsewhere. acts[0] gets in_blocked and acts[n] out_blocked, since the caller owns them; allow
 * false makes every activation plain. Sets each layer's in_blocked / out_blocked and calls its
 * relayout. Returns 0, or nonzero with one line in err (a blocked end the chain cannot take, or
 * a layer that could not rebuild; the chain is then unusable until a call succeeds). */
int rn_chain_set_layouts(rn_chain *c, bool in_blocked, bool out_blocked, bool allow, char *err,
                         size_t errlen);
/* The RN_LAYOUT_* flags of a container around this chain: IN | OUT | SAME when it runs with both
 * ends blocked, IN when only its input can be, 0 otherwise. */
unsigned rn_chain_layouts(const rn_chain *c);

/* The k-th chain inside a container layer (sequential: 0; residual: 0 the body, 1 the
 * shortcut), for printing the model; NULL when l has no such chain. */
const rn_chain *rn_container_chain(const rn_layer *l, int k);

/* Whether a residual block applies ReLU after its sum (false for any other layer). */
bool rn_residual_relu(const rn_layer *l);

#endif
