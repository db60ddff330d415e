// bf16 / fp16 compute (backend.h's precision): the 16-bit buffers the convolution and linear
// nodes convert their operands into, and the conversions with the node named on failure.
// Everything between nodes stays float32: operands are rounded (kernels/amp_elem.h, round to
// nearest even) just before a product and its results widened, or, for cuBLAS, written straight
// into float32 C.
#include "net_internal.h"

#include "net_kernels.h"

#include <cstdio>

namespace {

// The largest need of one scratch buffer and the node that has it (to name in an OOM).
struct need {
    int64_t elems = 0;
    const rn_node *node = nullptr;

    void offer(int64_t e, const rn_node *by)
    {
        if (e > elems) {
            elems = e;
            node = by;
        }
    }
};

int alloc_need(uint16_t **p, const need &nd, const char *what, char *err, size_t len)
{
    if (!nd.node) return 0;
    return rn_net_alloc(reinterpret_cast<void **>(p),
                        static_cast<size_t>(nd.elems) * sizeof(uint16_t), nd.node->name,
                        rn_node_kind_name(nd.node->kind), what, err, len);
}

}  // namespace

const char *rn_precision_label(int precision)
{
    return precision == RN_CUDA_BF16 ? "bf16" : precision == RN_CUDA_FP16 ? "fp16" : "fp32";
}

cudaDataType_t rn_half_cublas_type(const rn_cuda_net *net)
{
    return net->precision == RN_CUDA_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

int rn_half_create(rn_cuda_net *net, char *err, size_t len)
{
    if (net->precision == RN_CUDA_FP32) return 0;
    const rn_net *d = net->desc;
    const int64_t b = net->max_batch;
    const char *p = rn_precision_label(net->precision);
    need x, w, y;
    for (int k = 0; k < d->n_nodes; k++) {
        const rn_node *node = &d->nodes[k];
        if (node->kind != RN_NODE_CONV2D && node->kind != RN_NODE_LINEAR) continue;
        rn_cuda_node *cn = &net->nodes[k];
        // The forward's 16-bit x and W, kept for backward: each is narrowed once per step.
        const int64_t xe = net->per_sample[node->in] * b, we = net->params[node->param[0]].numel;
        char what[2][96];
        std::snprintf(what[0], sizeof what[0], "the %s copy of its input", p);
        std::snprintf(what[1], sizeof what[1], "the %s copy of its weights", p);
        if (rn_net_alloc(reinterpret_cast<void **>(&cn->x16), static_cast<size_t>(xe) * 2,
                         node->name, rn_node_kind_name(node->kind), what[0], err, len) ||
            rn_net_alloc(reinterpret_cast<void **>(&cn->w16), static_cast<size_t>(we) * 2,
                         node->name, rn_node_kind_name(node->kind), what[1], err, len))
            return -1;
        // The shared scratch: a convolution's input and filter gradients (and Find's operands);
        // every node's output or output gradient (a linear node writes float32 C directly).
        if (node->kind == RN_NODE_CONV2D) {
            x.offer(xe, node);
            w.offer(we, node);
        }
        y.offer(net->per_sample[node->out] * b, node);
    }
    char what[3][96];
    std::snprintf(what[0], sizeof what[0], "the %s input scratch (shared by all nodes)", p);
    std::snprintf(what[1], sizeof what[1], "the %s weight scratch (shared by all nodes)", p);
    std::snprintf(what[2], sizeof what[2], "the %s output scratch (shared by all nodes)", p);
    if (alloc_need(&net->half_x, x, what[0], err, len) ||
        alloc_need(&net->half_w, w, what[1], err, len) ||
        alloc_need(&net->half_y, y, what[2], err, len))
        return -1;
    // Zeroed once: Find times its directions on these before any conversion has filled them.
    cudaError_t rc = cudaSuccess;
    if ((x.node && (rc = cudaMemsetAsync(net->half_x, 0, x.elems * sizeof(uint16_t),
                                         net->compute)) != cudaSuccess) ||
        (w.node && (rc = cudaMemsetAsync(net->half_w, 0, w.elems * sizeof(uint16_t),
                                         net->compute)) != cudaSuccess) ||
        (y.node && (rc = cudaMemsetAsync(net->half_y, 0, y.elems * sizeof(uint16_t),
                                         net->compute)) != cudaSuccess))
        return rn_cuda_fail(nullptr, "zeroing the half scratch", rc, err, len);
    return 0;
}

int rn_half_narrow(rn_cuda_net *net, const rn_node *node, const float *x, uint16_t *h, int64_t n,
                   char *err, size_t len)
{
    if (rn_cuda_narrow(x, h, n, net->precision == RN_CUDA_FP16, net->compute, err, len))
        return rn_node_wrap(node, rn_precision_label(net->precision), err, len);
    return 0;
}

int rn_half_widen(rn_cuda_net *net, const rn_node *node, const uint16_t *h, float *y, int64_t n,
                  bool acc, char *err, size_t len)
{
    if (rn_cuda_widen(h, y, n, net->precision == RN_CUDA_FP16, acc, net->compute, err, len))
        return rn_node_wrap(node, rn_precision_label(net->precision), err, len);
    return 0;
}

int rn_half_cudnn_fail(const rn_cuda_net *net, const rn_node *node, const char *what,
                       cudnnStatus_t st, char *err, size_t len)
{
    char w[160];
    std::snprintf(w, sizeof w, "%s in %s", what, rn_precision_label(net->precision));
    return rn_cudnn_fail(node, w, st, err, len);
}
