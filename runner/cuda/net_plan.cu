// net_plan_shapes: every node's output dims as the device network will see them, without a
// device: convolution and pooling from cuDNN's descriptors (descriptor calls need no GPU; a
// convolution's also as net_create sets them in fp32, bf16 and fp16, which must agree), the
// other kinds by the rules the backend's kernels follow, each from its input's dims as planned
// (not from the description's shapes), so a test can hold the plan to rn_net's shapes.
#include "net_api.h"
#include "net_internal.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" int rn_cuda_conv2d_output(const rn_cuda_conv_shape *s, int out[4], char *err,
                                     size_t len);

cudnnStatus_t rn_pool_desc(const rn_node *node, cudnnPoolingDescriptor_t pd)
{
    const cudnnPoolingMode_t mode = node->kind == RN_NODE_MAXPOOL2D
                                        ? CUDNN_POOLING_MAX_DETERMINISTIC
                                        : node->count_include_pad
                                              ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                              : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    const int k = static_cast<int>(node->kernel), p = static_cast<int>(node->padding),
              s = static_cast<int>(node->stride);
    return cudnnSetPooling2dDescriptor(pd, mode, CUDNN_PROPAGATE_NAN, k, k, p, p, s, s);
}

namespace {

// The pooling node's output dims from cudnnGetPooling2dForwardOutputDim, on the descriptor
// net_create sets (rn_pool_desc).
int pool_output(const rn_node *node, const int x[4], int out[4], char *err, size_t len)
{
    cudnnTensorDescriptor_t xd = nullptr;
    cudnnPoolingDescriptor_t pd = nullptr;
    cudnnStatus_t st;
    int rc = -1;
    if ((st = cudnnCreateTensorDescriptor(&xd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreatePoolingDescriptor(&pd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, x[0], x[1], x[2],
                                         x[3])) != CUDNN_STATUS_SUCCESS ||
        (st = rn_pool_desc(node, pd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnGetPooling2dForwardOutputDim(pd, xd, &out[0], &out[1], &out[2], &out[3])) !=
            CUDNN_STATUS_SUCCESS)
        rn_cudnn_fail(node, "pooling descriptors", st, err, len);
    else
        rc = 0;
    if (pd) cudnnDestroyPoolingDescriptor(pd);
    if (xd) cudnnDestroyTensorDescriptor(xd);
    return rc;
}

// The output dims of a convolution node from the descriptors net_create sets for a precision
// (rn_conv_filter_desc, rn_conv_desc; x in the precision's type): a check that bf16 and fp16
// see every convolution as float32 does, before a device is involved.
int conv_dims_in(const rn_node *node, int precision, const int x[4], int out[4], char *err,
                 size_t len)
{
    cudnnTensorDescriptor_t xd = nullptr;
    cudnnFilterDescriptor_t wd = nullptr;
    cudnnConvolutionDescriptor_t cd = nullptr;
    const cudnnDataType_t type = rn_cudnn_type(precision);
    cudnnStatus_t st;
    int rc = -1;
    if ((st = cudnnCreateTensorDescriptor(&xd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateFilterDescriptor(&wd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateConvolutionDescriptor(&cd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, type, x[0], x[1], x[2], x[3])) !=
            CUDNN_STATUS_SUCCESS ||
        (st = rn_conv_filter_desc(node, type, wd)) != CUDNN_STATUS_SUCCESS ||
        (st = rn_conv_desc(node, precision, cd)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &out[0], &out[1], &out[2],
                                                    &out[3])) != CUDNN_STATUS_SUCCESS) {
        char what[64];
        std::snprintf(what, sizeof what, "plan (%s descriptors)", rn_precision_label(precision));
        rn_cudnn_fail(node, what, st, err, len);
    } else {
        rc = 0;
    }
    if (cd) cudnnDestroyConvolutionDescriptor(cd);
    if (wd) cudnnDestroyFilterDescriptor(wd);
    if (xd) cudnnDestroyTensorDescriptor(xd);
    return rc;
}

int node_dims(const rn_node *node, const int x[4], int out[4], char *err, size_t len)
{
    switch (node->kind) {
    case RN_NODE_CONV2D: {
        const int k = static_cast<int>(node->kernel), p = static_cast<int>(node->padding),
                  s = static_cast<int>(node->stride), d = static_cast<int>(node->dilation);
        rn_cuda_conv_shape cs = {x[0], x[1], x[2], x[3], static_cast<int>(node->out_ch),
                                 k, k, p, p, s, s, d, d, static_cast<int>(node->groups)};
        if (x[1] != node->in_ch)
            return rn_node_fail(node, "plan", "input channels differ from the layer's", err,
                                len);
        char why[256];
        if (rn_cuda_conv2d_output(&cs, out, why, sizeof why))
            return rn_node_fail(node, "plan", why, err, len);
        // net_create's own descriptors in each precision must agree with conv2d_output's.
        for (int p : {RN_CUDA_FP32, RN_CUDA_BF16, RN_CUDA_FP16}) {
            int o[4];
            if (conv_dims_in(node, p, x, o, err, len)) return -1;
            if (std::memcmp(o, out, sizeof o) != 0) {
                std::snprintf(why, sizeof why,
                              "the %s descriptors give %dx%dx%dx%d, float32's %dx%dx%dx%d",
                              rn_precision_label(p), o[0], o[1], o[2], o[3], out[0], out[1],
                              out[2], out[3]);
                return rn_node_fail(node, "plan", why, err, len);
            }
        }
        return 0;
    }
    case RN_NODE_MAXPOOL2D:
    case RN_NODE_AVGPOOL2D: return pool_output(node, x, out, err, len);
    case RN_NODE_LINEAR:
        if (static_cast<int64_t>(x[1]) * x[2] * x[3] != node->in_f)
            return rn_node_fail(node, "plan", "input features differ from the layer's", err, len);
        out[0] = x[0];
        out[1] = static_cast<int>(node->out_f);
        out[2] = out[3] = 1;
        return 0;
    case RN_NODE_GLOBAL_AVGPOOL2D:
        out[0] = x[0];
        out[1] = x[1];
        out[2] = out[3] = 1;
        return 0;
    case RN_NODE_FLATTEN:
        out[0] = x[0];
        out[1] = x[1] * x[2] * x[3];
        out[2] = out[3] = 1;
        return 0;
    default:  // element-wise kinds, batch norm, dropout, identity, the residual sum
        std::memcpy(out, x, 4 * sizeof(int));
        return 0;
    }
}

}  // namespace

extern "C" int rn_cuda_net_plan_shapes(const rn_net *desc, int64_t n, int (*dims)[4], char *err,
                                       size_t len)
{
    if (!desc || desc->n_tensors < 1 || n < 1 || n > 0x7fffffff) {
        std::snprintf(err, len, "net_plan_shapes: expected a described network and a batch >= 1");
        return -1;
    }
    int(*t)[4] = static_cast<int(*)[4]>(std::calloc(desc->n_tensors, sizeof *t));
    if (!t) return rn_node_fail(nullptr, "net_plan_shapes", "out of host memory", err, len);
    rn_shape_nchw(&desc->shapes[desc->input], n, t[desc->input]);
    int rc = 0;
    for (int k = 0; k < desc->n_nodes && rc == 0; k++) {
        const rn_node *node = &desc->nodes[k];
        rc = node_dims(node, t[node->in], dims[k], err, len);
        if (rc == 0 && node->kind == RN_NODE_ADD && std::memcmp(t[node->in], t[node->in2], 4 *
                                                                sizeof(int)) != 0)
            rc = rn_node_fail(node, "plan", "the residual sum's operands differ in shape", err,
                              len);
        if (rc == 0) std::memcpy(t[node->out], dims[k], 4 * sizeof(int));
    }
    std::free(t);
    return rc;
}
