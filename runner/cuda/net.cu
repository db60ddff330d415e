// The device network's memory: net_create (streams, handles, every tensor and gradient, the
// parameters, each node's descriptors), net_destroy, the buffers the caller fills, pinned host
// memory, optimizer state and the copies between host and device. Every cudaMalloc goes through
// rn_net_alloc, whose out-of-memory line names the node and the bytes.
#include "net_api.h"
#include "net_internal.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

// ---- helpers shared by the net_*.cu files ------------------------------------------------

int rn_net_alloc(void **p, size_t bytes, const char *who, const char *kind, const char *what,
                 char *err, size_t len)
{
    *p = nullptr;
    if (bytes == 0) return 0;
    cudaError_t rc = cudaMalloc(p, bytes);
    if (rc == cudaSuccess) return 0;
    *p = nullptr;
    cudaGetLastError();  // clear the sticky-free error so later calls are not blamed
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    if (rc == cudaErrorMemoryAllocation)
        std::snprintf(err, len, "%s (%s): out of GPU memory: %zu bytes for %s (%zu of %zu free)",
                      who, kind, bytes, what, free_b, total_b);
    else
        std::snprintf(err, len, "%s (%s): cudaMalloc of %zu bytes for %s: %s", who, kind, bytes,
                      what, cudaGetErrorString(rc));
    return -1;
}

int rn_net_grow(void **p, size_t *have, size_t need, const char *who, const char *kind,
                const char *what, char *err, size_t len)
{
    if (need <= *have) return 0;
    if (*p) cudaFree(*p);  // synchronizes: no launch still uses it
    *p = nullptr;
    *have = 0;
    if (rn_net_alloc(p, need, who, kind, what, err, len)) return -1;
    *have = need;
    return 0;
}

int rn_node_fail(const rn_node *node, const char *what, const char *detail, char *err, size_t len)
{
    if (node)
        std::snprintf(err, len, "%s (%s): %s: %s", node->name, rn_node_kind_name(node->kind),
                      what, detail);
    else
        std::snprintf(err, len, "network: %s: %s", what, detail);
    return -1;
}

int rn_node_wrap(const rn_node *node, const char *what, char *err, size_t len)
{
    char detail[384];
    std::snprintf(detail, sizeof detail, "%s", err);
    return rn_node_fail(node, what, detail, err, len);
}

int rn_cudnn_fail(const rn_node *node, const char *what, cudnnStatus_t st, char *err, size_t len)
{
    return rn_node_fail(node, what, cudnnGetErrorString(st), err, len);
}

int rn_cublas_fail(const rn_node *node, const char *what, cublasStatus_t st, char *err,
                   size_t len)
{
    return rn_node_fail(node, what, cublasGetStatusString(st), err, len);
}

int rn_cuda_fail(const rn_node *node, const char *what, cudaError_t rc, char *err, size_t len)
{
    return rn_node_fail(node, what, cudaGetErrorString(rc), err, len);
}

int64_t rn_shape_numel_at(const rn_shape *s, int64_t n)
{
    int64_t k = n;
    for (int d = 1; d < s->ndim; d++) k *= s->d[d];
    return k;
}

void rn_shape_nchw(const rn_shape *s, int64_t n, int dims[4])
{
    dims[0] = static_cast<int>(n);
    for (int d = 1; d < 4; d++) dims[d] = d < s->ndim ? static_cast<int>(s->d[d]) : 1;
}

// ---- create / destroy --------------------------------------------------------------------

