// Convolution nodes on cuDNN: the filter and convolution descriptors, and the forward, data,
// filter and bias calls (the algorithms: net_conv_find.cu). float32 runs FMA math, no TF32, as the
// CPU computes. bf16 / fp16 run cuDNN's pseudo-half configuration: x, filter and y (and dy, dx,
// dw) in the 16-bit type, converted in the net's shared half scratch, products accumulated in
// float32 on tensor cores; the 16-bit results are widened into the float32 tensors. The bias is
// float32 in every precision.
#include "net_internal.h"

#include "net_kernels.h"

#include <cstdio>

cudnnDataType_t rn_cudnn_type(int precision)
{
    return precision == RN_CUDA_BF16   ? CUDNN_DATA_BFLOAT16
           : precision == RN_CUDA_FP16 ? CUDNN_DATA_HALF
                                       : CUDNN_DATA_FLOAT;
}

cudnnStatus_t rn_conv_filter_desc(const rn_node *node, cudnnDataType_t type,
                                  cudnnFilterDescriptor_t w)
{
    const int g = node->groups > 0 ? static_cast<int>(node->groups) : 1,
              k = static_cast<int>(node->kernel);
    return cudnnSetFilter4dDescriptor(w, type, CUDNN_TENSOR_NCHW, static_cast<int>(node->out_ch),
                                      static_cast<int>(node->in_ch) / g, k, k);
}

cudnnStatus_t rn_conv_desc(const rn_node *node, int precision, cudnnConvolutionDescriptor_t c)
{
    const int g = node->groups > 0 ? static_cast<int>(node->groups) : 1;
    const int p = static_cast<int>(node->padding), s = static_cast<int>(node->stride),
              d = static_cast<int>(node->dilation);
    cudnnStatus_t st;
    // Compute type float32 in every precision: bf16 / fp16 are cuDNN's pseudo-half
    // configurations, 16-bit data with float accumulation.
    if ((st = cudnnSetConvolution2dDescriptor(c, p, p, s, s, d, d, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetConvolutionGroupCount(c, g)) != CUDNN_STATUS_SUCCESS)
        return st;
    return cudnnSetConvolutionMathType(c, precision == RN_CUDA_FP32 ? CUDNN_FMA_MATH
                                                                    : CUDNN_TENSOR_OP_MATH);
}

int rn_conv_setup(rn_cuda_net *net, rn_cuda_node *cn, char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnStatus_t st;
    if ((st = cudnnCreateFilterDescriptor(&cn->w_desc)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateConvolutionDescriptor(&cn->conv)) != CUDNN_STATUS_SUCCESS ||
        (st = rn_conv_filter_desc(node, CUDNN_DATA_FLOAT, cn->w_desc)) != CUDNN_STATUS_SUCCESS ||
        (st = rn_conv_desc(node, net->precision, cn->conv)) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "convolution descriptors", st, err, len);
    // The 16-bit operands' descriptors (x and y are set per batch, rn_node_set_descs).
    if (net->precision != RN_CUDA_FP32 &&
        ((st = cudnnCreateTensorDescriptor(&cn->hx_desc)) != CUDNN_STATUS_SUCCESS ||
         (st = cudnnCreateTensorDescriptor(&cn->hy_desc)) != CUDNN_STATUS_SUCCESS ||
         (st = cudnnCreateFilterDescriptor(&cn->hw_desc)) != CUDNN_STATUS_SUCCESS ||
         (st = rn_conv_filter_desc(node, rn_cudnn_type(net->precision), cn->hw_desc)) !=
             CUDNN_STATUS_SUCCESS))
        return rn_half_cudnn_fail(net, node, "convolution descriptors", st, err, len);
    if (node->bias &&
        ((st = cudnnCreateTensorDescriptor(&cn->bias_desc)) != CUDNN_STATUS_SUCCESS ||
         (st = cudnnSetTensor4dDescriptor(cn->bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                          static_cast<int>(node->out_ch), 1, 1)) !=
             CUDNN_STATUS_SUCCESS))
        return rn_cudnn_fail(node, "bias descriptor", st, err, len);
    return 0;
}

namespace {

// The convolution descriptor's math type for the next call: the one its algorithm was found with.
int set_math(rn_cuda_net *net, rn_cuda_node *cn, cudnnMathType_t m, char *err, size_t len)
{
    cudnnStatus_t st = cudnnSetConvolutionMathType(cn->conv, m);
    return st == CUDNN_STATUS_SUCCESS
               ? 0
               : rn_half_cudnn_fail(net, cn->node, "cudnnSetConvolutionMathType", st, err, len);
}

// bf16 / fp16: y = widen(conv(x16, w16)), x16 and w16 narrowed into the node's own copies, which
// backward reads again (the step's x and W are unchanged until then).
int half_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, const rn_conv_algos *a,
                 char *err, size_t len)
{
    const rn_node *node = cn->node;
    const float one = 1.0f, zero = 0.0f;
    if (rn_half_narrow(net, node, net->acts[node->in], cn->x16, net->per_sample[node->in] * n,
                       err, len) ||
        rn_half_narrow(net, node, net->params[node->param[0]].value, cn->w16,
                       net->params[node->param[0]].numel, err, len) ||
        set_math(net, cn, a->fwd_math, err, len))
        return -1;
    cudnnStatus_t st = cudnnConvolutionForward(net->cudnn, &one, cn->hx_desc, cn->x16,
                                               cn->hw_desc, cn->w16, cn->conv, a->fwd,
                                               net->workspace, a->fwd_ws, &zero, cn->hy_desc,
                                               net->half_y);
    if (st != CUDNN_STATUS_SUCCESS)
        return rn_half_cudnn_fail(net, node, "cudnnConvolutionForward", st, err, len);
    return rn_half_widen(net, node, net->half_y, net->acts[node->out],
                         net->per_sample[node->out] * n, false, err, len);
}

// bf16 / fp16 backward: dy narrowed into half_y; the filter gradient from the forward's x16 into
// half_w, widened into the weight's gradient (written, as float32's beta = 0); the data gradient
// from the forward's w16 into half_x, widened into the input's gradient (added when acc).
int half_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, const rn_conv_algos *a,
                  bool want_dx, bool acc, bool want_dw, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const float one = 1.0f, zero = 0.0f;
    const int64_t x_numel = net->per_sample[node->in] * n,
                  w_numel = net->params[node->param[0]].numel;
    if (rn_half_narrow(net, node, net->grads[node->out], net->half_y,
                       net->per_sample[node->out] * n, err, len))
        return -1;
    cudnnStatus_t st;
    if (want_dw) {
        if (set_math(net, cn, a->filter_math, err, len)) return -1;
        st = cudnnConvolutionBackwardFilter(net->cudnn, &one, cn->hx_desc, cn->x16,
                                            cn->hy_desc, net->half_y, cn->conv, a->bwd_filter,
                                            net->workspace, a->filter_ws, &zero, cn->hw_desc,
                                            net->half_w);
        if (st != CUDNN_STATUS_SUCCESS)
            return rn_half_cudnn_fail(net, node, "cudnnConvolutionBackwardFilter", st, err,
                                      len);
        if (rn_half_widen(net, node, net->half_w, net->params[node->param[0]].grad, w_numel,
                          false, err, len))
            return -1;
    }
    if (!want_dx) return 0;
    if (set_math(net, cn, a->data_math, err, len)) return -1;
    st = cudnnConvolutionBackwardData(net->cudnn, &one, cn->hw_desc, cn->w16, cn->hy_desc,
                                      net->half_y, cn->conv, a->bwd_data, net->workspace,
                                      a->data_ws, &zero, cn->hx_desc, net->half_x);
    if (st != CUDNN_STATUS_SUCCESS)
        return rn_half_cudnn_fail(net, node, "cudnnConvolutionBackwardData", st, err, len);
    return rn_half_widen(net, node, net->half_x, net->grads[node->in], x_numel, acc, err, len);
}

}  // namespace

