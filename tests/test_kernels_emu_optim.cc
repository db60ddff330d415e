// kernels/optim_kernels.cu run on the CPU (tests/cuda_emu): rn_cuda_optim_step, the launcher the
// backend calls, updates one parameter group of tensors of 1, 0, 255, 65536, 65537 and 200000
// elements (an empty tensor in the table, a tail block, one and several chunks of RN_MT_CHUNK,
// a chunk of one element) through the multi-tensor plan, for 3 steps, and the result is compared
// with the element functions of kernels/optim_elem.h (the CPU plugins' own) run in one flat loop
// per tensor:
//   - SGD (plain, weight decay + momentum + dampening, Nesterov), Adam (L2), AdamW, AdamW with
//     AMSGrad, RMSprop (plain, momentum, centered, centered + momentum + weight decay), Lion:
//     parameters and every state equal bit for bit (tolerance 0: the same float operations on
//     the same elements, in any order);
//   - LAMB (weight decay with the trust ratio, no decay without it, always_adapt, no bias
//     correction): the moments bit for bit; each block's partial sums of p^2 and u^2 bit for bit
//     against the kernel's summation order transcribed (each of 256 threads adds its strided
//     elements in order, then the tree halves 128, 64, ..., 1), and within 1e-11 relative of a
//     plain in-order double sum of the chunk (every term is a square, exact in double; the error
//     of any order of summing m >= 0 terms is below (m - 1) 2^-53 of the sum, 7.3e-12 for m =
//     65536); parameters bit for bit against pass 2 rebuilt from those chunk sums in chunk order,
//     and within |lr u| 2^-19 + 1 ulp of the flat CPU-order reference (its float trust ratio
//     may differ by an ulp or two when the two double sums round to different floats: the
//     "each device repeats itself exactly, not the other" of docs/gpu.md).
// Every tensor carries 8 guard floats past its end that must come back untouched, the element
// count per tensor is checked, and an unknown kind is refused with its message.
#include "cuda_emu.h"

#include "../kernels/optim_kernels.cu"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rn_test.h"

namespace {

constexpr int kTensors = 6;
constexpr int64_t kSizes[kTensors] = {1, 0, 255, 65536, 65537, 200000};
constexpr int kGuard = 8;
constexpr float kGuardValue = -1234.5f;

uint32_t lcg(uint32_t &s)
{
    s = s * 1664525u + 1013904223u;
    return s >> 8;
}

// Values in [-0.5, 0.5) (abs: [0.01, 0.51)).
void fill(float *v, int64_t n, uint32_t seed, bool positive)
{
    for (int64_t i = 0; i < n; i++) {
        float u = static_cast<float>(lcg(seed) * (1.0 / 16777216.0) - 0.5);
        v[i] = positive ? std::fabs(u) + 0.01f : u;
    }
}

struct Buf {
    std::vector<float> v;
    int64_t n = 0;
    void make(int64_t count)
    {
        n = count;
        v.assign(static_cast<size_t>(count + kGuard), kGuardValue);
    }
    float *data() { return v.data(); }
    bool guard_ok() const
    {
        for (int k = 0; k < kGuard; k++)
            if (v[static_cast<size_t>(n + k)] != kGuardValue) return false;
        return true;
    }
    bool same(const Buf &o) const
    {
        return n == o.n && std::memcmp(v.data(), o.v.data(), static_cast<size_t>(n) * 4) == 0;
    }
};

// One side (device or reference) of a group: parameters, gradients, up to three states.
struct Group {
    Buf p[kTensors], g[kTensors], s[3][kTensors];
    bool has[3] = {false, false, false};