namespace {

// The node that writes tensor t (NULL for the input), to name its buffers.
const rn_node *writer(const rn_net *d, int t)
{
    for (int k = 0; k < d->n_nodes; k++)
        if (d->nodes[k].out == t) return &d->nodes[k];
    return nullptr;
}

// The node that owns parameter i, or NULL.
const rn_node *owner(const rn_net *d, int i)
{
    for (int k = 0; k < d->n_nodes; k++)
        for (int j = 0; j < d->nodes[k].n_params; j++)
            if (d->nodes[k].param[j] == i) return &d->nodes[k];
    return nullptr;
}

int64_t param_numel(const rn_param_ref *p)
{
    int64_t k = 1;
    for (int d = 0; d < p->value->shape.ndim; d++) k *= p->value->shape.d[d];
    return k;
}

int node_alloc(void **p, size_t bytes, const rn_node *node, const char *what, char *err,
               size_t len)
{
    return rn_net_alloc(p, bytes, node ? node->name : "input",
                        node ? rn_node_kind_name(node->kind) : "tensor 0", what, err, len);
}

int create_tensors(rn_cuda_net *net, char *err, size_t len)
{
    const rn_net *d = net->desc;
    net->acts = static_cast<float **>(std::calloc(d->n_tensors, sizeof(float *)));
    net->grads = static_cast<float **>(std::calloc(d->n_tensors, sizeof(float *)));
    net->per_sample = static_cast<int64_t *>(std::calloc(d->n_tensors, sizeof(int64_t)));
    if (!net->acts || !net->grads || !net->per_sample)
        return rn_node_fail(nullptr, "create", "out of host memory", err, len);
    int64_t most = 0;
    for (int t = 0; t < d->n_tensors; t++) {
        net->per_sample[t] = rn_shape_numel_at(&d->shapes[t], 1);
        const int64_t k = net->per_sample[t] * net->max_batch;
        if (k > most) most = k;
        const rn_node *w = writer(d, t);
        const size_t bytes = static_cast<size_t>(k) * sizeof(float);
        if (node_alloc(reinterpret_cast<void **>(&net->acts[t]), bytes, w, "its output", err,
                       len))
            return -1;
        if (t != d->input &&
            node_alloc(reinterpret_cast<void **>(&net->grads[t]), bytes, w,
                       "its output's gradient", err, len))
            return -1;
    }
    net->scratch_floats = most;
    return 0;
}

int create_params(rn_cuda_net *net, const rn_param_ref *params, int n_params, char *err,
                  size_t len)
{
    net->params = static_cast<rn_cuda_param *>(std::calloc(n_params ? n_params : 1,
                                                           sizeof(rn_cuda_param)));
    net->step_tensors = static_cast<rn_mt_tensor *>(std::calloc(n_params ? n_params : 1,
                                                                sizeof(rn_mt_tensor)));
    if (!net->params || !net->step_tensors)
        return rn_node_fail(nullptr, "create", "out of host memory", err, len);
    net->n_params = n_params;
    int64_t most = 0;
    for (int i = 0; i < n_params; i++) {
        rn_cuda_param *p = &net->params[i];
        p->numel = param_numel(&params[i]);
        if (p->numel > most) most = p->numel;
        if (params[i].grad)  // net_grad_sumsq sums each gradient at most once per call
            net->partial_count += static_cast<size_t>((p->numel + RN_MT_CHUNK - 1) / RN_MT_CHUNK);
        const size_t bytes = static_cast<size_t>(p->numel) * sizeof(float);
        const rn_node *o = owner(net->desc, i);
        char what[160];
        std::snprintf(what, sizeof what, "%s", params[i].name ? params[i].name : "a parameter");
        if (node_alloc(reinterpret_cast<void **>(&p->value), bytes, o, what, err, len)) return -1;
        std::snprintf(what, sizeof what, "%s's gradient",
                      params[i].name ? params[i].name : "a parameter");
        if (params[i].grad &&
            node_alloc(reinterpret_cast<void **>(&p->grad), bytes, o, what, err, len))
            return -1;
        // On the compute stream (not the legacy one, which a non-blocking stream does not wait
        // for): the first kernels are ordered after these copies.
        cudaError_t rc = cudaMemcpyAsync(p->value, params[i].value->data, bytes,
                                         cudaMemcpyHostToDevice, net->compute);
        if (rc != cudaSuccess) return rn_cuda_fail(o, "copying the parameters", rc, err, len);
        if (p->grad && (rc = cudaMemsetAsync(p->grad, 0, bytes, net->compute)) != cudaSuccess)
            return rn_cuda_fail(o, "zeroing the gradients", rc, err, len);
    }
    if (most > net->scratch_floats) net->scratch_floats = most;
    return node_alloc(reinterpret_cast<void **>(&net->pscratch),
                      static_cast<size_t>(2 * most) * sizeof(float), nullptr,
                      "frozen parameters' gradients", err, len);
}

// Per node: descriptors, and the buffers its kind keeps between forward and backward.
int create_node(rn_cuda_net *net, rn_cuda_node *cn, char *err, size_t len)
{
    const rn_node *node = cn->node;
    cudnnStatus_t st;
    if ((st = cudnnCreateTensorDescriptor(&cn->x_desc)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnCreateTensorDescriptor(&cn->y_desc)) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(node, "cudnnCreateTensorDescriptor", st, err, len);
    const int64_t c = net->desc->shapes[node->out].ndim > 1 ? net->desc->shapes[node->out].d[1]
                                                              : 1;
    switch (node->kind) {
    case RN_NODE_CONV2D: return rn_conv_setup(net, cn, err, len);
    case RN_NODE_BATCHNORM2D:
        if ((st = cudnnCreateTensorDescriptor(&cn->bias_desc)) != CUDNN_STATUS_SUCCESS ||
            (st = cudnnSetTensor4dDescriptor(cn->bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             1, static_cast<int>(c), 1, 1)) !=
                CUDNN_STATUS_SUCCESS)
            return rn_cudnn_fail(node, "batch norm descriptor", st, err, len);
        if (node_alloc(reinterpret_cast<void **>(&cn->save_mean), c * sizeof(float), node,
                       "the batch mean", err, len) ||
            node_alloc(reinterpret_cast<void **>(&cn->save_invvar), c * sizeof(float), node,
                       "the batch inverse std", err, len) ||
            node_alloc(reinterpret_cast<void **>(&cn->coef), 4 * c * sizeof(float), node,
                       "the eval-mode coefficients", err, len))
            return -1;
        return 0;
    case RN_NODE_MAXPOOL2D:
    case RN_NODE_AVGPOOL2D:
        if ((st = cudnnCreatePoolingDescriptor(&cn->pool)) != CUDNN_STATUS_SUCCESS ||
            (st = rn_pool_desc(node, cn->pool)) != CUDNN_STATUS_SUCCESS)
            return rn_cudnn_fail(node, "pooling descriptor", st, err, len);
        return 0;
    case RN_NODE_DROPOUT:
        return node_alloc(reinterpret_cast<void **>(&cn->mask),
                          static_cast<size_t>(net->per_sample[node->out] * net->max_batch), node,
                          "its mask", err, len);
    default: return 0;
    }
}

// Pinned host memory for what the net reads back every step; "network: out of pinned host
// memory: <bytes> bytes for <what>".
int host_alloc(void **p, size_t bytes, const char *what, char *err, size_t len)
{
    if (cudaHostAlloc(p, bytes ? bytes : 1, cudaHostAllocDefault) == cudaSuccess) return 0;
    cudaGetLastError();
    *p = nullptr;
    std::snprintf(err, len, "network: out of pinned host memory: %zu bytes for %s", bytes, what);
    return -1;
}

int create_io(rn_cuda_net *net, char *err, size_t len)
{
    const rn_net *d = net->desc;
    const int64_t b = net->max_batch;
    net->classes = net->per_sample[d->output];
    const size_t in_bytes = static_cast<size_t>(net->per_sample[d->input] * b) * sizeof(float);
    const size_t soft_bytes = static_cast<size_t>(net->classes * b) * sizeof(float);
    return node_alloc(reinterpret_cast<void **>(&net->input), in_bytes, nullptr, "the input batch",
                      err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->labels), b * sizeof(int32_t), nullptr,
                      "the labels", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->soft), soft_bytes, nullptr,
                      "the soft targets", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->loss_labels), b * sizeof(int32_t),
                      nullptr, "the loss's labels", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->loss_soft), soft_bytes, nullptr,
                      "the loss's soft targets", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->row_loss), b * sizeof(double), nullptr,
                      "the per-sample losses", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->hits), b * sizeof(int32_t), nullptr,
                      "the per-sample hits", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->scratch),
                      static_cast<size_t>(net->scratch_floats) * sizeof(float), nullptr,
                      "gradient scratch", err, len) ||
           host_alloc(reinterpret_cast<void **>(&net->row_loss_host), b * sizeof(double),
                      "the per-sample losses", err, len) ||
           host_alloc(reinterpret_cast<void **>(&net->hits_host), b * sizeof(int32_t),
                      "the per-sample hits", err, len) ||
           node_alloc(reinterpret_cast<void **>(&net->partial),
                      net->partial_count * sizeof(double), nullptr,
                      "the gradient norm's chunk sums", err, len) ||
           host_alloc(reinterpret_cast<void **>(&net->partial_host),
                      net->partial_count * sizeof(double), "the gradient norm's chunk sums", err,
                      len)
               ? -1
               : 0;
}

