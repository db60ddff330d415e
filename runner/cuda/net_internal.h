// The device network (rn_cuda_net) shared by the backend's net_*.cu files: what net_create
// builds, and the helpers every file uses (device allocation with the node-naming out-of-memory
// message, error lines, cuDNN/cuBLAS status checks). CUDA C++ only, internal to rn_cuda.so.
#ifndef RN_CUDA_NET_INTERNAL_H
#define RN_CUDA_NET_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "backend.h"
#include "multi_tensor.h"

extern "C" {
#include "net.h"  // runner/nn: rn_net, rn_node, rn_layer, rn_param_ref (structs only)
}

// Algorithms found for one batch size of one convolution (cudnnFind*AlgorithmEx, then cached).
struct rn_conv_algos {
    int64_t n;                              // the batch size, 0 for an empty slot
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_ws, data_ws, filter_ws;      // their workspace bytes
    // The math type each was found with: under bf16 / fp16, Find's results mix tensor-op and
    // default math, and cuDNN picks the kernel (and its workspace) from algorithm and math type
    // together, so the descriptor is set to it before each call. (fp32 keeps FMA math.)
    cudnnMathType_t fwd_math, data_math, filter_math;
    bool have_fwd, have_data, have_filter;  // which directions have been found
};

#define RN_CONV_ALGO_SLOTS 4  // batch sizes cached per convolution (full, last, eval, ...)

// One node's device state: descriptors set for the batch of each call, its parameters' device
// buffers (index into rn_cuda_net.params), and per kind what backward needs.
struct rn_cuda_node {
    const rn_node *node;                    // the description's node (desc outlives the net)
    cudnnTensorDescriptor_t x_desc, y_desc; // 4-d NCHW at the call's batch
    cudnnTensorDescriptor_t bias_desc;      // conv bias (1, out_ch, 1, 1) / bn (1, c, 1, 1)
    cudnnFilterDescriptor_t w_desc;         // conv
    cudnnTensorDescriptor_t hx_desc;        // conv under bf16 / fp16 (NULL under fp32): x, y
    cudnnTensorDescriptor_t hy_desc;        //   and the filter in the 16-bit type, x and y
    cudnnFilterDescriptor_t hw_desc;        //   set per batch as x_desc and y_desc
    cudnnConvolutionDescriptor_t conv;      // conv (tensor-op math under bf16 / fp16)
    cudnnPoolingDescriptor_t pool;          // max / avg pool
    rn_conv_algos algos[RN_CONV_ALGO_SLOTS];
    int next_slot;                          // the slot replaced next when all are used
    float *save_mean, *save_invvar;         // bn: cuDNN's saved batch stats (c floats each)
    float *coef;                            // bn: eval-mode coefficients (4 c floats)
    bool bn_train;                          // bn: the last forward used batch stats
    uint8_t *mask;                          // dropout: the last train forward's mask
    bool drop_train;                        // dropout: the last forward dropped
    uint16_t *x16, *w16;                    // conv / linear under bf16 / fp16: the forward's
                                            //   16-bit input and weights, which backward reads
};

// A parameter or buffer on the device: value, gradient (NULL for buffers), optimizer state.
struct rn_cuda_param {
    float *value, *grad, *state;
    float *acc;                             // gradient accumulation's sums (NULL until used)
    int64_t numel;
    size_t state_floats;                    // state floats per element (0: none yet)
};

