// Convolution nodes on cuDNN: the filter and convolution descriptors (float32 FMA math, no TF32,
// as the CPU computes in float32), an algorithm per direction and batch size found once with
// cudnnFind*AlgorithmEx (cudnnGet*Algorithm_v7 when Find fails) and cached, one workspace for
// the whole net grown to the largest need, and the forward, data, filter and bias calls.
#include "net_internal.h"

#include <cstdio>

namespace {

// The workspace Find may use: every algorithm's need up to a cap, so fast algorithms with large
// workspaces are timed too without taking the memory the activations need.
constexpr size_t kWorkspaceCap = size_t(1) << 31;  // 2 GiB

size_t workspace_cap()
{
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
    return free_b / 4 < kWorkspaceCap ? free_b / 4 : kWorkspaceCap;
}

int grow_workspace(rn_cuda_net *net, const rn_node *node, size_t need, char *err, size_t len)
{
    return rn_net_grow(&net->workspace, &net->workspace_bytes, need, node->name, "conv2d",
                       "cuDNN's workspace", err, len);
}

// The slot of batch n: cached, or a new one (an empty one, else the next to replace).
rn_conv_algos *slot_for(rn_cuda_node *cn, int64_t n)
{
    for (rn_conv_algos &a : cn->algos)
        if (a.n == n) return &a;
    for (rn_conv_algos &a : cn->algos)
        if (a.n == 0) {
            a = rn_conv_algos{};
            a.n = n;
            return &a;
        }
    rn_conv_algos *a = &cn->algos[cn->next_slot];
    cn->next_slot = (cn->next_slot + 1) % RN_CONV_ALGO_SLOTS;
    *a = rn_conv_algos{};
    a->n = n;
    return a;
}

// The largest workspace any algorithm of a direction asks for, capped: Find gets that much.
template <class Algo, class Query>
size_t most_workspace(int count, Query query)
{
    size_t most = 0;
    for (int i = 0; i < count; i++) {
        size_t b = 0;
        if (query(static_cast<Algo>(i), &b) == CUDNN_STATUS_SUCCESS && b > most) most = b;
    }
    const size_t cap = workspace_cap();
    return most < cap ? most : cap;
}

// The fastest successful result of Find (sorted by time), or of the heuristic, among the
// deterministic algorithms (a run repeats itself bit for bit, as on the CPU; cuDNN's others sum
// with atomics); the fastest of any kind only when no deterministic one fits. -1 when none.
template <class Perf>
int pick(const Perf *perf, int count, size_t ws_limit)
{
    for (int i = 0; i < count; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_limit &&
            perf[i].determinism == CUDNN_DETERMINISTIC)
            return i;
    for (int i = 0; i < count; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_limit) return i;
    return -1;
}

int find_fwd(rn_cuda_net *net, rn_cuda_node *cn, rn_conv_algos *a, char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnHandle_t h = net->cudnn;
    size_t want = most_workspace<cudnnConvolutionFwdAlgo_t>(
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, [&](cudnnConvolutionFwdAlgo_t algo, size_t *b) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, cn->x_desc, cn->w_desc, cn->conv,
                                                           cn->y_desc, algo, b);
        });
    if (grow_workspace(net, node, want, err, len)) return -1;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0, i = -1;
    cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
        h, cn->x_desc, net->acts[node->in], cn->w_desc, net->params[node->param[0]].value,
        cn->conv, cn->y_desc, net->scratch, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf,
        net->workspace, net->workspace_bytes);
    if (st == CUDNN_STATUS_SUCCESS) i = pick(perf, got, net->workspace_bytes);
    if (i < 0) {
        st = cudnnGetConvolutionForwardAlgorithm_v7(h, cn->x_desc, cn->w_desc, cn->conv,
                                                    cn->y_desc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return rn_cudnn_fail(node, "choosing a forward algorithm", st, err, len);
        i = pick(perf, got, static_cast<size_t>(-1));
        if (i < 0 || grow_workspace(net, node, perf[i].memory, err, len))
            return i < 0 ? rn_node_fail(node, "choosing a forward algorithm",
                                        "cuDNN offers none", err, len)
                         : -1;
    }
    a->fwd = perf[i].algo;
    a->fwd_ws = perf[i].memory;
    a->have_fwd = true;
    return 0;
}

int find_data(rn_cuda_net *net, rn_cuda_node *cn, rn_conv_algos *a, char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnHandle_t h = net->cudnn;
    size_t want = most_workspace<cudnnConvolutionBwdDataAlgo_t>(
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, [&](cudnnConvolutionBwdDataAlgo_t algo, size_t *b) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, cn->w_desc, cn->y_desc,
                                                                cn->conv, cn->x_desc, algo, b);
        });
    if (grow_workspace(net, node, want, err, len)) return -1;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0, i = -1;
    cudnnStatus_t st = cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, cn->w_desc, net->params[node->param[0]].value, cn->y_desc, net->grads[node->out],
        cn->conv, cn->x_desc, net->scratch, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf,
        net->workspace, net->workspace_bytes);
    if (st == CUDNN_STATUS_SUCCESS) i = pick(perf, got, net->workspace_bytes);
    if (i < 0) {
        st = cudnnGetConvolutionBackwardDataAlgorithm_v7(
            h, cn->w_desc, cn->y_desc, cn->conv, cn->x_desc,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return rn_cudnn_fail(node, "choosing a backward-data algorithm", st, err, len);
        i = pick(perf, got, static_cast<size_t>(-1));
        if (i < 0 || grow_workspace(net, node, perf[i].memory, err, len))
            return i < 0 ? rn_node_fail(node, "choosing a backward-data algorithm",
                                        "cuDNN offers none", err, len)
                         : -1;
    }
    a->bwd_data = perf[i].algo;
    a->data_ws = perf[i].memory;
    a->have_data = true;
    return 0;
}

