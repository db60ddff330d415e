// The backward pass on the device: nodes in reverse (runner/nn/net.c's rn_net_backward). A
// tensor read by several nodes gets the sum of their input gradients: the first writes it, the
// others add (cuDNN and cuBLAS with beta = 1, the kernels' accumulate flag), as net.c does.
// Frozen parameters' gradients are left as they are; a node runs only when it has a parameter
// to train or a node before it does (so its input gradient may be needed).
#include "net_api.h"
#include "net_internal.h"

#include "net_kernels.h"
#include "nn_kernels.h"

#include <cstdio>
#include <cstdlib>

namespace {

// Whether parameter i gets a gradient: it has one and the caller did not freeze it.
bool trains(const rn_cuda_net *net, const int *trainable, int i)
{
    return i >= 0 && i < net->n_params && net->params[i].grad && (!trainable || trainable[i]);
}

bool node_trains(const rn_cuda_net *net, const rn_node *node, const int *trainable)
{
    for (int j = 0; j < node->n_params; j++)
        if (trains(net, trainable, node->param[j])) return true;
    return false;
}

int bn_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool acc,
                const int *trainable, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const rn_shape *s = &net->desc->shapes[node->in];
    const int64_t c = s->d[1], hw = s->d[2] * s->d[3];
    const bool tw = trains(net, trainable, node->param[0]),
               tb = trains(net, trainable, node->param[1]);
    const float *x = net->acts[node->in], *dy = net->grads[node->out];
    if (!cn->bn_train) {
        // Eval mode (both parameters frozen): a fixed affine map, dx = dy gamma / sqrt(var + eps).
        if (tw || tb)
            return rn_node_fail(node, "backward",
                                "a parameter to train after an eval-mode forward (run the "
                                "forward in train mode)",
                                err, len);
        if (!want_dx) return 0;
        return rn_cuda_bn_eval_backward(x, dy, net->grads[node->in], cn->coef, n, c, hw, acc,
                                        net->compute, err, len)
                   ? rn_node_wrap(node, "backward", err, len)
                   : 0;
    }
    // cuDNN writes both parameter gradients: a frozen one's goes to scratch, as does dx when
    // nothing before wants it.
    const float one = 1.0f, zero = 0.0f;
    const double eps = node->eps > CUDNN_BN_MIN_EPSILON ? node->eps : CUDNN_BN_MIN_EPSILON;
    float *dgamma = tw ? net->params[node->param[0]].grad : net->pscratch;
    float *dbeta = tb ? net->params[node->param[1]].grad : net->pscratch + c;
    float *dx = want_dx ? net->grads[node->in] : net->scratch;
    cudnnStatus_t st = cudnnBatchNormalizationBackward(
        net->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, want_dx && acc ? &one : &zero, &one, &zero,
        cn->x_desc, x, cn->y_desc, dy, cn->x_desc, dx, cn->bias_desc,
        net->params[node->param[0]].value, dgamma, dbeta, eps, cn->save_mean, cn->save_invvar);
    if (st != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnBatchNormalizationBackward", st, err, len);
    return 0;
}

int dropout_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t total, bool acc, char *err,
                     size_t len)
{
    const rn_node *node = cn->node;
    const float *dy = net->grads[node->out];
    float *gx = net->grads[node->in];
    if (!cn->drop_train) return rn_cuda_grad_copy(gx, dy, total, acc, net->compute, err, len);
    const float scale = node->p < 1.0 ? static_cast<float>(1.0 / (1.0 - node->p)) : 0.0f;
    float *to = acc ? net->scratch : gx;
    if (rn_cuda_dropout_backward(dy, cn->mask, to, total, scale, net->compute, err, len))
        return -1;
    return acc ? rn_cuda_grad_copy(gx, to, total, 1, net->compute, err, len) : 0;
}

}  // namespace

