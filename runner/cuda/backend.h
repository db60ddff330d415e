/* The CUDA backend module's interface to the core (internal: the core and rn_cuda.so are built
 * together). The core loads lib/runner/backends/rn_cuda.so with dlopen only when a recipe or
 * --device asks for "cuda" or "auto", so `runner` itself never links CUDA and starts on machines
 * without it. The module exports one symbol, rn_cuda_backend_entry. */
#ifndef RN_CUDA_BACKEND_H
#define RN_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rn_net;       /* runner/nn/net.h: the model as a graph of primitive nodes */
struct rn_param_ref; /* runner/nn/layer.h: a model parameter or buffer (host tensors) */
struct rn_update;    /* include/runner/plugin.h: an optimizer step (device_update) */
struct rn_augment_op;/* include/runner/plugin.h: an augmentation's batch plan (device_plan) */

/* A network on the device, built from an rn_net (opaque; see net_create). */
typedef struct rn_cuda_net rn_cuda_net;

#define RN_CUDA_BACKEND_ABI 3
#define RN_CUDA_BACKEND_FILE "rn_cuda.so"

/* What the probe found on device 0. */
typedef struct rn_cuda_info {
    int devices;             /* GPUs the runtime sees */
    char name[128];          /* device 0's name */
    int cc_major, cc_minor;  /* its compute capability */
    size_t memory_bytes;     /* its global memory */
    int runtime_version;     /* cudaRuntimeGetVersion, e.g. 13000 */
    int driver_version;      /* cudaDriverGetVersion, 0 without a driver */
    size_t cudnn_version;    /* cudnnGetVersion, e.g. 91900 */
} rn_cuda_info;

/* A 2-d convolution or pooling as cuDNN sees it: NCHW input and, for a convolution, the
 * filter (out_ch, in_ch / groups, kh, kw). */
typedef struct rn_cuda_conv_shape {
    int n, c, h, w;          /* input */
    int out_ch, kh, kw;      /* filter (pooling: out_ch ignored, the window is kh x kw) */
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
} rn_cuda_conv_shape;

/* The device network's compute precision (the recipe's `precision`). In all three the master
 * parameters, their gradients, the optimizer state and every activation between layers are
 * float32; what changes is the arithmetic of convolutions and linear layers:
 *   FP32  float32 throughout (FMA math: no TF32, as the CPU computes);
 *   BF16  their operands rounded to bfloat16 (round to nearest even), products accumulated in
 *         float32 on tensor cores; a convolution's output (and input and filter gradients) is
 *         rounded to bfloat16 too, as cuDNN's pseudo-bf16 configuration gives it, then widened;
 *   FP16  the same in IEEE half. The core scales the loss (net_loss's grad_scale) and unscales
 *         the gradients (net_grad_unscale) with GradScaler's rules (runner/core/grad_scaler.h),
 *         so that small gradients survive half's range. */
enum {
    RN_CUDA_FP32 = 0,
    RN_CUDA_BF16 = 1,
    RN_CUDA_FP16 = 2,
};

/* The loss net_loss computes over the logits, as the CPU's (runner/nn/layer.h). */
enum {
    RN_CUDA_LOSS_CROSS_ENTROPY = 0, /* rn_cross_entropy2: labels or soft targets, smoothing */
    RN_CUDA_LOSS_MULTI_MARGIN = 1,  /* rn_multi_margin: labels only */
};
typedef struct rn_cuda_loss {
    int kind;                /* RN_CUDA_LOSS_* */
    int soft;                /* cross-entropy: the batch's soft targets instead of its labels */
    double label_smoothing;  /* cross-entropy: in [0, 1] */
    double margin;           /* multi-margin: margin (1) */
    int p;                   /* multi-margin: 1 or 2 */
    float grad_scale;        /* the logits' gradient is multiplied by it: fp16's loss scale,
                                1 otherwise (the loss read back is not scaled) */
} rn_cuda_loss;

