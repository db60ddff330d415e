// Linear nodes on cuBLAS, in every precision: y = b + x W^T, dW = dy^T x, db = sum of dy, dx = dy W
// (linear.c's products). One cublasGemmEx per product with float32 C and CUBLAS_COMPUTE_32F
// (never TF32's reduced mantissa): A and B float32, or under bf16 / fp16 the 16-bit copies the
// forward made of x and W (the node's x16 and w16, which backward reads again) and dy narrowed
// into the net's shared scratch. Row-major tensors through column-major BLAS: row-major y (n, out)
// is column-major y^T (out, n) = W (x^T), with W row-major (out, in) column-major (in, out).
#include "net_internal.h"

#include "net_kernels.h"

#include <cstdio>

namespace {

struct operands {
    const void *x, *w, *dy;
    cudaDataType_t type;
};

int gemm_fail(const rn_cuda_net *net, const rn_node *node, const char *what, cublasStatus_t st,
              char *err, size_t len)
{
    if (net->precision == RN_CUDA_FP32) return rn_cublas_fail(node, what, st, err, len);
    char w[160];
    std::snprintf(w, sizeof w, "%s in %s", what, rn_precision_label(net->precision));
    return rn_cublas_fail(node, w, st, err, len);
}

}  // namespace

int rn_linear_forward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const int in_f = static_cast<int>(node->in_f), out_f = static_cast<int>(node->out_f);
    const float *w = net->params[node->param[0]].value;
    float *y = net->acts[node->out];
    const float one = 1.0f, zero = 0.0f;
    operands op{net->acts[node->in], w, nullptr, CUDA_R_32F};
    if (net->precision != RN_CUDA_FP32) {
        if (rn_half_narrow(net, node, net->acts[node->in], cn->x16, n * in_f, err, len) ||
            rn_half_narrow(net, node, w, cn->w16, net->params[node->param[0]].numel, err, len))
            return -1;
        op = operands{cn->x16, cn->w16, nullptr, rn_half_cublas_type(net)};
    }
    if (node->bias && rn_cuda_bias_rows(net->params[node->param[1]].value, y, n, out_f,
                                        net->compute, err, len))
        return rn_node_wrap(node, "forward", err, len);
    cublasStatus_t st = cublasGemmEx(net->cublas, CUBLAS_OP_T, CUBLAS_OP_N, out_f,
                                     static_cast<int>(n), in_f, &one, op.w, op.type, in_f, op.x,
                                     op.type, in_f, node->bias ? &one : &zero, y, CUDA_R_32F,
                                     out_f, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return gemm_fail(net, node, "cublasGemmEx (forward)", st, err, len);
    return 0;
}

int rn_linear_backward(rn_cuda_net *net, rn_cuda_node *cn, int64_t n, bool want_dx, bool acc,
                       bool want_dw, bool want_db, char *err, size_t len)
{
    const rn_node *node = cn->node;
    const int in_f = static_cast<int>(node->in_f), out_f = static_cast<int>(node->out_f),
              b = static_cast<int>(n);
    const float one = 1.0f, zero = 0.0f;
    const float *dy = net->grads[node->out];
    if (want_db &&
        rn_cuda_bias_grad(dy, net->params[node->param[1]].grad, n, out_f, net->compute, err, len))
        return rn_node_wrap(node, "backward", err, len);
    if (!want_dw && !want_dx) return 0;
    operands op{net->acts[node->in], net->params[node->param[0]].value, dy, CUDA_R_32F};
    if (net->precision != RN_CUDA_FP32) {
        if (rn_half_narrow(net, node, dy, net->half_y, n * out_f, err, len)) return -1;
        op = operands{cn->x16, cn->w16, net->half_y, rn_half_cublas_type(net)};
    }
    cublasStatus_t st;
    // dW (out, in) = dy^T x: column-major dW^T (in, out) = x^T-as-stored (in, n) dy (n, out).
    if (want_dw &&
        (st = cublasGemmEx(net->cublas, CUBLAS_OP_N, CUBLAS_OP_T, in_f, out_f, b, &one, op.x,
                           op.type, in_f, op.dy, op.type, out_f, &zero,
                           net->params[node->param[0]].grad, CUDA_R_32F, in_f,
                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)) != CUBLAS_STATUS_SUCCESS)
        return gemm_fail(net, node, "cublasGemmEx (weight gradient)", st, err, len);
    // dx (n, in) = dy W: column-major dx^T (in, n) = W-as-stored (in, out) dy^T (out, n).
    if (want_dx &&
        (st = cublasGemmEx(net->cublas, CUBLAS_OP_N, CUBLAS_OP_N, in_f, b, out_f, &one, op.w,
                           op.type, in_f, op.dy, op.type, out_f, acc ? &one : &zero,
                           net->grads[node->in], CUDA_R_32F, in_f, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT)) != CUBLAS_STATUS_SUCCESS)
        return gemm_fail(net, node, "cublasGemmEx (input gradient)", st, err, len);
    return 0;
}