int create_handles(rn_cuda_net *net, char *err, size_t len)
{
    cudaError_t rc;
    if ((rc = cudaStreamCreateWithFlags(&net->compute, cudaStreamNonBlocking)) != cudaSuccess ||
        (rc = cudaStreamCreateWithFlags(&net->copy, cudaStreamNonBlocking)) != cudaSuccess ||
        (rc = cudaEventCreateWithFlags(&net->input_ready, cudaEventDisableTiming)) !=
            cudaSuccess ||
        (rc = cudaEventCreateWithFlags(&net->input_consumed, cudaEventDisableTiming)) !=
            cudaSuccess)
        return rn_cuda_fail(nullptr, "creating streams", rc, err, len);
    cudnnStatus_t st;
    if ((st = cudnnCreate(&net->cudnn)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetStream(net->cudnn, net->compute)) != CUDNN_STATUS_SUCCESS)
        return rn_cudnn_fail(nullptr, "cudnnCreate", st, err, len);
    cublasStatus_t bs;
    // cuBLAS's default math mode uses no TF32: float32 products as on the CPU.
    if ((bs = cublasCreate(&net->cublas)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetStream(net->cublas, net->compute)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetMathMode(net->cublas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
        return rn_cublas_fail(nullptr, "cublasCreate", bs, err, len);
    return 0;
}

}  // namespace

extern "C" int rn_cuda_net_create(rn_cuda_net **out, const rn_net *desc,
                                  const rn_param_ref *params, int n_params, int64_t max_batch,
                                  int precision, char *err, size_t len)
{
    *out = nullptr;
    if (!desc || desc->n_nodes < 1 || max_batch < 1 || n_params < 0 || (n_params && !params)) {
        std::snprintf(err, len, "net_create: expected a described network, max_batch >= 1 and "
                                "its parameters");
        return -1;
    }
    if (precision != RN_CUDA_FP32 && precision != RN_CUDA_BF16 && precision != RN_CUDA_FP16) {
        std::snprintf(err, len, "net_create: precision %d is none of fp32 (%d), bf16 (%d) and "
                                "fp16 (%d)", precision, RN_CUDA_FP32, RN_CUDA_BF16, RN_CUDA_FP16);
        return -1;
    }
    int devices = 0, dev = 0;
    cudaError_t rc = cudaGetDeviceCount(&devices);
    if (rc != cudaSuccess || devices < 1 || (rc = cudaGetDevice(&dev)) != cudaSuccess) {
        std::snprintf(err, len, "net_create: no usable GPU (%s)",
                      rc != cudaSuccess ? cudaGetErrorString(rc) : "no device");
        cudaGetLastError();
        return -1;
    }
    for (int k = 0; k < desc->n_nodes; k++)
        for (int j = 0; j < desc->nodes[k].n_params; j++)
            if (desc->nodes[k].param[j] >= n_params)
                return rn_node_fail(&desc->nodes[k], "net_create",
                                    "parameter index past the parameters given", err, len);
    rn_cuda_net *net = static_cast<rn_cuda_net *>(std::calloc(1, sizeof *net));
    if (!net) return rn_node_fail(nullptr, "net_create", "out of host memory", err, len);
    net->desc = desc;
    net->max_batch = max_batch;
    net->device = dev;
    net->precision = precision;
    net->nodes = static_cast<rn_cuda_node *>(std::calloc(desc->n_nodes, sizeof(rn_cuda_node)));
    int bad = !net->nodes;
    if (bad) rn_node_fail(nullptr, "net_create", "out of host memory", err, len);
    bad = bad || create_handles(net, err, len) || create_tensors(net, err, len) ||
          create_params(net, params, n_params, err, len) || create_io(net, err, len) ||
          rn_half_create(net, err, len);
    for (int k = 0; !bad && k < desc->n_nodes; k++) {
        net->nodes[k].node = &desc->nodes[k];
        bad = create_node(net, &net->nodes[k], err, len);
    }
    cudaError_t sync = bad ? cudaSuccess : cudaStreamSynchronize(net->compute);
    if (sync != cudaSuccess) bad = rn_cuda_fail(nullptr, "net_create", sync, err, len);
    if (bad) {
        rn_cuda_net_destroy(net);
        return -1;
    }
    *out = net;
    return 0;
}

extern "C" void rn_cuda_net_destroy(rn_cuda_net *net)
{
    if (!net) return;
    if (net->compute) cudaStreamSynchronize(net->compute);
    if (net->copy) cudaStreamSynchronize(net->copy);
    const rn_net *d = net->desc;
    for (int k = 0; net->nodes && k < d->n_nodes; k++) {
        rn_cuda_node *cn = &net->nodes[k];
        if (cn->x_desc) cudnnDestroyTensorDescriptor(cn->x_desc);
        if (cn->y_desc) cudnnDestroyTensorDescriptor(cn->y_desc);
        if (cn->bias_desc) cudnnDestroyTensorDescriptor(cn->bias_desc);
        if (cn->w_desc) cudnnDestroyFilterDescriptor(cn->w_desc);
        if (cn->hx_desc) cudnnDestroyTensorDescriptor(cn->hx_desc);
        if (cn->hy_desc) cudnnDestroyTensorDescriptor(cn->hy_desc);
        if (cn->hw_desc) cudnnDestroyFilterDescriptor(cn->hw_desc);
        if (cn->conv) cudnnDestroyConvolutionDescriptor(cn->conv);
        if (cn->pool) cudnnDestroyPoolingDescriptor(cn->pool);
        cudaFree(cn->save_mean);
        cudaFree(cn->x16);
        cudaFree(cn->w16);
        cudaFree(cn->save_invvar);
        cudaFree(cn->coef);
        cudaFree(cn->mask);
    }
    std::free(net->nodes);
    for (int t = 0; t < d->n_tensors; t++) {
        if (net->acts) cudaFree(net->acts[t]);
        if (net->grads) cudaFree(net->grads[t]);
    }
    std::free(net->acts);
    std::free(net->grads);
    std::free(net->per_sample);
    for (int i = 0; net->params && i < net->n_params; i++) {
        cudaFree(net->params[i].value);
        cudaFree(net->params[i].grad);
        cudaFree(net->params[i].state);
        cudaFree(net->params[i].acc);
    }
    std::free(net->params);
    void *bufs[] = {net->input, net->soft, net->labels, net->loss_labels, net->loss_soft,
                    net->row_loss, net->hits, net->scratch, net->pscratch, net->workspace,
                    net->partial, net->aug_x0, net->aug_t0, net->aug_zero,
                    net->aug_plan, net->half_x, net->half_w, net->half_y,
                    net->found_inf};
    for (void *b : bufs) cudaFree(b);
    for (void *b : {static_cast<void *>(net->row_loss_host), static_cast<void *>(net->hits_host),
                    static_cast<void *>(net->partial_host)})
        if (b) cudaFreeHost(b);
    for (int i = 0; i < net->n_plans; i++) {
        cudaFree(net->plans[i].dev);
        std::free(net->plans[i].host);
    }
    std::free(net->plans);
    std::free(net->step_tensors);
    std::free(net->aug_zero_host);
    if (net->cublas) cublasDestroy(net->cublas);
    if (net->cudnn) cudnnDestroy(net->cudnn);
    if (net->input_ready) cudaEventDestroy(net->input_ready);
    if (net->input_consumed) cudaEventDestroy(net->input_consumed);
    if (net->compute) cudaStreamDestroy(net->compute);
    if (net->copy) cudaStreamDestroy(net->copy);
    std::free(net);
}

// ---- the caller's buffers ----------------------------------------------------------------

extern "C" int rn_cuda_net_put_batch(rn_cuda_net *net, const float *x, const int32_t *labels,
                                     const float *soft, int64_t n, char *err, size_t len)
{
    if (n < 1 || n > net->max_batch || !x || !labels) {
        std::snprintf(err, len, "net_put_batch: expected a batch of 1 to %lld samples with labels",
                      static_cast<long long>(net->max_batch));
        return -1;
    }
    const rn_net *d = net->desc;
    cudaError_t rc;
    // The copy stream waits (net_forward's input_consumed) until the forward before has taken
    // the previous batch, so the buffers are free when these copies run.
    if ((rc = cudaMemcpyAsync(net->input, x,
                              static_cast<size_t>(net->per_sample[d->input] * n) * sizeof(float),
                              cudaMemcpyHostToDevice, net->copy)) != cudaSuccess ||
        (rc = cudaMemcpyAsync(net->labels, labels, static_cast<size_t>(n) * sizeof(int32_t),
                              cudaMemcpyHostToDevice, net->copy)) != cudaSuccess ||
        (soft && (rc = cudaMemcpyAsync(net->soft, soft,
                                       static_cast<size_t>(n * net->classes) * sizeof(float),
                                       cudaMemcpyHostToDevice, net->copy)) != cudaSuccess) ||
        (rc = cudaEventRecord(net->input_ready, net->copy)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_put_batch", rc, err, len);
    return 0;
}

extern "C" int rn_cuda_net_logits(rn_cuda_net *net, float *host, int64_t n, char *err,
                                  size_t len)
{
    if (n < 1 || n > net->max_batch) {
        std::snprintf(err, len, "net_logits: batch %lld outside [1, %lld]",
                      static_cast<long long>(n), static_cast<long long>(net->max_batch));
        return -1;
    }
    cudaError_t rc;
    if ((rc = cudaMemcpyAsync(host, net->acts[net->desc->output],
                              static_cast<size_t>(n * net->classes) * sizeof(float),
                              cudaMemcpyDeviceToHost, net->compute)) != cudaSuccess ||
        (rc = cudaStreamSynchronize(net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_logits", rc, err, len);
    return 0;
}

extern "C" void *rn_cuda_host_alloc(size_t bytes)
{
    void *p = nullptr;
    if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        return nullptr;
    }
    return p;
}

extern "C" void rn_cuda_host_free(void *p)
{
    if (p) cudaFreeHost(p);
}

// ---- optimizer state and host <-> device copies ------------------------------------------

extern "C" int rn_cuda_net_state_alloc(rn_cuda_net *net, int i, size_t floats, char *err,
                                       size_t len)
{
    if (i < 0 || i >= net->n_params)
        return rn_node_fail(nullptr, "net_state_alloc", "parameter index out of range", err, len);
    rn_cuda_param *p = &net->params[i];
    const rn_node *o = owner(net->desc, i);
    if (p->state) {
        cudaFree(p->state);  // synchronizes
        p->state = nullptr;
        p->state_floats = 0;
    }
    const size_t bytes = floats * static_cast<size_t>(p->numel) * sizeof(float);
    if (node_alloc(reinterpret_cast<void **>(&p->state), bytes, o, "optimizer state", err, len))
        return -1;
    cudaError_t rc = cudaMemsetAsync(p->state, 0, bytes, net->compute);
    if (rc != cudaSuccess) return rn_cuda_fail(o, "zeroing optimizer state", rc, err, len);
    p->state_floats = floats;
    return 0;
}

extern "C" int rn_cuda_net_download(rn_cuda_net *net, const rn_param_ref *params, int n_params,
                                    int grads, float **state, char *err, size_t len)
{
    cudaError_t rc = cudaStreamSynchronize(net->compute);
    if (rc != cudaSuccess) return rn_cuda_fail(nullptr, "net_download", rc, err, len);
    const int n = n_params < net->n_params ? n_params : net->n_params;
    for (int i = 0; i < n; i++) {
        const rn_cuda_param *p = &net->params[i];
        const size_t bytes = static_cast<size_t>(p->numel) * sizeof(float);
        rc = cudaMemcpyAsync(params[i].value->data, p->value, bytes, cudaMemcpyDeviceToHost,
                             net->compute);
        if (rc == cudaSuccess && grads && p->grad && params[i].grad)
            rc = cudaMemcpyAsync(params[i].grad->data, p->grad, bytes, cudaMemcpyDeviceToHost,
                                 net->compute);
        if (rc == cudaSuccess && state && state[i] && p->state)
            rc = cudaMemcpyAsync(state[i], p->state, bytes * p->state_floats,
                                 cudaMemcpyDeviceToHost, net->compute);
        if (rc != cudaSuccess)
            return rn_cuda_fail(owner(net->desc, i), "net_download", rc, err, len);
    }
    if ((rc = cudaStreamSynchronize(net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_download", rc, err, len);
    return 0;
}

extern "C" int rn_cuda_net_upload(rn_cuda_net *net, const rn_param_ref *params, int n_params,
                                  float *const *state, char *err, size_t len)
{
    cudaError_t rc = cudaStreamSynchronize(net->compute);
    if (rc != cudaSuccess) return rn_cuda_fail(nullptr, "net_upload", rc, err, len);
    const int n = n_params < net->n_params ? n_params : net->n_params;
    for (int i = 0; i < n; i++) {
        const rn_cuda_param *p = &net->params[i];
        const size_t bytes = static_cast<size_t>(p->numel) * sizeof(float);
        rc = cudaMemcpyAsync(p->value, params[i].value->data, bytes, cudaMemcpyHostToDevice,
                             net->compute);
        if (rc == cudaSuccess && state && state[i] && p->state)
            rc = cudaMemcpyAsync(p->state, state[i], bytes * p->state_floats,
                                 cudaMemcpyHostToDevice, net->compute);
        if (rc != cudaSuccess)
            return rn_cuda_fail(owner(net->desc, i), "net_upload", rc, err, len);
    }
    if ((rc = cudaStreamSynchronize(net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_upload", rc, err, len);
    return 0;
}
