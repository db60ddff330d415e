// What a training step does around forward and backward on the device: the loss (nn_kernels'
// cross-entropy or multi-margin, its per-row losses summed on the host in row order), the
// gradient norm (per-chunk sums added on the host in chunk order, as runner/core/grads.c),
// scaling and fp16's unscale, the optimizer step (one multi-tensor launch per group,
// optim_kernels.cu) and an augmentation plugin's plan (augment_kernels.cu).
#include "net_api.h"
#include "net_internal.h"

#include "augment_kernels.h"
#include "net_kernels.h"
#include "nn_kernels.h"
#include "optim_kernels.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

int check_batch(const rn_cuda_net *net, const char *what, int64_t n, char *err, size_t len)
{
    if (n >= 1 && n <= net->max_batch) return 0;
    std::snprintf(err, len, "%s: batch %lld outside [1, %lld]", what, static_cast<long long>(n),
                  static_cast<long long>(net->max_batch));
    return -1;
}

int check_grads(const rn_cuda_net *net, const char *what, const int *idx, int n, char *err,
                size_t len)
{
    for (int j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= net->n_params || !net->params[idx[j]].grad) {
            std::snprintf(err, len, "%s: parameter %d has no gradient on the device", what,
                          idx[j]);
            return -1;
        }
    return 0;
}

}  // namespace

