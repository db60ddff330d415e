// Convolution algorithms: one per direction and batch size, found once with
// cudnnFind*AlgorithmEx (cudnnGet*Algorithm_v7 when Find fails) on the descriptors of the net's
// precision and cached per node, sharing one workspace for the whole net grown to the largest
// need. Deterministic algorithms are preferred, so a run repeats itself bit for bit.
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

// What Find runs a direction on: the descriptors of the net's precision and buffers it may
// overwrite. float32: the node's own input and weight, its output's gradient; the outputs go to
// scratch (the input gradient may hold a first contribution) and pscratch (a frozen weight's
// gradient stays as it is). bf16 / fp16: the shared half scratch, each direction writing the one
// buffer it does not read (forward x, w -> y; data w, dy -> x; filter x, dy -> w), so the
// directions' real calls, which convert their operands after Find, see their own values.
struct operands {
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    const void *x, *w, *dy;
    void *y, *dx, *dw;
};

operands find_operands(rn_cuda_net *net, rn_cuda_node *cn)
{
    const rn_node *node = cn->node;
    if (net->precision != RN_CUDA_FP32)
        return operands{cn->hx_desc, cn->hy_desc, cn->hw_desc, net->half_x, net->half_w,
                        net->half_y, net->half_y, net->half_x, net->half_w};
    return operands{cn->x_desc, cn->y_desc, cn->w_desc, net->acts[node->in],
                    net->params[node->param[0]].value, net->grads[node->out], net->scratch,
                    net->scratch, net->pscratch};
}

// rn_node_fail naming the 16-bit type under bf16 / fp16: cuDNN may offer no algorithm for a shape
// (a grouped convolution, an old GPU) in 16 bits that it runs in float32.
int find_fail(const rn_cuda_net *net, const rn_node *node, const char *what, const char *detail,
              char *err, size_t len)
{
    char w[160];
    if (net->precision == RN_CUDA_FP32)
        std::snprintf(w, sizeof w, "%s", what);
    else
        std::snprintf(w, sizeof w, "%s in %s", what, rn_precision_label(net->precision));
    return rn_node_fail(node, w, detail, err, len);
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

int find_fwd(rn_cuda_net *net, rn_cuda_node *cn, const operands &o, rn_conv_algos *a, char *err,
             size_t len)
{
    const rn_node *node = cn->node;
    cudnnHandle_t h = net->cudnn;
    size_t want = most_workspace<cudnnConvolutionFwdAlgo_t>(
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, [&](cudnnConvolutionFwdAlgo_t algo, size_t *b) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, o.xd, o.wd, cn->conv, o.yd, algo,
                                                           b);
        });
    if (grow_workspace(net, node, want, err, len)) return -1;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0, i = -1;
    cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
        h, o.xd, o.x, o.wd, o.w, cn->conv, o.yd, o.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got,
        perf, net->workspace, net->workspace_bytes);
    if (st == CUDNN_STATUS_SUCCESS) i = pick(perf, got, net->workspace_bytes);
    if (i < 0) {
        st = cudnnGetConvolutionForwardAlgorithm_v7(h, o.xd, o.wd, cn->conv, o.yd,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return find_fail(net, node, "choosing a forward algorithm",
                             cudnnGetErrorString(st), err, len);
        i = pick(perf, got, static_cast<size_t>(-1));
        if (i < 0 || grow_workspace(net, node, perf[i].memory, err, len))
            return i < 0 ? find_fail(net, node, "choosing a forward algorithm",
                                     "cuDNN offers none", err, len)
                         : -1;
    }
    a->fwd = perf[i].algo;
    a->fwd_ws = perf[i].memory;
    a->fwd_math = perf[i].mathType;
    a->have_fwd = true;
    return 0;
}