    void init(const bool states[3], const bool positive[3])
    {
        for (int k = 0; k < 3; k++) has[k] = states[k];
        for (int t = 0; t < kTensors; t++) {
            const int64_t n = kSizes[t];
            const uint32_t seed = 1000u * static_cast<uint32_t>(t + 1);
            p[t].make(n);
            g[t].make(n);
            fill(p[t].data(), n, seed, false);
            for (int k = 0; k < 3; k++) {
                if (!has[k]) continue;
                s[k][t].make(n);
                fill(s[k][t].data(), n, seed + 7u + static_cast<uint32_t>(k), positive[k]);
            }
        }
    }
    void new_grads(int step)
    {
        for (int t = 0; t < kTensors; t++)
            fill(g[t].data(), kSizes[t], 77u * static_cast<uint32_t>(step + 1) + 13u *
                                                 static_cast<uint32_t>(t), false);
    }
    float *st(int k, int t) { return has[k] ? s[k][t].data() : nullptr; }
    std::vector<rn_mt_tensor> table()
    {
        std::vector<rn_mt_tensor> ts(kTensors);
        for (int t = 0; t < kTensors; t++)
            ts[t] = rn_mt_tensor{p[t].data(), g[t].data(), st(0, t), st(1, t), st(2, t),
                                 kSizes[t]};
        return ts;
    }
};

// The kernel's order for one chunk [start, end): thread t sums start + t, + 256, ... in order,
// then the tree halves the 256 partials.
double tree_sum(const double *terms, int64_t m)
{
    double part[kThreads];
    for (int t = 0; t < kThreads; t++) {
        double a = 0;
        for (int64_t i = t; i < m; i += kThreads) a += terms[i];
        part[t] = a;
    }
    for (int h = kThreads / 2; h > 0; h >>= 1)
        for (int t = 0; t < h; t++) part[t] += part[t + h];
    return part[0];
}

double flat_sum(const double *terms, int64_t m)
{
    double a = 0;
    for (int64_t i = 0; i < m; i++) a += terms[i];
    return a;
}

float trust(double sp, double su)
{
    float w = static_cast<float>(std::sqrt(sp)), u = static_cast<float>(std::sqrt(su));
    return w > 0 && u > 0 ? w / u : 1.0f;
}

// The flat loop of the element-wise optimizers.
void reference_step(const rn_cuda_optim_launch &l, Group &r)
{
    for (int t = 0; t < kTensors; t++) {
        float *p = r.p[t].data(), *s0 = r.st(0, t), *s1 = r.st(1, t), *s2 = r.st(2, t);
        const float *g = r.g[t].data();
        for (int64_t i = 0; i < kSizes[t]; i++) {
            switch (l.u.kind) {
            case RN_UPDATE_SGD: rn_sgd_elem(&l.u.c.sgd, &p[i], g[i], s0 ? &s0[i] : nullptr); break;
            case RN_UPDATE_ADAM:
                rn_adam_elem(&l.u.c.adam, &p[i], g[i], &s0[i], &s1[i], s2 ? &s2[i] : nullptr);
                break;
            case RN_UPDATE_RMSPROP:
                rn_rmsprop_elem(&l.u.c.rmsprop, &p[i], g[i], &s0[i], s1 ? &s1[i] : nullptr,
                                s2 ? &s2[i] : nullptr);
                break;
            case RN_UPDATE_LION: rn_lion_elem(&l.u.c.lion, &p[i], g[i], &s0[i]); break;
            default: break;
            }
        }
    }
}

struct LambStats {
    int tensors = 0, ratio_equal = 0;
    int64_t p_equal_flat = 0, elements = 0;
};

// LAMB: checks the device partials and parameters as the header says; r is the reference group
// before the step (updated here).
void check_lamb_step(const rn_cuda_optim_launch &l, const std::vector<rn_mt_chunk> &plan,
                     const double *partial, Group &r, const Group &d, LambStats &stats)
{
    const rn_lamb_coef c = l.u.c.lamb;
    int64_t chunk = 0;
    int bad_partial_exact = 0, bad_partial_near = 0, bad_pass2 = 0, bad_flat = 0;
    for (int t = 0; t < kTensors; t++) {
        const int64_t n = kSizes[t];
        if (n == 0) continue;
        float *p = r.p[t].data(), *m = r.s[0][t].data(), *v = r.s[1][t].data();
        const float *g = r.g[t].data();
        std::vector<double> pp(static_cast<size_t>(n)), uu(static_cast<size_t>(n));
        std::vector<float> u(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) {
            rn_lamb_moments(&c, g[i], &m[i], &v[i]);
            u[i] = rn_lamb_update(&c, m[i], v[i], p[i]);
            pp[i] = static_cast<double>(p[i]) * p[i];
            uu[i] = static_cast<double>(u[i]) * u[i];
        }
        // the tensor's chunks, in plan order, and their sums both ways
        double sp_chunks = 0, su_chunks = 0;
        for (int64_t s = 0; s < n; s += RN_MT_CHUNK, chunk++) {
            CHECK(plan[chunk].tensor == t && plan[chunk].start == s);
            const int64_t len = std::min<int64_t>(RN_MT_CHUNK, n - s);
            const double *dp = &partial[2 * chunk];
            double ep = tree_sum(&pp[s], len), eu = tree_sum(&uu[s], len);
            double fp = flat_sum(&pp[s], len), fu = flat_sum(&uu[s], len);
            bad_partial_exact += dp[0] != ep || dp[1] != eu;
            bad_partial_near += !(std::fabs(dp[0] - fp) <= 1e-11 * fp) ||
                                !(std::fabs(dp[1] - fu) <= 1e-11 * fu);
            sp_chunks += dp[0];
            su_chunks += dp[1];
        }
        const float ratio_dev = l.u.lamb_adapt ? trust(sp_chunks, su_chunks) : 1.0f;
        const float ratio_flat =
            l.u.lamb_adapt ? trust(flat_sum(pp.data(), n), flat_sum(uu.data(), n)) : 1.0f;
        stats.tensors++;
        stats.ratio_equal += ratio_dev == ratio_flat;
        CHECK(std::fabs(ratio_dev - ratio_flat) <= std::ldexp(ratio_flat, -21));
        const float *pd = d.p[t].v.data();
        for (int64_t i = 0; i < n; i++) {
            const float by_chunks = rn_fma_d(c.neg_lr, u[i] * ratio_dev, p[i]);
            const float flat = rn_fma_d(c.neg_lr, u[i] * ratio_flat, p[i]);
            bad_pass2 += std::memcmp(&pd[i], &by_chunks, 4) != 0;
            const double tol = std::fabs(static_cast<double>(c.neg_lr) * u[i] * ratio_flat) *
                                   std::ldexp(1.0, -19) +
                               std::fabs(std::nextafter(flat, INFINITY) - flat);
            bad_flat += !(std::fabs(static_cast<double>(pd[i]) - flat) <= tol);
            stats.p_equal_flat += pd[i] == flat;
            stats.elements++;
            p[i] = by_chunks;
        }
    }
    CHECK(chunk == static_cast<int64_t>(plan.size()));
    CHECK(bad_partial_exact == 0);
    CHECK(bad_partial_near == 0);
    CHECK(bad_pass2 == 0);
    CHECK(bad_flat == 0);
}

struct Case {
    const char *name;
    rn_cuda_optim_launch l;
    bool states[3];
    bool positive[3];
};

// Coefficients for step t (0-based) as the plugins compute them (doubles rounded to float).
void set_step(Case &cs, int t)
{
    rn_cuda_optim_launch &l = cs.l;
    const double step = t + 1;
    if (l.u.kind == RN_UPDATE_SGD) l.u.c.sgd.first = t == 0;
    if (l.u.kind == RN_UPDATE_ADAM) {
        const double lr = 1e-3, b1 = l.u.c.adam.beta1, b2 = l.u.c.adam.beta2;
        l.u.c.adam.neg_step = static_cast<float>(-lr / (1 - std::pow(b1, step)));
        l.u.c.adam.bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(b2, step)));
    }
    if (l.u.kind == RN_UPDATE_LAMB && l.u.c.lamb.bc1 != 1.0f) {
        const double b1 = l.u.c.lamb.beta1, b2 = l.u.c.lamb.beta2;
        l.u.c.lamb.bc1 = static_cast<float>(1 - std::pow(b1, step));
        l.u.c.lamb.bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(b2, step)));
    }
}