int rn_node_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool *seen,
                     const int *trainable, char *err, size_t len)
{
    const rn_node *node = cn->node;
    if (rn_node_set_descs(net, cn, n, err, len)) return -1;
    const int input = net->desc->input;
    const int64_t out_total = net->per_sample[node->out] * n;
    const float *x = net->acts[node->in], *y = net->acts[node->out], *dy = net->grads[node->out];
    float *gx = net->grads[node->in];
    const bool acc = seen[node->in];
    const float one = 1.0f, zero = 0.0f;
    int rc = 0;
    if (node->kind == RN_NODE_ADD) {
        if (!want_dx) return 0;
        for (int t : {node->in, node->in2}) {
            if (t == input) continue;
            if (rn_cuda_grad_copy(net->grads[t], dy, out_total, seen[t], net->compute, err, len))
                return rn_node_wrap(node, "backward", err, len);
            seen[t] = true;
        }
        return 0;
    }
    want_dx = want_dx && node->in != input;
    switch (node->kind) {
    case RN_NODE_CONV2D:
        rc = rn_conv_backward(net, cn, n, want_dx, acc, trains(net, trainable, node->param[0]),
                              node->bias && trains(net, trainable, node->param[1]), err, len);
        if (rc) return -1;
        break;
    case RN_NODE_LINEAR:
        if (rn_linear_backward(net, cn, n, want_dx, acc, trains(net, trainable, node->param[0]),
                               node->bias && trains(net, trainable, node->param[1]), err, len))
            return -1;
        break;
    case RN_NODE_BATCHNORM2D:
        if (bn_backward(net, cn, n, want_dx, acc, trainable, err, len)) return -1;
        break;
    default:
        if (!want_dx) return 0;
        switch (node->kind) {
        case RN_NODE_RELU:
            rc = rn_cuda_relu_backward(y, dy, gx, out_total, acc, net->compute, err, len);
            break;
        case RN_NODE_LEAKY_RELU:
            rc = rn_cuda_leaky_relu_backward(x, dy, gx, out_total,
                                             static_cast<float>(node->slope), acc, net->compute,
                                             err, len);
            break;
        case RN_NODE_GELU:
            rc = rn_cuda_gelu_backward(x, dy, gx, out_total, acc, net->compute, err, len);
            break;
        case RN_NODE_MAXPOOL2D:
        case RN_NODE_AVGPOOL2D: {
            cudnnStatus_t st = cudnnPoolingBackward(net->cudnn, cn->pool, &one, cn->y_desc, y,
                                                    cn->y_desc, dy, cn->x_desc, x,
                                                    acc ? &one : &zero, cn->x_desc, gx);
            if (st != CUDNN_STATUS_SUCCESS)
                return rn_cudnn_fail(node, "cudnnPoolingBackward", st, err, len);
            break;
        }
        case RN_NODE_GLOBAL_AVGPOOL2D: {
            const rn_shape *s = &net->desc->shapes[node->in];
            rc = rn_cuda_gap_backward(dy, gx, n * s->d[1], s->d[2] * s->d[3], acc, net->compute,
                                      err, len);
            break;
        }
        case RN_NODE_DROPOUT: rc = dropout_backward(net, cn, out_total, acc, err, len); break;
        default:  // flatten, identity: the same floats
            rc = rn_cuda_grad_copy(gx, dy, out_total, acc, net->compute, err, len);
            break;
        }
        if (rc) return rn_node_wrap(node, "backward", err, len);
    }
    if (want_dx) seen[node->in] = true;
    return 0;
}

extern "C" int rn_cuda_net_backward(rn_cuda_net *net, int64_t n, const int *trainable, char *err,
                                    size_t len)
{
    if (n < 1 || n > net->max_batch) {
        std::snprintf(err, len, "net_backward: batch %lld outside [1, %lld]",
                      static_cast<long long>(n), static_cast<long long>(net->max_batch));
        return -1;
    }
    const rn_net *d = net->desc;
    bool *seen = static_cast<bool *>(std::calloc(d->n_tensors, sizeof(bool)));
    bool *before = static_cast<bool *>(std::calloc(d->n_nodes + 1, sizeof(bool)));
    if (!seen || !before) {
        std::free(seen);
        std::free(before);
        return rn_node_fail(nullptr, "net_backward", "out of host memory", err, len);
    }
    // before[k]: a node before k trains, so k's input gradient may be needed (node order is
    // execution order, so every node upstream of k comes before it).
    for (int k = 0; k < d->n_nodes; k++)
        before[k + 1] = before[k] || node_trains(net, &d->nodes[k], trainable);
    seen[d->output] = true;
    int rc = 0;
    for (int k = d->n_nodes - 1; k >= 0 && rc == 0; k--) {
        const rn_node *node = &d->nodes[k];
        if (!seen[node->out]) continue;  // nothing flows back through it
        if (!before[k] && !node_trains(net, node, trainable)) continue;
        rc = rn_node_backward(net, &net->nodes[k], n, before[k], seen, trainable, err, len);
    }
    std::free(seen);
    std::free(before);
    return rc;
}