int find_data(rn_cuda_net *net, rn_cuda_node *cn, const operands &o, rn_conv_algos *a,
              char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnHandle_t h = net->cudnn;
    size_t want = most_workspace<cudnnConvolutionBwdDataAlgo_t>(
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, [&](cudnnConvolutionBwdDataAlgo_t algo, size_t *b) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, o.wd, o.yd, cn->conv, o.xd,
                                                                algo, b);
        });
    if (grow_workspace(net, node, want, err, len)) return -1;
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0, i = -1;
    cudnnStatus_t st = cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, o.wd, o.w, o.yd, o.dy, cn->conv, o.xd, o.dx, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        &got, perf, net->workspace, net->workspace_bytes);
    if (st == CUDNN_STATUS_SUCCESS) i = pick(perf, got, net->workspace_bytes);
    if (i < 0) {
        st = cudnnGetConvolutionBackwardDataAlgorithm_v7(
            h, o.wd, o.yd, cn->conv, o.xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return find_fail(net, node, "choosing a backward-data algorithm",
                             cudnnGetErrorString(st), err, len);
        i = pick(perf, got, static_cast<size_t>(-1));
        if (i < 0 || grow_workspace(net, node, perf[i].memory, err, len))
            return i < 0 ? find_fail(net, node, "choosing a backward-data algorithm",
                                     "cuDNN offers none", err, len)
                         : -1;
    }
    a->bwd_data = perf[i].algo;
    a->data_ws = perf[i].memory;
    a->data_math = perf[i].mathType;
    a->have_data = true;
    return 0;
}

int find_filter(rn_cuda_net *net, rn_cuda_node *cn, const operands &o, rn_conv_algos *a,
                char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnHandle_t h = net->cudnn;
    size_t want = most_workspace<cudnnConvolutionBwdFilterAlgo_t>(
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t *b) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, o.xd, o.yd, cn->conv, o.wd,
                                                                  algo, b);
        });
    if (grow_workspace(net, node, want, err, len)) return -1;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int got = 0, i = -1;
    cudnnStatus_t st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, o.xd, o.x, o.yd, o.dy, cn->conv, o.wd, o.dw, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        &got, perf, net->workspace, net->workspace_bytes);
    if (st == CUDNN_STATUS_SUCCESS) i = pick(perf, got, net->workspace_bytes);
    if (i < 0) {
        st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, o.xd, o.yd, cn->conv, o.wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return find_fail(net, node, "choosing a backward-filter algorithm",
                             cudnnGetErrorString(st), err, len);
        i = pick(perf, got, static_cast<size_t>(-1));
        if (i < 0 || grow_workspace(net, node, perf[i].memory, err, len))
            return i < 0 ? find_fail(net, node, "choosing a backward-filter algorithm",
                                     "cuDNN offers none", err, len)
                         : -1;
    }
    a->bwd_filter = perf[i].algo;
    a->filter_ws = perf[i].memory;
    a->filter_math = perf[i].mathType;
    a->have_filter = true;
    return 0;
}

}  // namespace

rn_conv_algos *rn_conv_find(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool fwd, bool data,
                            bool filter, char *err, size_t len)
{
    rn_conv_algos *a = slot_for(cn, n);
    if (!(fwd && !a->have_fwd) && !(data && !a->have_data) && !(filter && !a->have_filter))
        return a;
    const operands o = find_operands(net, cn);
    // Under bf16 / fp16 the calls leave the descriptor at their algorithm's math type: Find
    // searches from tensor-op math again (which admits the default-math algorithms too).
    cudnnStatus_t st;
    if (net->precision != RN_CUDA_FP32 &&
        (st = cudnnSetConvolutionMathType(cn->conv, CUDNN_TENSOR_OP_MATH)) !=
            CUDNN_STATUS_SUCCESS) {
        find_fail(net, cn->node, "cudnnSetConvolutionMathType", cudnnGetErrorString(st), err,
                  len);
        return nullptr;
    }
    if (fwd && !a->have_fwd && find_fwd(net, cn, o, a, err, len)) return nullptr;
    if (filter && !a->have_filter && find_filter(net, cn, o, a, err, len)) return nullptr;
    if (data && !a->have_data && find_data(net, cn, o, a, err, len)) return nullptr;
    return a;
}