void run_case(Case cs)
{
    Group dev, ref;
    dev.init(cs.states, cs.positive);
    ref.init(cs.states, cs.positive);
    std::vector<rn_mt_tensor> ts = dev.table();
    const int64_t count = rn_mt_count_chunks(ts.data(), kTensors);
    std::vector<rn_mt_chunk> plan(static_cast<size_t>(count));
    CHECK(rn_mt_plan_chunks(ts.data(), kTensors, plan.data(), count) == count);
    CHECK(count == 1 + 0 + 1 + 1 + 2 + 4);
    std::vector<double> partial(static_cast<size_t>(2 * count), -1.0);
    LambStats stats;
    for (int t = 0; t < 3; t++) {
        set_step(cs, t);
        dev.new_grads(t);
        ref.new_grads(t);
        rn_cuda_optim_launch l = cs.l;
        l.tensors = ts.data();
        l.chunks = plan.data();
        l.n_chunks = count;
        l.stream = nullptr;
        l.partial = partial.data();
        char err[256] = "";
        CHECK(rn_cuda_optim_step(&l, err, sizeof err) == 0);
        if (err[0]) std::fprintf(stderr, "%s: %s\n", cs.name, err);
        if (l.u.kind == RN_UPDATE_LAMB) check_lamb_step(l, plan, partial.data(), ref, dev, stats);
        else reference_step(l, ref);
    }
    int differ = 0, guards = 0;
    for (int t = 0; t < kTensors; t++) {
        differ += !dev.p[t].same(ref.p[t]);
        guards += !dev.p[t].guard_ok() + !dev.g[t].guard_ok();
        for (int k = 0; k < 3; k++)
            if (cs.states[k]) {
                differ += !dev.s[k][t].same(ref.s[k][t]);
                guards += !dev.s[k][t].guard_ok();
            }
    }
    CHECK(differ == 0);
    CHECK(guards == 0);
    // the update moved every parameter of the 200000-element tensor at least once in 3 steps
    int64_t moved = 0;
    Group fresh;
    fresh.init(cs.states, cs.positive);
    for (int64_t i = 0; i < kSizes[5]; i++) moved += dev.p[5].v[i] != fresh.p[5].v[i];
    CHECK(moved > kSizes[5] / 2);
    if (cs.l.u.kind == RN_UPDATE_LAMB)
        std::printf("  %-40s %d chunks x 3 steps: equal (trust ratio equal to the flat order's "
                    "in %d of %d tensor steps; p equal to it in %lld of %lld)\n",
                    cs.name, static_cast<int>(count), stats.ratio_equal, stats.tensors,
                    static_cast<long long>(stats.p_equal_flat),
                    static_cast<long long>(stats.elements));
    else
        std::printf("  %-40s %d chunks x 3 steps: %s\n", cs.name, static_cast<int>(count),
                    differ ? "DIFFERENT" : "bit for bit");
}

