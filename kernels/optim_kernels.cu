// The optimizers on the GPU: one multi-tensor launch per parameter group, each element updated by
// the same function the CPU plugin runs (optim_elem.h), so the CPU tests against torch.optim
// check the arithmetic here. LAMB's trust ratio needs each tensor's norms: a first launch
// updates the moments and writes per-chunk partial sums, a second sums them per tensor in chunk
// order (deterministic, as the CPU plugin) and applies the update.
#include "optim_kernels.h"

#include <cstdio>

#include "launch.cuh"

namespace {

using rn::kThreads;

template <class Op>
__global__ void multi_tensor_kernel(const rn_mt_tensor *ts, const rn_mt_chunk *chunks, Op op)
{
    const rn_mt_chunk ck = chunks[blockIdx.x];
    const rn_mt_tensor t = ts[ck.tensor];
    const int64_t end = rn_mt_chunk_end(&t, &ck);
    for (int64_t i = ck.start + threadIdx.x; i < end; i += blockDim.x) op(t, i);
}

struct SgdOp {
    rn_sgd_coef c;
    __device__ void operator()(const rn_mt_tensor &t, int64_t i) const
    {
        rn_sgd_elem(&c, &t.p[i], t.g[i], t.s0 ? &t.s0[i] : nullptr);
    }
};

struct AdamOp {
    rn_adam_coef c;
    __device__ void operator()(const rn_mt_tensor &t, int64_t i) const
    {
        rn_adam_elem(&c, &t.p[i], t.g[i], &t.s0[i], &t.s1[i], t.s2 ? &t.s2[i] : nullptr);
    }
};

struct RmspropOp {
    rn_rmsprop_coef c;
    __device__ void operator()(const rn_mt_tensor &t, int64_t i) const
    {
        rn_rmsprop_elem(&c, &t.p[i], t.g[i], &t.s0[i], t.s1 ? &t.s1[i] : nullptr,
                        t.s2 ? &t.s2[i] : nullptr);
    }
};

struct LionOp {
    rn_lion_coef c;
    __device__ void operator()(const rn_mt_tensor &t, int64_t i) const
    {
        rn_lion_elem(&c, &t.p[i], t.g[i], &t.s0[i]);
    }
};

// LAMB pass 1: moments, and each chunk's sum of p^2 and u^2 (a block reduction in double).
__global__ void lamb_pass1(const rn_mt_tensor *ts, const rn_mt_chunk *chunks, rn_lamb_coef c,
                           double *partial)
{
    __shared__ double sp[kThreads], su[kThreads];
    const rn_mt_chunk ck = chunks[blockIdx.x];
    const rn_mt_tensor t = ts[ck.tensor];
    const int64_t end = rn_mt_chunk_end(&t, &ck);
    double a = 0, b = 0;
    for (int64_t i = ck.start + threadIdx.x; i < end; i += blockDim.x) {
        rn_lamb_moments(&c, t.g[i], &t.s0[i], &t.s1[i]);
        float p = t.p[i], u = rn_lamb_update(&c, t.s0[i], t.s1[i], p);
        a += (double)p * p;
        b += (double)u * u;
    }
    sp[threadIdx.x] = a;
    su[threadIdx.x] = b;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            sp[threadIdx.x] += sp[threadIdx.x + s];
            su[threadIdx.x] += su[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = sp[0];
        partial[2 * blockIdx.x + 1] = su[0];
    }
}

// LAMB pass 2: block b's tensor's norms from its chunks' sums in chunk order, then the update.
__global__ void lamb_pass2(const rn_mt_tensor *ts, const rn_mt_chunk *chunks, rn_lamb_coef c,
                           const double *partial, int adapt)
{
    const rn_mt_chunk ck = chunks[blockIdx.x];
    const rn_mt_tensor t = ts[ck.tensor];
    float ratio = 1.0f;
    if (adapt) {
        const int64_t first = rn_mt_first_chunk(&ck, blockIdx.x);
        int64_t count = (t.n + RN_MT_CHUNK - 1) / RN_MT_CHUNK;
        double sp = 0, su = 0;
        for (int64_t k = 0; k < count; k++) {
            sp += partial[2 * (first + k)];
            su += partial[2 * (first + k) + 1];
        }
        float w = (float)sqrt(sp), u = (float)sqrt(su);
        ratio = w > 0 && u > 0 ? w / u : 1.0f;
    }
    const int64_t end = rn_mt_chunk_end(&t, &ck);
    for (int64_t i = ck.start + threadIdx.x; i < end; i += blockDim.x) {
        float p = t.p[i];
        float u = rn_lamb_update(&c, t.s0[i], t.s1[i], p) * ratio;
        t.p[i] = rn_fma_d(c.neg_lr, u, p);
    }
}

}  // namespace

extern "C" int rn_cuda_optim_step(const rn_cuda_optim_launch *l, char *err, size_t len)
{
    cudaStream_t s = static_cast<cudaStream_t>(l->stream);
    const unsigned blocks = static_cast<unsigned>(l->n_chunks);
    if (blocks == 0) return 0;
    switch (l->u.kind) {
    case RN_UPDATE_SGD:
        RN_LAUNCH(multi_tensor_kernel, blocks, kThreads, s)(l->tensors, l->chunks, SgdOp{l->u.c.sgd});
        break;
    case RN_UPDATE_ADAM:
        RN_LAUNCH(multi_tensor_kernel, blocks, kThreads, s)(l->tensors, l->chunks, AdamOp{l->u.c.adam});
        break;
    case RN_UPDATE_RMSPROP:
        RN_LAUNCH(multi_tensor_kernel, blocks, kThreads, s)(l->tensors, l->chunks,
                                                            RmspropOp{l->u.c.rmsprop});
        break;
    case RN_UPDATE_LION:
        RN_LAUNCH(multi_tensor_kernel, blocks, kThreads, s)(l->tensors, l->chunks, LionOp{l->u.c.lion});
        break;
    case RN_UPDATE_LAMB:
        RN_LAUNCH(lamb_pass1, blocks, kThreads, s)(l->tensors, l->chunks, l->u.c.lamb, l->partial);
        if (rn::launch_check("lamb pass 1", err, len)) return -1;
        RN_LAUNCH(lamb_pass2, blocks, kThreads, s)(l->tensors, l->chunks, l->u.c.lamb, l->partial,
                                                   l->u.lamb_adapt);
        break;
    default:
        std::snprintf(err, len, "unknown optimizer kind %d", static_cast<int>(l->u.kind));
        return -1;
    }
    return rn::launch_check("optimizer launch", err, len);
}