int find_filter(rn_cuda_net *net, rn_cuda_node *cn, rn_conv_algos *a, char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnHandle_t h = net->cudnn;
    size_t want = most_workspace<cudnnConvolutionBwdFilterAlgo_t>(
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t *b) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, cn->x_desc, cn->y_desc,
                                                                  cn->conv, cn->w_desc, algo, b);
        });
    if (grow_workspace(net, node, want, err, len)) return -1;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int got = 0, i = -1;
    // The filter gradient Find writes goes to pscratch: a frozen weight's gradient stays as is.
    cudnnStatus_t st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, cn->x_desc, net->acts[node->in], cn->y_desc, net->grads[node->out], cn->conv,
        cn->w_desc, net->pscratch, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf,
        net->workspace, net->workspace_bytes);
    if (st == CUDNN_STATUS_SUCCESS) i = pick(perf, got, net->workspace_bytes);
    if (i < 0) {
        st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, cn->x_desc, cn->y_desc, cn->conv, cn->w_desc,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return rn_cudnn_fail(node, "choosing a backward-filter algorithm", st, err, len);
        i = pick(perf, got, static_cast<size_t>(-1));
        if (i < 0 || grow_workspace(net, node, perf[i].memory, err, len))
            return i < 0 ? rn_node_fail(node, "choosing a backward-filter algorithm",
                                        "cuDNN offers none", err, len)
                         : -1;
    }
    a->bwd_filter = perf[i].algo;
    a->filter_ws = perf[i].memory;
    a->have_filter = true;
    return 0;
}

}  // namespace

int rn_conv_setup(rn_cuda_net *net, rn_cuda_node *cn, char *err, size_t len)
{
    (void)net;
    const rn_node *node = cn->node;
    const int g = node->groups > 0 ? static_cast<int>(node->groups) : 1;
    const int k = static_cast<int>(node->kernel), p = static_cast<int>(node->padding),
              s = static_cast<int>(node->stride), d = static_cast<int>(node->dilation);
    cudnnStatus_t st;
    if ((st = cudnnCreateFilterDescriptor(&cn->w_desc)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateConvolutionDescriptor(&cn->conv)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetFilter4dDescriptor(cn->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                         static_cast<int>(node->out_ch),
                                         static_cast<int>(node->in_ch) / g, k, k)) !=
            CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetConvolution2dDescriptor(cn->conv, p, p, s, s, d, d,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) !=
            CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetConvolutionGroupCount(cn->conv, g)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetConvolutionMathType(cn->conv, CUDNN_FMA_MATH)) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "convolution descriptors", st, err, len);
    if (node->bias &&
        ((st = cudnnCreateTensorDescriptor(&cn->bias_desc)) != CUDNN_STATUS_SUCCESS ||
         (st = cudnnSetTensor4dDescriptor(cn->bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                          static_cast<int>(node->out_ch), 1, 1)) !=
             CUDNN_STATUS_SUCCESS))
        return rn_cudnn_fail(node, "bias descriptor", st, err, len);
    return 0;
}

int rn_conv_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len)
{
    const rn_node *node = cn->node;
    rn_conv_algos *a = slot_for(cn, n);
    if (!a->have_fwd && find_fwd(net, cn, a, err, len)) return -1;
    const float one = 1.0f, zero = 0.0f;
    float *y = net->acts[node->out];
    cudnnStatus_t st = cudnnConvolutionForward(
        net->cudnn, &one, cn->x_desc, net->acts[node->in], cn->w_desc,
        net->params[node->param[0]].value, cn->conv, a->fwd, net->workspace, a->fwd_ws, &zero,
        cn->y_desc, y);
    if (st != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnConvolutionForward", st, err, len);
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
    rn_conv_algos *a = slot_for(cn, n);
    if (want_dw && !a->have_filter && find_filter(net, cn, a, err, len)) return -1;
    if (want_dx && !a->have_data && find_data(net, cn, a, err, len)) return -1;
    const float one = 1.0f, zero = 0.0f;
    const float *dy = net->grads[node->out];
    cudnnStatus_t st;
    if (want_db &&
        (st = cudnnConvolutionBackwardBias(net->cudnn, &one, cn->y_desc, dy, &zero, cn->bias_desc,
                                           net->params[node->param[1]].grad)) !=
            CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnConvolutionBackwardBias", st, err, len);
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