typedef struct rn_cuda_backend {
    size_t struct_size;
    int abi;                 /* RN_CUDA_BACKEND_ABI */
    const char *build;       /* "CUDA 13.0, cuDNN 9.19.0, sm_80;90" */
    /* Whether there is a GPU to train on: 0 with *info filled, or -1 with one line saying what
     * is missing (the driver, a device, cuDNN) in why. Needs no GPU to run. */
    int (*probe)(rn_cuda_info *info, char *why, size_t len);
    /* Output shape (n, c, h, w) of a convolution from cuDNN's descriptors
     * (cudnnGetConvolution2dForwardOutputDim): descriptor calls need no device. 0, or -1 with
     * cuDNN's message. */
    int (*conv2d_output)(const rn_cuda_conv_shape *s, int out[4], char *err, size_t len);
    /* The same for max pooling (cudnnGetPooling2dForwardOutputDim). */
    int (*maxpool2d_output)(const rn_cuda_conv_shape *s, int out[4], char *err, size_t len);

    /* ---- ABI 2: training on the device --------------------------------------------------
     * The network is built from rn_net_describe's graph: the same nodes, the same tensors,
     * the same parameters (by index into rn_model.params). Every function that takes err
     * writes one line on failure naming the node ("layer1.0.conv1 (conv2d): ...") and, for an
     * out-of-memory, the bytes asked and what for. Work is enqueued on the net's compute stream;
     * functions that return host values (loss, norms, downloads) synchronize it. */

    /* The descriptor plan without a device: dims[k] = the output (n, c, h, w) of node k at
     * batch n as cuDNN's descriptors give it (convolution and pooling nodes), or as the
     * backend's own kernels compute it (the others; 2-d tensors as (n, f, 1, 1)). 0, or -1. */
    int (*net_plan_shapes)(const struct rn_net *desc, int64_t n, int (*dims)[4], char *err,
                           size_t len);
    /* Builds the network on the current device for batches up to max_batch: parameters and
     * buffers copied from params[0..n_params) (the model's, host values), their gradients,
     * every tensor of desc and its gradient, cuDNN and cuBLAS handles and descriptors, and for
     * each convolution an algorithm per direction and batch size, found once with
     * cudnnFindConvolution*AlgorithmEx and cached, all sharing one workspace grown to the
     * largest need. desc must outlive the net (its nodes' layers carry the train-mode call
     * counters, see net_forward). precision: RN_CUDA_FP32, _BF16 or _FP16 (for every call after;
     * the algorithms are found for its data types). */
    int (*net_create)(rn_cuda_net **out, const struct rn_net *desc,
                      const struct rn_param_ref *params, int n_params, int64_t max_batch,
                      int precision, char *err, size_t len);
    void (*net_destroy)(rn_cuda_net *net);
    /* Pinned host memory for the loader's batch slots (cudaHostAlloc), so copies are
     * asynchronous; free with host_free. NULL on failure. */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    /* Forward over the first n samples of the input: train as the CPU layers do (batch norm on
     * batch statistics, updating running stats with momentum; dropout's counter mask). In train
     * mode it advances node->layer->calls (rn_layer, on the host) of every dropout node and of
     * every batch norm that used batch statistics (not both weight and bias frozen): the
     * dropout mask counter and num_batches_tracked, as the CPU layers advance them. */
    int (*net_forward)(rn_cuda_net *net, int64_t n, int train, char *err, size_t len);
    /* The loss over the logits (kernels/nn_kernels.cu), as loss describes it; writes the
     * logits' gradient (of the mean over n, times loss->grad_scale) when gradient != 0 (backward
     * will follow). *out (the mean, unscaled; NULL: not wanted) and *correct (argmax hits; NULL:
     * not computed) are read back. */
    int (*net_loss)(rn_cuda_net *net, int64_t n, const rn_cuda_loss *loss, int gradient,
                    double *out, int64_t *correct, char *err, size_t len);
    /* Backward from the logits' gradient: every parameter gradient that is not frozen
     * (trainable[i] false: left as it is), every tensor gradient needed for them. */
    int (*net_backward)(rn_cuda_net *net, int64_t n, const int *trainable, char *err,
                        size_t len);
    /* Sum of squares of the gradients of params idx[0..n) (double, in a fixed order) read back:
     * for clip_grad and the non-finite check. Then scales them by factor when factor != 1. */
    int (*net_grad_sumsq)(rn_cuda_net *net, const int *idx, int n, double *sumsq, char *err,
                          size_t len);
    int (*net_grad_scale)(rn_cuda_net *net, const int *idx, int n, float factor, char *err,
                          size_t len);
    /* Optimizer state for param i: floats per element (a plugin's state_floats), zeroed. */
    int (*net_state_alloc)(rn_cuda_net *net, int i, size_t floats, char *err, size_t len);
    /* One optimizer step of a group (params idx[0..n)) as the plugin's device_update gave it:
     * one multi-tensor launch (two for LAMB). */
    int (*net_step)(rn_cuda_net *net, const int *idx, int n, const struct rn_update *u,
                    char *err, size_t len);
    /* An augmentation plugin's plan for the batch last put (kernels/augment_kernels.cu). The
     * plan's array is host memory copied asynchronously, pinned for the copy not to wait (the
     * loader's aux block is): like a put batch, it must stay untouched until the next
     * synchronizing call. zero_value (c floats, CROP's fill) is uploaded when it changes. */
    int (*net_augment)(rn_cuda_net *net, int64_t n, const struct rn_augment_op *op,
                       const float *zero_value, char *err, size_t len);
    /* Device -> host: values of params[0..n_params) (with the running stats), and with grads
     * their gradients; state copies param i's optimizer state into state[i] when state is not
     * NULL (for checkpoints). Host -> device: the reverse, after a restore or a load. */
    int (*net_download)(rn_cuda_net *net, const struct rn_param_ref *params, int n_params,
                        int grads, float **state, char *err, size_t len);
    int (*net_upload)(rn_cuda_net *net, const struct rn_param_ref *params, int n_params,
                      float *const *state, char *err, size_t len);
    /* Enqueues the copy of a batch from host memory (pinned: from host_alloc) into the input,
     * labels and (when soft is not NULL) soft-target buffers on the copy stream, and records
     * the event net_forward waits for. The copy is known to be done only after the next
     * synchronizing call (net_loss, net_logits, a download): the host buffers must stay
     * untouched until then. */
    int (*net_put_batch)(rn_cuda_net *net, const float *x, const int32_t *labels,
                         const float *soft, int64_t n, char *err, size_t len);
    /* Copies the logits of the last forward (n rows of the output tensor) to host memory
     * (synchronizing): evaluation computes its loss, accuracy and confusion on the host. */
    int (*net_logits)(rn_cuda_net *net, float *host, int64_t n, char *err, size_t len);
    /* clip_grad.value: the gradients of params idx[0..n) clamped to [-v, v]. */
    int (*net_grad_clamp)(rn_cuda_net *net, const int *idx, int n, float v, char *err,
                          size_t len);
    /* Gradient accumulation (accumulate = k micro-batches per step), as grads.c: after each
     * micro-batch's backward, sum_i = w g_i (first) or sum_i + w g_i, w = its samples; then
     * net_grad_mean sets g_i = sum_i * (1 / total samples). The sums live on the device (one
     * buffer per parameter, allocated on first use). */
    int (*net_grad_accumulate)(rn_cuda_net *net, const int *idx, int n, float w, int first,
                               char *err, size_t len);
    int (*net_grad_mean)(rn_cuda_net *net, const int *idx, int n, int64_t total, char *err,
                         size_t len);
    /* ---- ABI 3: mixed precision ------------------------------------------------------------
     * fp16's unscale (GradScaler.unscale_): the gradients of params idx[0..n) multiplied by
     * inv_scale (kernels/amp_elem.h's rn_unscale_elem); *found_inf (read back) is 1 when any of
     * them was inf or NaN before, 0 otherwise. */
    int (*net_grad_unscale)(rn_cuda_net *net, const int *idx, int n, float inv_scale,
                            int *found_inf, char *err, size_t len);
} rn_cuda_backend;

typedef const rn_cuda_backend *(*rn_cuda_backend_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
