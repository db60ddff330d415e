// bf16 / fp16 compute (backend.h's precision): the shared 16-bit scratch the convolution and
// linear nodes convert their operands into, the conversions with the node named on failure, and
// linear nodes on cublasGemmEx. Everything between nodes stays float32: operands are rounded
// (kernels/amp_elem.h, round to nearest even) just before a product and its results widened, or,
// for cuBLAS, written straight into float32 C.
#include "net_internal.h"

#include "net_kernels.h"

#include <cstdio>

namespace {

const char *precision_name(int precision)
{
    return precision == RN_CUDA_BF16 ? "bf16" : precision == RN_CUDA_FP16 ? "fp16" : "fp32";
}

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

cudaDataType_t rn_half_cublas_type(const rn_cuda_net *net)
{
    return net->precision == RN_CUDA_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

int rn_half_create(rn_cuda_net *net, char *err, size_t len)
{
    if (net->precision == RN_CUDA_FP32) return 0;
    const rn_net *d = net->desc;
    const int64_t b = net->max_batch;
    need x, w, y;
    for (int k = 0; k < d->n_nodes; k++) {
        const rn_node *node = &d->nodes[k];
        if (node->kind != RN_NODE_CONV2D && node->kind != RN_NODE_LINEAR) continue;
        // a linear node's (n, in_f) and (n, out_f) are its tensors' per-sample sizes too
        x.offer(net->per_sample[node->in] * b, node);
        w.offer(net->params[node->param[0]].numel, node);
        y.offer(net->per_sample[node->out] * b, node);
    }
    char what[3][96];
    const char *p = precision_name(net->precision);
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
        return rn_node_wrap(node, precision_name(net->precision), err, len);
    return 0;
}

int rn_half_widen(rn_cuda_net *net, const rn_node *node, const uint16_t *h, float *y, int64_t n,
                  bool acc, char *err, size_t len)
{
    if (rn_cuda_widen(h, y, n, net->precision == RN_CUDA_FP16, acc, net->compute, err, len))
        return rn_node_wrap(node, precision_name(net->precision), err, len);
    return 0;
}

int rn_half_cudnn_fail(const rn_cuda_net *net, const rn_node *node, const char *what,
                       cudnnStatus_t st, char *err, size_t len)
{
    char w[160];
    std::snprintf(w, sizeof w, "%s in %s", what, precision_name(net->precision));
    return rn_cudnn_fail(node, w, st, err, len);
}

namespace {

int half_cublas_fail(const rn_cuda_net *net, const rn_node *node, const char *what,
                     cublasStatus_t st, char *err, size_t len)
{
    char w[160];
    std::snprintf(w, sizeof w, "%s in %s", what, precision_name(net->precision));
    return rn_cublas_fail(node, w, st, err, len);
}

}  // namespace

// The same products as linear_forward / linear_backward's cublasSgemm calls (same transposes and
// leading dimensions), with A and B in the 16-bit type and C in float32, accumulated in float32
// (CUBLAS_COMPUTE_32F: never TF32's reduced mantissa on the float32 side).
int rn_linear_half_forward(rn_cuda_net *net, const rn_node *node, int64_t n, char *err,
                           size_t len)
{
    const int in_f = static_cast<int>(node->in_f), out_f = static_cast<int>(node->out_f);
    const cudaDataType_t t = rn_half_cublas_type(net);
    float *y = net->acts[node->out];
    const float one = 1.0f, zero = 0.0f;
    if (node->bias && rn_cuda_bias_rows(net->params[node->param[1]].value, y, n, out_f,
                                        net->compute, err, len))
        return rn_node_wrap(node, "forward", err, len);
    if (rn_half_narrow(net, node, net->acts[node->in], net->half_x, n * in_f, err, len) ||
        rn_half_narrow(net, node, net->params[node->param[0]].value, net->half_w,
                       net->params[node->param[0]].numel, err, len))
        return -1;
    // y^T (out, n) = W (x^T) in column-major terms, as linear_forward; y = b + x W^T.
    cublasStatus_t st = cublasGemmEx(net->cublas, CUBLAS_OP_T, CUBLAS_OP_N, out_f,
                                     static_cast<int>(n), in_f, &one, net->half_w, t, in_f,
                                     net->half_x, t, in_f, node->bias ? &one : &zero, y,
                                     CUDA_R_32F, out_f, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return half_cublas_fail(net, node, "cublasGemmEx (forward)", st, err, len);
    return 0;
}

int rn_linear_half_backward(rn_cuda_net *net, const rn_node *node, int64_t n, bool want_dx,
                            bool acc, bool want_dw, char *err, size_t len)
{
    if (!want_dx && !want_dw) return 0;
    const int in_f = static_cast<int>(node->in_f), out_f = static_cast<int>(node->out_f),
              b = static_cast<int>(n);
    const cudaDataType_t t = rn_half_cublas_type(net);
    const float one = 1.0f, zero = 0.0f;
    if (rn_half_narrow(net, node, net->grads[node->out], net->half_y, n * out_f, err, len))
        return -1;
    cublasStatus_t st;
    // dW (out, in) = dy^T x: column-major dW^T (in, out) = x^T-as-stored (in, n) dy (n, out).
    if (want_dw) {
        if (rn_half_narrow(net, node, net->acts[node->in], net->half_x, n * in_f, err, len))
            return -1;
        st = cublasGemmEx(net->cublas, CUBLAS_OP_N, CUBLAS_OP_T, in_f, out_f, b, &one,
                          net->half_x, t, in_f, net->half_y, t, out_f, &zero,
                          net->params[node->param[0]].grad, CUDA_R_32F, in_f, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            return half_cublas_fail(net, node, "cublasGemmEx (weight gradient)", st, err, len);
    }
    if (!want_dx) return 0;
    // dx (n, in) = dy W: column-major dx^T (in, n) = W-as-stored (in, out) dy^T (out, n).
    if (rn_half_narrow(net, node, net->params[node->param[0]].value, net->half_w,
                       net->params[node->param[0]].numel, err, len))
        return -1;
    st = cublasGemmEx(net->cublas, CUBLAS_OP_N, CUBLAS_OP_N, in_f, b, out_f, &one, net->half_w, t,
                      in_f, net->half_y, t, out_f, acc ? &one : &zero, net->grads[node->in],
                      CUDA_R_32F, in_f, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return half_cublas_fail(net, node, "cublasGemmEx (input gradient)", st, err, len);
    return 0;
}