rn_cuda_optim_launch base(rn_update_kind kind)
{
    rn_cuda_optim_launch l;
    std::memset(&l, 0, sizeof l);
    l.u.kind = kind;
    return l;
}

}  // namespace

int main()
{
    std::vector<Case> cases;
    auto add = [&](const char *name, rn_cuda_optim_launch l, bool s0, bool s1, bool s2, bool p0,
                   bool p1, bool p2) {
        cases.push_back(Case{name, l, {s0, s1, s2}, {p0, p1, p2}});
    };
    // SGD
    rn_cuda_optim_launch l = base(RN_UPDATE_SGD);
    l.u.c.sgd = rn_sgd_coef{0.1f, 0.0f, 0.0f, 1.0f, 1, 0};
    add("sgd", l, false, false, false, false, false, false);
    l.u.c.sgd = rn_sgd_coef{0.05f, 1e-2f, 0.9f, 0.75f, 1, 0};
    add("sgd momentum dampening weight_decay", l, true, false, false, false, false, false);
    l.u.c.sgd = rn_sgd_coef{0.05f, 5e-4f, 0.9f, 1.0f, 1, 1};
    add("sgd nesterov", l, true, false, false, false, false, false);
    // Adam / AdamW
    l = base(RN_UPDATE_ADAM);
    l.u.c.adam = rn_adam_coef{1e-2f, 1.0f, 0.9f, 0.1f, 0.999f, 0.001f, 1.0f, 1e-8f, -1e-3f};
    add("adam (L2 weight_decay)", l, true, true, false, false, true, false);
    l.u.c.adam.wd = 0.0f;
    l.u.c.adam.decay = static_cast<float>(1.0 - 1e-3 * 0.05);
    add("adamw", l, true, true, false, false, true, false);
    add("adamw amsgrad", l, true, true, true, false, true, true);
    // RMSprop
    l = base(RN_UPDATE_RMSPROP);
    l.u.c.rmsprop = rn_rmsprop_coef{0.0f, 0.99f, 0.01f, 1e-8f, 0.0f, -1e-2f};
    add("rmsprop", l, true, false, false, true, false, false);
    l.u.c.rmsprop.momentum = 0.9f;
    add("rmsprop momentum", l, true, true, false, true, false, false);
    l.u.c.rmsprop.momentum = 0.0f;
    add("rmsprop centered", l, true, false, true, true, false, false);
    l.u.c.rmsprop.momentum = 0.5f;
    l.u.c.rmsprop.wd = 1e-2f;
    add("rmsprop centered momentum weight_decay", l, true, true, true, true, false, false);
    // Lion
    l = base(RN_UPDATE_LION);
    l.u.c.lion = rn_lion_coef{static_cast<float>(1.0 - 1e-4 * 0.1), 0.9f, 0.1f, 0.99f, 0.01f, -1e-4f};
    add("lion weight_decay", l, true, false, false, false, false, false);
    // LAMB
    l = base(RN_UPDATE_LAMB);
    l.u.c.lamb = rn_lamb_coef{0.9f, 0.1f, 0.999f, 0.001f, 0.5f, 0.5f, 1e-6f, 1e-2f, 1, -1e-3f};
    l.u.lamb_adapt = 1;
    add("lamb weight_decay (trust ratio)", l, true, true, false, false, true, false);
    l.u.c.lamb.has_wd = 0;
    l.u.lamb_adapt = 0;
    add("lamb no weight_decay (no trust ratio)", l, true, true, false, false, true, false);
    l.u.lamb_adapt = 1;
    add("lamb always_adapt", l, true, true, false, false, true, false);
    l.u.c.lamb.has_wd = 1;
    l.u.c.lamb.bc1 = 1.0f;
    l.u.c.lamb.bc2_sqrt = 1.0f;
    add("lamb no bias_correction", l, true, true, false, false, true, false);

    for (const Case &cs : cases) run_case(cs);

    // an unknown kind is refused; an empty plan launches nothing
    rn_cuda_optim_launch bad = base(static_cast<rn_update_kind>(7));  // in the enum's range
    bad.n_chunks = 1;
    char err[128] = "";
    CHECK(rn_cuda_optim_step(&bad, err, sizeof err) == -1);
    CHECK(std::strstr(err, "unknown optimizer kind 7") != nullptr);
    bad.n_chunks = 0;
    CHECK(rn_cuda_optim_step(&bad, err, sizeof err) == 0);
    return rn_test_report("test_kernels_emu_optim");
}
