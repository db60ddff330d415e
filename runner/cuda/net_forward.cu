// The forward pass on the device: each node as its CPU layer computes it (runner/nn), with cuDNN
// for convolution, batch norm in train mode and pooling, cuBLAS for linear, and the kernels of
// kernels/net_kernels.cu and nn_kernels.cu (dropout) for the rest.
#include "net_api.h"
#include "net_internal.h"

#include "net_kernels.h"
#include "nn_kernels.h"

#include <runner/plugin.h>

#include <cstdio>

int rn_node_set_descs(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len)
{
    const rn_node *node = cn->node;
    int x[4], y[4];
    rn_shape_nchw(&net->desc->shapes[node->in], n, x);
    rn_shape_nchw(&net->desc->shapes[node->out], n, y);
    cudnnStatus_t st;
    if ((st = cudnnSetTensor4dDescriptor(cn->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, x[0],
                                         x[1], x[2], x[3])) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetTensor4dDescriptor(cn->y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, y[0],
                                         y[1], y[2], y[3])) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnSetTensor4dDescriptor", st, err, len);
    const cudnnDataType_t half = rn_cudnn_type(net->precision);
    if (cn->hx_desc &&
        ((st = cudnnSetTensor4dDescriptor(cn->hx_desc, CUDNN_TENSOR_NCHW, half, x[0], x[1], x[2],
                                          x[3])) != CUDNN_STATUS_SUCCESS ||
         (st = cudnnSetTensor4dDescriptor(cn->hy_desc, CUDNN_TENSOR_NCHW, half, y[0], y[1], y[2],
                                          y[3])) != CUDNN_STATUS_SUCCESS))
        return rn_half_cudnn_fail(net, node, "cudnnSetTensor4dDescriptor", st, err, len);
    return 0;
}

namespace {

// A batch norm whose weight and bias are both frozen runs in eval mode (batchnorm2d.c).
bool bn_frozen(const rn_node *node)
{
    const rn_layer *l = node->layer;
    return l && l->n_params >= 2 && l->params[0].frozen && l->params[1].frozen;
}

int bn_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool train, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const rn_shape *s = &net->desc->shapes[node->in];
    const int64_t c = s->d[1], hw = s->d[2] * s->d[3];
    const float *gamma = net->params[node->param[0]].value,
                *beta = net->params[node->param[1]].value;
    float *rm = net->params[node->param[2]].value, *rv = net->params[node->param[3]].value;
    if (bn_frozen(node)) train = false;
    cn->bn_train = train;
    if (!train)
        return rn_cuda_bn_eval_forward(net->acts[node->in], net->acts[node->out], gamma, beta, rm,
                                       rv, node->eps, cn->coef, n, c, hw, net->compute, err, len)
                   ? rn_node_wrap(node, "forward", err, len)
                   : 0;
    if (n * hw < 2) {
        char why[160];
        std::snprintf(why, sizeof why,
                      "expected more than 1 value per channel in train mode, got input "
                      "%lldx%lldx%lldx%lld",
                      static_cast<long long>(n), static_cast<long long>(c),
                      static_cast<long long>(s->d[2]), static_cast<long long>(s->d[3]));
        return rn_node_fail(node, "forward", why, err, len);
    }
    // Batch mean and biased variance normalise; the running variance gets the unbiased one with
    // factor momentum, as PyTorch (and batchnorm2d.c).
    const float one = 1.0f, zero = 0.0f;
    const double eps = node->eps > CUDNN_BN_MIN_EPSILON ? node->eps : CUDNN_BN_MIN_EPSILON;
    cudnnStatus_t st = cudnnBatchNormalizationForwardTraining(
        net->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, cn->x_desc, net->acts[node->in],
        cn->y_desc, net->acts[node->out], cn->bias_desc, gamma, beta, node->momentum, rm, rv, eps,
        cn->save_mean, cn->save_invvar);
    if (st != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnBatchNormalizationForwardTraining", st, err, len);
    if (node->layer) node->layer->calls++;  // num_batches_tracked, as batchnorm2d.c
    return 0;
}

int dropout_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t total, bool train, char *err,
                    size_t len)
{
    const rn_node *node = cn->node;
    rn_layer *l = node->layer;
    cn->drop_train = train && node->p > 0.0;
    if (!cn->drop_train) {
        cudaError_t rc = cudaMemcpyAsync(net->acts[node->out], net->acts[node->in],
                                         static_cast<size_t>(total) * sizeof(float),
                                         cudaMemcpyDeviceToDevice, net->compute);
        return rc == cudaSuccess ? 0 : rn_cuda_fail(node, "forward copy", rc, err, len);
    }
    // dropout.c's mask: call c keeps element i when rn_uniform(rn_key3(seed, c, "drop"), i) >= p
    const uint64_t key = rn_key3(l->seed, l->calls, 0x64726f70ull /* "drop" */);
    l->calls++;
    if (rn_cuda_dropout_forward(net->acts[node->in], net->acts[node->out], cn->mask, total, key,
                                node->p, net->compute, err, len))
        return rn_node_wrap(node, "forward", err, len);
    return 0;
}

}  // namespace