struct rn_cuda_net {
    const rn_net *desc;
    int64_t max_batch;
    int device;
    int precision;                          // RN_CUDA_FP32, _BF16 or _FP16 (net_create's)
    cudaStream_t compute, copy;
    cudaEvent_t input_ready, input_consumed;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    rn_cuda_node *nodes;                    // desc->n_nodes
    float **acts, **grads;                  // desc->n_tensors each (grads[input] NULL)
    int64_t *per_sample;                    // floats per sample of each tensor
    rn_cuda_param *params;
    int n_params;
    // What the caller fills (copy stream) and what the step reads (compute stream): forward
    // copies input, labels and soft targets to acts[input] / loss_labels / loss_soft, so the copy
    // stream can bring the next batch while backward still reads the current one.
    float *input, *soft;
    int32_t *labels;
    int32_t *loss_labels;
    float *loss_soft;
    int64_t classes;                        // the logits' width
    double *row_loss;                       // max_batch
    int32_t *hits;                          // max_batch
    double *row_loss_host;                  // pinned host copies the loss reads back into
    int32_t *hits_host;                     //   (max_batch each): no allocation per step
    float *scratch;                         // the largest tensor or parameter, for gradients
    int64_t scratch_floats;                 //   that must be accumulated and cuDNN's Find outputs
    float *pscratch;                        // 2 x the largest parameter: frozen params' gradients
    void *workspace;                        // cuDNN's, shared, grown to the largest need
    size_t workspace_bytes;
    struct rn_step_plan *plans;             // net_step's uploaded groups (RN_STEP_PLANS)
    rn_mt_tensor *step_tensors;             // net_step's table under construction (n_params)
    int n_plans;
    double *partial;                        // net_grad_sumsq's chunk sums, device and pinned host:
    double *partial_host;                   //   partial_count, every gradient's chunks at once
    size_t partial_count;
    float *aug_x0, *aug_t0, *aug_zero;      // net_augment's scratch (allocated on first use)
    void *aug_plan;                         // the plan's arrays copied to the device
    size_t aug_plan_bytes;
    float *aug_zero_host;                   // the padding fill aug_zero holds (c floats)
    // bf16 / fp16: the 16-bit results of the running node, shared by all (nodes run one after
    // another on the compute stream), each sized for the largest at max_batch: a convolution's
    // input gradient (x) and filter gradient (w), any node's output or output gradient (y); also
    // Find's operands. (The forward's x and W are per node: rn_cuda_node.x16, w16.) NULL under
    // fp32.
    uint16_t *half_x, *half_w, *half_y;
    int *found_inf;                         // net_grad_unscale's flag (allocated on first use)
};

// One parameter group as net_step uploaded it: its multi-tensor table and chunk plan on the
// device, kept while the table (parameter, gradient and state pointers) stays the same, so a
// step enqueues one launch and no copy.
#define RN_STEP_PLANS 16
struct rn_step_plan {
    rn_mt_tensor *host;                     // n tensors, as uploaded (malloc)
    int n;
    int64_t n_chunks;
    void *dev;                              // tensors, chunks, 2 n_chunks doubles (LAMB)
};

// cudaMalloc of bytes through one door: on failure err gets "<who> (<kind>): out of GPU memory:
// <bytes> bytes for <what> (<free> of <total> free)". 0, or -1. bytes == 0 gives NULL.
int rn_net_alloc(void **p, size_t bytes, const char *who, const char *kind, const char *what,
                 char *err, size_t len);
// Grows *p (a device buffer of *have bytes) to at least need bytes; the old contents are lost.
int rn_net_grow(void **p, size_t *have, size_t need, const char *who, const char *kind,
                const char *what, char *err, size_t len);

// "<node> (<kind>): <what>: <detail>" in err ("network: ..." for node NULL); returns -1.
int rn_node_fail(const rn_node *node, const char *what, const char *detail, char *err,
                 size_t len);
// The same around the message a launcher left in err.
int rn_node_wrap(const rn_node *node, const char *what, char *err, size_t len);
int rn_cudnn_fail(const rn_node *node, const char *what, cudnnStatus_t st, char *err, size_t len);
int rn_cublas_fail(const rn_node *node, const char *what, cublasStatus_t st, char *err,
                   size_t len);
int rn_cuda_fail(const rn_node *node, const char *what, cudaError_t rc, char *err, size_t len);