extern "C" int rn_cuda_net_loss(rn_cuda_net *net, int64_t n, const rn_cuda_loss *loss,
                                int gradient, double *out, int64_t *correct, char *err,
                                size_t len)
{
    if (check_batch(net, "net_loss", n, err, len)) return -1;
    if (!loss || (loss->kind != RN_CUDA_LOSS_CROSS_ENTROPY &&
                  loss->kind != RN_CUDA_LOSS_MULTI_MARGIN)) {
        std::snprintf(err, len, "net_loss: unknown loss kind %d", loss ? loss->kind : -1);
        return -1;
    }
    const bool margin = loss->kind == RN_CUDA_LOSS_MULTI_MARGIN;
    if (margin && loss->soft) {
        std::snprintf(err, len, "net_loss: multi-margin takes labels only, not soft targets");
        return -1;
    }
    const rn_net *d = net->desc;
    const int64_t k = net->classes;
    const float *logits = net->acts[d->output];
    const float *t = !margin && loss->soft ? net->loss_soft : nullptr;
    float *g = gradient ? net->grads[d->output] : nullptr;
    const int rc =
        margin ? rn_cuda_multi_margin(logits, n, k, net->loss_labels, loss->margin, loss->p,
                                      net->row_loss, g, loss->grad_scale, net->compute, err, len)
               : rn_cuda_cross_entropy(logits, n, k, net->loss_labels, t, loss->label_smoothing,
                                       net->row_loss, g, loss->grad_scale, net->compute, err,
                                       len);
    // The hits only when asked for (training passes correct NULL: no kernel, no copy).
    if (rc || (correct && rn_cuda_row_hits(logits, n, k, net->loss_labels, t, net->hits,
                                           net->compute, err, len)))
        return rn_node_wrap(nullptr, "net_loss", err, len);
    const double *rows = net->row_loss_host;
    const int32_t *hits = net->hits_host;
    cudaError_t ce;
    if ((ce = cudaMemcpyAsync(net->row_loss_host, net->row_loss, n * sizeof(double),
                              cudaMemcpyDeviceToHost, net->compute)) != cudaSuccess ||
        (correct &&
         (ce = cudaMemcpyAsync(net->hits_host, net->hits, n * sizeof(int32_t),
                               cudaMemcpyDeviceToHost, net->compute)) != cudaSuccess) ||
        (ce = cudaStreamSynchronize(net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_loss: reading the loss", ce, err, len);
    // rn_cross_entropy2 and rn_multi_margin: rows added in order, the mean over n; NaN for a bad
    // smoothing (cross-entropy) or a bad label (a NaN row).
    double total = 0.0;
    int64_t h = 0;
    for (int64_t i = 0; i < n; i++) {
        total += rows[i];
        if (correct) h += hits[i];
    }
    const bool bad = !margin && !(loss->label_smoothing >= 0.0 && loss->label_smoothing <= 1.0);
    if (out) *out = bad ? NAN : total / static_cast<double>(n);
    if (correct) *correct = h;
    return 0;
}

extern "C" int rn_cuda_net_grad_sumsq(rn_cuda_net *net, const int *idx, int n, double *sumsq,
                                      char *err, size_t len)
{
    if (check_grads(net, "net_grad_sumsq", idx, n, err, len)) return -1;
    size_t chunks = 0;
    for (int j = 0; j < n; j++)
        chunks += static_cast<size_t>((net->params[idx[j]].numel + RN_MT_CHUNK - 1) / RN_MT_CHUNK);
    *sumsq = 0.0;
    if (chunks == 0) return 0;
    if (chunks > net->partial_count) {  // a parameter listed twice
        std::snprintf(err, len, "net_grad_sumsq: %zu chunks, room for %zu (a parameter given "
                      "twice?)", chunks, net->partial_count);
        return -1;
    }
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        const rn_cuda_param *p = &net->params[idx[j]];
        if (rn_cuda_sumsq_chunks(p->grad, p->numel, net->partial + off, net->compute, err, len))
            return rn_node_wrap(nullptr, "net_grad_sumsq", err, len);
        off += static_cast<size_t>((p->numel + RN_MT_CHUNK - 1) / RN_MT_CHUNK);
    }
    cudaError_t rc;
    if ((rc = cudaMemcpyAsync(net->partial_host, net->partial, chunks * sizeof(double),
                              cudaMemcpyDeviceToHost, net->compute)) != cudaSuccess ||
        (rc = cudaStreamSynchronize(net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_grad_sumsq: reading the sums", rc, err, len);
    double total = 0.0;
    for (size_t c = 0; c < chunks; c++)
        total += net->partial_host[c];  // tensor by tensor, chunk by chunk: grads.c's order
    *sumsq = total;
    return 0;
}

extern "C" int rn_cuda_net_grad_scale(rn_cuda_net *net, const int *idx, int n, float factor,
                                      char *err, size_t len)
{
    if (check_grads(net, "net_grad_scale", idx, n, err, len)) return -1;
    if (factor == 1.0f) return 0;
    for (int j = 0; j < n; j++) {
        const rn_cuda_param *p = &net->params[idx[j]];
        if (rn_cuda_scale(p->grad, p->numel, factor, net->compute, err, len))
            return rn_node_wrap(nullptr, "net_grad_scale", err, len);
    }
    return 0;
}

extern "C" int rn_cuda_net_grad_clamp(rn_cuda_net *net, const int *idx, int n, float v,
                                      char *err, size_t len)
{
    if (check_grads(net, "net_grad_clamp", idx, n, err, len)) return -1;
    for (int j = 0; j < n; j++) {
        const rn_cuda_param *p = &net->params[idx[j]];
        if (rn_cuda_clamp(p->grad, p->numel, v, net->compute, err, len))
            return rn_node_wrap(nullptr, "net_grad_clamp", err, len);
    }
    return 0;
}

extern "C" int rn_cuda_net_grad_accumulate(rn_cuda_net *net, const int *idx, int n, float w,
                                           int first, char *err, size_t len)
{
    if (check_grads(net, "net_grad_accumulate", idx, n, err, len)) return -1;
    for (int j = 0; j < n; j++) {
        rn_cuda_param *p = &net->params[idx[j]];
        if (!p->acc &&
            rn_net_alloc(reinterpret_cast<void **>(&p->acc),
                         static_cast<size_t>(p->numel) * sizeof(float), "network", "accumulate",
                         "the gradient sums", err, len))
            return -1;
        if (rn_cuda_accumulate(p->acc, p->grad, p->numel, w, first, net->compute, err, len))
            return rn_node_wrap(nullptr, "net_grad_accumulate", err, len);
    }
    return 0;
}

extern "C" int rn_cuda_net_grad_mean(rn_cuda_net *net, const int *idx, int n, int64_t total,
                                     char *err, size_t len)
{
    if (check_grads(net, "net_grad_mean", idx, n, err, len)) return -1;
    const float inv = 1.0f / static_cast<float>(total);  // grads.c's rounding
    for (int j = 0; j < n; j++) {
        const rn_cuda_param *p = &net->params[idx[j]];
        if (!p->acc) {
            std::snprintf(err, len, "net_grad_mean: parameter %d was never accumulated", idx[j]);
            return -1;
        }
        if (rn_cuda_mean(p->grad, p->acc, p->numel, inv, net->compute, err, len))
            return rn_node_wrap(nullptr, "net_grad_mean", err, len);
    }
    return 0;
}

extern "C" int rn_cuda_net_grad_unscale(rn_cuda_net *net, const int *idx, int n, float inv_scale,
                                        int *found_inf, char *err, size_t len)
{
    if (check_grads(net, "net_grad_unscale", idx, n, err, len)) return -1;
    if (!net->found_inf &&
        rn_net_alloc(reinterpret_cast<void **>(&net->found_inf), sizeof(int), "network",
                     "unscale", "the non-finite flag", err, len))
        return -1;
    // One flag for the whole group, zeroed on the stream ahead of the launches that set it.
    cudaError_t rc = cudaMemsetAsync(net->found_inf, 0, sizeof(int), net->compute);
    if (rc != cudaSuccess) return rn_cuda_fail(nullptr, "net_grad_unscale", rc, err, len);
    for (int j = 0; j < n; j++) {
        const rn_cuda_param *p = &net->params[idx[j]];
        if (rn_cuda_unscale(p->grad, p->numel, inv_scale, net->found_inf, net->compute, err,
                            len))
            return rn_node_wrap(nullptr, "net_grad_unscale", err, len);
    }
    int flag = 0;
    if ((rc = cudaMemcpyAsync(&flag, net->found_inf, sizeof flag, cudaMemcpyDeviceToHost,
                              net->compute)) != cudaSuccess ||
        (rc = cudaStreamSynchronize(net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_grad_unscale: reading the flag", rc, err, len);
    *found_inf = flag != 0;
    return 0;
}

namespace {

// The group's plan on the device: a cached one with the same table, or a new one uploaded (the
// compute stream is drained first: the buffer it replaces may still be read by a launch).
rn_step_plan *step_plan(rn_cuda_net *net, const rn_mt_tensor *ts, int n, char *err, size_t len)
{
    for (int i = 0; i < net->n_plans; i++) {
        rn_step_plan *p = &net->plans[i];
        if (p->n == n && std::memcmp(p->host, ts, n * sizeof *ts) == 0) return p;
    }
    if (!net->plans) {
        net->plans = static_cast<rn_step_plan *>(std::calloc(RN_STEP_PLANS, sizeof(rn_step_plan)));
        if (!net->plans) {
            std::snprintf(err, len, "net_step: out of host memory");
            return nullptr;
        }
    }
    cudaStreamSynchronize(net->compute);
    rn_step_plan *p;
    if (net->n_plans < RN_STEP_PLANS) {
        p = &net->plans[net->n_plans++];
    } else {  // the oldest goes
        cudaFree(net->plans[0].dev);
        std::free(net->plans[0].host);
        std::memmove(net->plans, net->plans + 1, (RN_STEP_PLANS - 1) * sizeof(rn_step_plan));
        p = &net->plans[RN_STEP_PLANS - 1];
    }
    *p = rn_step_plan{};
    const int64_t chunks = rn_mt_count_chunks(ts, n);
    const size_t t_bytes = n * sizeof(rn_mt_tensor), c_bytes = chunks * sizeof(rn_mt_chunk);
    const size_t c_off = (t_bytes + 15) / 16 * 16, p_off = (c_off + c_bytes + 15) / 16 * 16;
    std::vector<unsigned char> host(p_off);
    std::memcpy(host.data(), ts, t_bytes);
    rn_mt_plan_chunks(ts, n, reinterpret_cast<rn_mt_chunk *>(host.data() + c_off), chunks);
    p->host = static_cast<rn_mt_tensor *>(std::malloc(t_bytes ? t_bytes : 1));
    if (!p->host ||
        rn_net_alloc(&p->dev, p_off + 2 * chunks * sizeof(double), "network", "optimizer",
                     "a parameter group's chunk plan", err, len)) {
        std::free(p->host);
        net->n_plans--;
        if (!p->host) std::snprintf(err, len, "net_step: out of host memory");
        return nullptr;
    }
    std::memcpy(p->host, ts, t_bytes);
    p->n = n;
    p->n_chunks = chunks;
    // On the compute stream, then waited for: `host` is freed on return.
    cudaError_t rc = cudaMemcpyAsync(p->dev, host.data(), p_off, cudaMemcpyHostToDevice,
                                     net->compute);
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(net->compute);
    if (rc != cudaSuccess) {  // not kept: the next step uploads it again
        rn_cuda_fail(nullptr, "net_step: uploading the chunk plan", rc, err, len);
        cudaFree(p->dev);
        std::free(p->host);
        net->n_plans--;
        return nullptr;
    }
    return p;
}

}  // namespace

extern "C" int rn_cuda_net_step(rn_cuda_net *net, const int *idx, int n, const rn_update *u,
                                char *err, size_t len)
{
    if (n <= 0) return 0;
    if (check_grads(net, "net_step", idx, n, err, len)) return -1;
    if (n > net->n_params) {
        std::snprintf(err, len, "net_step: %d parameters, the net has %d", n, net->n_params);
        return -1;
    }
    rn_mt_tensor *ts = net->step_tensors;
    for (int j = 0; j < n; j++) {
        const rn_cuda_param *p = &net->params[idx[j]];
        float *s[3] = {nullptr, nullptr, nullptr};
        for (int k = 0; k < 3; k++) {
            const int b = u->state[k];
            if (b < 0) continue;
            if (!p->state || static_cast<size_t>(b) >= p->state_floats) {
                std::snprintf(err, len, "net_step: parameter %d has no optimizer state block %d "
                                        "(net_state_alloc first)", idx[j], b);
                return -1;
            }
            s[k] = p->state + static_cast<size_t>(b) * static_cast<size_t>(p->numel);
        }
        ts[j] = rn_mt_tensor{p->value, p->grad, s[0], s[1], s[2], p->numel};
    }
    rn_step_plan *plan = step_plan(net, ts, n, err, len);
    if (!plan) return -1;
    if (plan->n_chunks == 0) return 0;
    const size_t t_bytes = n * sizeof(rn_mt_tensor);
    const size_t c_off = (t_bytes + 15) / 16 * 16,
                 p_off = (c_off + plan->n_chunks * sizeof(rn_mt_chunk) + 15) / 16 * 16;
    unsigned char *dev = static_cast<unsigned char *>(plan->dev);
    rn_cuda_optim_launch l{};
    l.u = *u;
    l.tensors = reinterpret_cast<const rn_mt_tensor *>(dev);
    l.chunks = reinterpret_cast<const rn_mt_chunk *>(dev + c_off);
    l.n_chunks = plan->n_chunks;
    l.stream = net->compute;
    l.partial = reinterpret_cast<double *>(dev + p_off);
    if (rn_cuda_optim_step(&l, err, len)) return rn_node_wrap(nullptr, "net_step", err, len);
    return 0;
}

namespace {

// Bytes of the array the plan's kind reads, for n samples.
size_t plan_bytes(const rn_augment_op *op, int64_t n)
{
    switch (op->kind) {
    case RN_AUGMENT_OP_FLIP: return static_cast<size_t>(n);
    case RN_AUGMENT_OP_CROP: return static_cast<size_t>(2 * n) * sizeof(int32_t);
    case RN_AUGMENT_OP_RESIZED_CROP: return static_cast<size_t>(4 * n) * sizeof(int32_t);
    case RN_AUGMENT_OP_ERASE: return static_cast<size_t>(n) * sizeof(rn_erase_box);
    case RN_AUGMENT_OP_MIX: return static_cast<size_t>(n) * sizeof(rn_mix_sample);
    default: return 0;
    }
}

const void *plan_array(const rn_augment_op *op)
{
    switch (op->kind) {
    case RN_AUGMENT_OP_FLIP: return op->flip;
    case RN_AUGMENT_OP_CROP: return op->shift;
    case RN_AUGMENT_OP_RESIZED_CROP: return op->box;
    case RN_AUGMENT_OP_ERASE: return op->erase;
    case RN_AUGMENT_OP_MIX: return op->mix;
    default: return nullptr;
    }
}

// Scratch for the batch before (x0, t0) and the fill values, allocated on first use.
int augment_buffers(rn_cuda_net *net, int64_t c, char *err, size_t len)
{
    const rn_net *d = net->desc;
    const size_t x_bytes =
        static_cast<size_t>(net->per_sample[d->input] * net->max_batch) * sizeof(float);
    const size_t t_bytes = static_cast<size_t>(net->classes * net->max_batch) * sizeof(float);
    if (!net->aug_x0 && rn_net_alloc(reinterpret_cast<void **>(&net->aug_x0), x_bytes, "input",
                                     "augment", "the batch before augmenting", err, len))
        return -1;
    if (!net->aug_t0 && rn_net_alloc(reinterpret_cast<void **>(&net->aug_t0), t_bytes, "input",
                                     "augment", "the soft targets before mixing", err, len))
        return -1;
    if (!net->aug_zero && rn_net_alloc(reinterpret_cast<void **>(&net->aug_zero),
                                       static_cast<size_t>(c) * sizeof(float), "input",
                                       "augment", "the padding fill", err, len))
        return -1;
    return 0;
}

}  // namespace

extern "C" int rn_cuda_net_augment(rn_cuda_net *net, int64_t n, const rn_augment_op *op,
                                   const float *zero_value, char *err, size_t len)
{
    if (check_batch(net, "net_augment", n, err, len)) return -1;
    if (!op || op->kind == RN_AUGMENT_OP_NONE) return 0;
    const rn_shape *s = &net->desc->shapes[net->desc->input];
    if (s->ndim != 4) {
        std::snprintf(err, len, "net_augment: the input is not an image batch (N, C, H, W)");
        return -1;
    }
    const int64_t c = s->d[1], h = s->d[2], w = s->d[3];
    const size_t a_bytes = plan_bytes(op, n), a_off = 0;
    if (a_bytes && !plan_array(op)) {
        std::snprintf(err, len, "net_augment: the plan of kind %d has no array",
                      static_cast<int>(op->kind));
        return -1;
    }
    if (augment_buffers(net, c, err, len)) return -1;
    // The batch is net_put_batch's (copy stream): wait for it, as net_forward does.
    cudaError_t rc = cudaStreamWaitEvent(net->compute, net->input_ready, 0);
    if (rc != cudaSuccess) return rn_cuda_fail(nullptr, "net_augment: the input", rc, err, len);
    if (rn_net_grow(&net->aug_plan, &net->aug_plan_bytes, a_bytes, "input", "augment",
                    "the augmentation plan", err, len))
        return -1;
    // The plan's array comes straight from the caller's memory: the loader's per-batch block,
    // pinned (host_alloc) and kept until the step after this one has read its loss back, so the
    // copy is asynchronous and queued behind this stream's work like the kernel that reads it.
    if (a_bytes && (rc = cudaMemcpyAsync(net->aug_plan, plan_array(op), a_bytes,
                                         cudaMemcpyHostToDevice, net->compute)) != cudaSuccess)
        return rn_cuda_fail(nullptr, "net_augment: copying the plan", rc, err, len);
    // The padding fill is the run's: uploaded when it changes (once), not for every plugin.
    const size_t z_bytes = static_cast<size_t>(c) * sizeof(float);
    if (!net->aug_zero_host) {
        net->aug_zero_host = static_cast<float *>(std::calloc(static_cast<size_t>(c), sizeof(float)));
        if (!net->aug_zero_host) return rn_node_fail(nullptr, "net_augment", "out of memory", err, len);
        if ((rc = cudaMemsetAsync(net->aug_zero, 0, z_bytes, net->compute)) != cudaSuccess)
            return rn_cuda_fail(nullptr, "net_augment: the padding fill", rc, err, len);
    }
    if (zero_value && std::memcmp(net->aug_zero_host, zero_value, z_bytes) != 0) {
        std::memcpy(net->aug_zero_host, zero_value, z_bytes);
        if ((rc = cudaMemcpyAsync(net->aug_zero, net->aug_zero_host, z_bytes,
                                  cudaMemcpyHostToDevice, net->compute)) != cudaSuccess ||
            (rc = cudaStreamSynchronize(net->compute)) != cudaSuccess)  // from pageable memory
            return rn_cuda_fail(nullptr, "net_augment: the padding fill", rc, err, len);
    }
    rn_augment_op dop = *op;
    unsigned char *arr = static_cast<unsigned char *>(net->aug_plan) + a_off;
    dop.flip = op->kind == RN_AUGMENT_OP_FLIP ? arr : nullptr;
    dop.shift = op->kind == RN_AUGMENT_OP_CROP ? reinterpret_cast<int32_t *>(arr) : nullptr;
    dop.erase = op->kind == RN_AUGMENT_OP_ERASE ? reinterpret_cast<rn_erase_box *>(arr) : nullptr;
    dop.mix = op->kind == RN_AUGMENT_OP_MIX ? reinterpret_cast<rn_mix_sample *>(arr) : nullptr;
    dop.box = op->kind == RN_AUGMENT_OP_RESIZED_CROP ? reinterpret_cast<int32_t *>(arr) : nullptr;
    if (rn_cuda_augment(&dop, net->input, net->aug_x0, net->soft, net->aug_t0, net->aug_zero, n,
                        c, h, w, net->classes, net->compute, err, len))
        return rn_node_wrap(nullptr, "net_augment", err, len);
    return 0;
}