int rn_node_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool train, char *err,
                    size_t len)
{
    const rn_node *node = cn->node;
    if (rn_node_set_descs(net, cn, n, err, len)) return -1;
    const float *x = net->acts[node->in];
    float *y = net->acts[node->out];
    const int64_t total = net->per_sample[node->out] * n;
    const float one = 1.0f, zero = 0.0f;
    int rc = 0;
    cudnnStatus_t st;
    switch (node->kind) {
    case RN_NODE_CONV2D: return rn_conv_forward(net, cn, n, err, len);
    case RN_NODE_LINEAR: return rn_linear_forward(net, cn, n, err, len);
    case RN_NODE_BATCHNORM2D: return bn_forward(net, cn, n, train, err, len);
    case RN_NODE_RELU:  // without a layer: a residual block's activation (container.c's form)
        rc = node->layer ? rn_cuda_relu_forward(x, y, total, net->compute, err, len)
                         : rn_cuda_residual_relu_forward(x, y, total, net->compute, err, len);
        break;
    case RN_NODE_LEAKY_RELU:
        rc = rn_cuda_leaky_relu_forward(x, y, total, static_cast<float>(node->slope),
                                        net->compute, err, len);
        break;
    case RN_NODE_GELU: rc = rn_cuda_gelu_forward(x, y, total, net->compute, err, len); break;
    case RN_NODE_MAXPOOL2D:
    case RN_NODE_AVGPOOL2D:
        st = cudnnPoolingForward(net->cudnn, cn->pool, &one, cn->x_desc, x, &zero, cn->y_desc, y);
        if (st != CUDNN_STATUS_SUCCESS)
            return rn_cudnn_fail(node, "cudnnPoolingForward", st, err, len);
        return 0;
    case RN_NODE_GLOBAL_AVGPOOL2D: {
        const rn_shape *s = &net->desc->shapes[node->in];
        rc = rn_cuda_gap_forward(x, y, n * s->d[1], s->d[2] * s->d[3], net->compute, err, len);
        break;
    }
    case RN_NODE_DROPOUT: return dropout_forward(net, cn, total, train, err, len);
    case RN_NODE_FLATTEN:
    case RN_NODE_IDENTITY: {
        cudaError_t ce = cudaMemcpyAsync(y, x, static_cast<size_t>(total) * sizeof(float),
                                         cudaMemcpyDeviceToDevice, net->compute);
        return ce == cudaSuccess ? 0 : rn_cuda_fail(node, "forward copy", ce, err, len);
    }
    case RN_NODE_ADD:
        rc = rn_cuda_add(x, net->acts[node->in2], y, total, net->compute, err, len);
        break;
    }
    return rc ? rn_node_wrap(node, "forward", err, len) : 0;
}

extern "C" int rn_cuda_net_forward(rn_cuda_net *net, int64_t n, int train, char *err, size_t len)
{
    if (n < 1 || n > net->max_batch) {
        std::snprintf(err, len, "net_forward: batch %lld outside [1, %lld]",
                      static_cast<long long>(n), static_cast<long long>(net->max_batch));
        return -1;
    }
    const rn_net *d = net->desc;
    // Wait for the batch (net_put_batch's event; a no-op before the first record), take it from
    // the caller's buffers, then let the copy stream refill them.
    cudaError_t rc;
    if ((rc = cudaStreamWaitEvent(net->compute, net->input_ready, 0)) != cudaSuccess ||
        (rc = cudaMemcpyAsync(net->acts[d->input], net->input,
                              static_cast<size_t>(net->per_sample[d->input] * n) * sizeof(float),
                              cudaMemcpyDeviceToDevice, net->compute)) != cudaSuccess ||
        (rc = cudaMemcpyAsync(net->loss_labels, net->labels, static_cast<size_t>(n) * 4,
                              cudaMemcpyDeviceToDevice, net->compute)) != cudaSuccess ||
        (rc = cudaMemcpyAsync(net->loss_soft, net->soft,
                              static_cast<size_t>(n * net->classes) * sizeof(float),
                              cudaMemcpyDeviceToDevice, net->compute)) != cudaSuccess ||
        (rc = cudaEventRecord(net->input_consumed, net->compute)) != cudaSuccess ||
        (rc = cudaStreamWaitEvent(net->copy, net->input_consumed, 0)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_forward: taking the input batch", rc, err, len);
    for (int k = 0; k < d->n_nodes; k++)
        if (rn_node_forward(net, &net->nodes[k], n, train != 0, err, len)) return -1;
    return 0;
}