// The elements of shape s with batch n (d[0] replaced).
int64_t rn_shape_numel_at(const rn_shape *s, int64_t n);
// The (n, c, h, w) cuDNN sees of shape s at batch n: 2-d shapes as (n, f, 1, 1).
void rn_shape_nchw(const rn_shape *s, int64_t n, int dims[4]);

// net_conv.cu: cuDNN's data type of a precision (float, bfloat16, half); a convolution node's
// filter descriptor in a type and its convolution descriptor for a precision, as net_create
// sets them and net_plan_shapes checks them without a device.
cudnnDataType_t rn_cudnn_type(int precision);
cudnnStatus_t rn_conv_filter_desc(const rn_node *node, cudnnDataType_t type,
                                  cudnnFilterDescriptor_t w);
cudnnStatus_t rn_conv_desc(const rn_node *node, int precision, cudnnConvolutionDescriptor_t c);
// net_plan.cu: a pooling node's descriptor (max deterministic, or average with or without the
// padding in the count), as net_create sets it and net_plan_shapes checks it.
cudnnStatus_t rn_pool_desc(const rn_node *node, cudnnPoolingDescriptor_t pd);
// Descriptors for a convolution node (at create, in the net's precision), and the three
// directions (acc: the input gradient is added to, beta = 1).
int rn_conv_setup(rn_cuda_net *net, rn_cuda_node *cn, char *err, size_t len);
int rn_conv_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len);
int rn_conv_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool acc,
                     bool want_dw, bool want_db, char *err, size_t len);

// net_conv_find.cu: the algorithms of batch n for the directions asked (found once and cached
// per node, on the descriptors and buffers of the net's precision; grows the shared workspace).
// NULL with the node's line in err.
rn_conv_algos *rn_conv_find(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool fwd, bool data,
                            bool filter, char *err, size_t len);

// net_half.cu: bf16 / fp16 compute. "fp32", "bf16", "fp16" for messages; the 16-bit type of the
// net's precision for cuBLAS.
const char *rn_precision_label(int precision);
cudaDataType_t rn_half_cublas_type(const rn_cuda_net *net);
// Each convolution and linear node's x16 and w16, and the shared half scratch (half_x, half_w,
// half_y) sized for the largest need; an out-of-memory names the node. A no-op under fp32.
int rn_half_create(rn_cuda_net *net, char *err, size_t len);
// n floats of x into the 16-bit type at h, and back into y (added when acc); err names node.
int rn_half_narrow(rn_cuda_net *net, const rn_node *node, const float *x, uint16_t *h, int64_t n,
                   char *err, size_t len);
int rn_half_widen(rn_cuda_net *net, const rn_node *node, const uint16_t *h, float *y, int64_t n,
                  bool acc, char *err, size_t len);
// rn_cudnn_fail with the precision named ("<node> (<kind>): <what> in bf16: <cuDNN's message>"):
// cuDNN may refuse a shape in 16 bits it takes in float32 (grouped convolutions, old GPUs).
int rn_half_cudnn_fail(const rn_cuda_net *net, const rn_node *node, const char *what,
                       cudnnStatus_t st, char *err, size_t len);
// net_linear.cu: linear nodes in every precision (cublasGemmEx, float32 C). Backward's acc: the
// input gradient is added to (beta = 1).
int rn_linear_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len);
int rn_linear_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool acc,
                       bool want_dw, bool want_db, char *err, size_t len);

// net_forward.cu: sets cn's x_desc and y_desc (NCHW) for batch n, and under bf16 / fp16 a
// convolution's hx_desc and hy_desc.
int rn_node_set_descs(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len);
// net_forward.cu / net_backward.cu: one node each way.
int rn_node_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool train, char *err,
                    size_t len);
// seen[t]: tensor t's gradient holds a first contribution; the node writes or adds accordingly.
int rn_node_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool *seen,
                     const int *trainable, char *err, size_t len);

#endif