int rn_conv_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const rn_conv_algos *a = rn_conv_find(net, cn, n, true, false, false, err, len);
    if (!a) return -1;
    const float one = 1.0f, zero = 0.0f;
    float *y = net->acts[node->out];
    cudnnStatus_t st;
    if (net->precision != RN_CUDA_FP32) {
        if (half_forward(net, cn, n, a, err, len)) return -1;
    } else if ((st = cudnnConvolutionForward(
                    net->cudnn, &one, cn->x_desc, net->acts[node->in], cn->w_desc,
                    net->params[node->param[0]].value, cn->conv, a->fwd, net->workspace,
                    a->fwd_ws, &zero, cn->y_desc, y)) != CUDNN_STATUS_SUCCESS) {
        return rn_cudnn_fail(node, "cudnnConvolutionForward", st, err, len);
    }
    if (node->bias &&
        (st = cudnnAddTensor(net->cudnn, &one, cn->bias_desc, net->params[node->param[1]].value,
                             &one, cn->y_desc, y)) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnAddTensor (bias)", st, err, len);
    return 0;
}

int rn_conv_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool acc,
                     bool want_dw, bool want_db, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const rn_conv_algos *a = rn_conv_find(net, cn, n, false, want_dx, want_dw, err, len);
    if (!a) return -1;
    const float one = 1.0f, zero = 0.0f;
    const float *dy = net->grads[node->out];
    cudnnStatus_t st;
    if (want_db &&
        (st = cudnnConvolutionBackwardBias(net->cudnn, &one, cn->y_desc, dy, &zero, cn->bias_desc,
                                           net->params[node->param[1]].grad)) !=
            CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnConvolutionBackwardBias", st, err, len);
    if (net->precision != RN_CUDA_FP32)
        return want_dw || want_dx ? half_backward(net, cn, n, a, want_dx, acc, want_dw, err, len)
                                  : 0;
    if (want_dw &&
        (st = cudnnConvolutionBackwardFilter(
             net->cudnn, &one, cn->x_desc, net->acts[node->in], cn->y_desc, dy, cn->conv,
             a->bwd_filter, net->workspace, a->filter_ws, &zero, cn->w_desc,
             net->params[node->param[0]].grad)) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnConvolutionBackwardFilter", st, err, len);
    if (want_dx &&
        (st = cudnnConvolutionBackwardData(net->cudnn, &one, cn->w_desc,
                                           net->params[node->param[0]].value, cn->y_desc, dy,
                                           cn->conv, a->bwd_data, net->workspace, a->data_ws,
                                           acc ? &one : &zero, cn->x_desc,
                                           net->grads[node->in])) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnConvolutionBackwardData", st, err, len);
    return 0;
}
