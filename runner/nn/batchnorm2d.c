/* Batch normalisation over (N, C, H, W), per channel (PyTorch nn.BatchNorm2d, affine, tracking
 * running stats). Sums run in double per channel over PARTS contiguous parts of the batch apart,
 * each part over LANES interleaved partial sums (element j of a plane goes to sum j mod LANES),
 * and the parts' totals are added in a fixed tree at the end: the order is in the source, so
 * every build, every vector width (vector_clones.h) and every thread count gives the same bits;
 * the partial sums vectorize where one running sum would wait on each add's latency, and the
 * OpenMP iterations (a part of the batch for one channel, or one 16-channel block) each read
 * their own memory. */
#include "nn_internal.h"
#include "vector_clones.h"
#include "net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lanes.h"
#include "../../kernels/amp_elem.h"

/* The batch's samples in PARTS contiguous parts, part p holding [n p / PARTS, n (p + 1) / PARTS),
 * summed apart and added up in lanes_total's tree. */
#define PARTS 8
_Static_assert(PARTS == LANES, "lanes_total adds the parts");

static inline int64_t part_start(int64_t n, int p) { return n * p / PARTS; }

typedef struct bn_impl {
    int64_t c;
    double eps, momentum;
    rn_tensor w, dw;           /* (c): gamma */
    rn_tensor b, db;           /* (c): beta */
    rn_tensor rmean, rvar;     /* (c): running stats, buffers */
    double *mean, *invstd;     /* (c): what the last forward normalised with */
    float *cf;                 /* (5 c): per-channel floats for the blocked layout's passes */
    double *part;              /* (2 c PARTS): each part's sums, channel ch's at ch PARTS */
    bool last_train;           /* whether the last forward used batch stats */
} bn_impl;

static int bn_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    bn_impl *b = l->impl;
    if (in->ndim != 4 || in->d[1] != b->c) {
        char label[96], got[64];
        rn_nn_layer_label(l, label, sizeof label);
        rn_nn_sample_str(in, got, sizeof got);
        return rn_nn_err(err, errlen, "%s: expected input %lldxHxW, got %s", label,
                         (long long)b->c, got);
    }
    *out = *in;
    return 0;
}

/* The floats forward's output pass applies to channel ch, y = (x - mean_f) scale_f + beta, from
 * what the forward recorded (bn_channel_forward): a recompute and the masks of a folded ReLU's
 * backward round exactly as that forward did. */
static inline void bn_forward_floats(const bn_impl *b, int64_t ch, float *mean_f, float *scale_f)
{
    *scale_f = (float)(b->w.data[ch] * b->invstd[ch]);
    *mean_f = (float)b->mean[ch];
}

/* dy where the folded ReLU's output was positive, recomputed from x as forward computed it
 * (relu.c's backward: dy where y > 0, 0 at 0 and for NaN). */
static inline float bn_relu_masked(float dy, float x, float mean_f, float scale_f, float beta)
{
    return (x - mean_f) * scale_f + beta > 0.0f ? dy : 0.0f;
}

/* ---- the blocked layout (layer.h): nChw16c, c a multiple of 16 ---------------------------- *
 * The same sums in the same order per channel as the plain code (per part of the batch, element
 * j of a plane to partial sum j mod LANES, the part's samples in order, the partials added in
 * lanes_total's tree), so both layouts give the same bits; only the loops run across GROUP
 * channels at a time, which are adjacent in memory here. The sums' OpenMP iterations are a part
 * of the batch for one GROUP (part_sums, part_dots): each thread reads its own samples, both
 * halves of each 64-byte line in turn, where iterations over channel groups alone had both
 * threads read every line (ResNet-8's step 3-7% faster). */
#define BLOCK 16
#define GROUP 8

/* Lane by lane over a plane of GROUP channels (p: stride BLOCK floats per position): the lane
 * index is a constant in the unrolled body, so the partial sums stay in registers. Element j
 * goes to lane j mod LANES, as lanes_add's. */
#define FOR_LANES(hw, BODY)                                                                   \
    do {                                                                                      \
        int64_t j_ = 0;                                                                       \
        for (; j_ + LANES <= (hw); j_ += LANES) {                                             \
            _Pragma("GCC unroll 8") for (int l_ = 0; l_ < LANES; l_++) {                      \
                const int64_t j = j_ + l_, lane = l_;                                         \
                BODY                                                                          \
            }                                                                                 \
        }                                                                                     \
        for (int l_ = 0; j_ < (hw); j_++, l_++) {                                             \
            const int64_t j = j_, lane = l_;                                                  \
            BODY                                                                              \
        }                                                                                     \
    } while (0)

/* GROUP floats, doubles and 32-bit masks as GCC vectors: the loops below spell their lanes out,
 * since GCC's vectorizer leaves a compare and select across the GROUP channels scalar. Each lane
 * does what the plain code's scalar does, in the same order, so the bits match it. */
typedef float group_f __attribute__((vector_size(GROUP * sizeof(float))));
typedef int32_t group_i __attribute__((vector_size(GROUP * sizeof(int32_t))));
typedef double group_d __attribute__((vector_size(GROUP * sizeof(double))));
typedef float block_f __attribute__((vector_size(BLOCK * sizeof(float))));
typedef int32_t block_i __attribute__((vector_size(BLOCK * sizeof(int32_t))));

typedef uint32_t group_u __attribute__((vector_size(GROUP * sizeof(uint32_t))));
typedef uint16_t group_h __attribute__((vector_size(GROUP * sizeof(uint16_t))));

/* Over samples [lo, hi) of x blocked, for the GROUP channels from ch0: out[k PARTS] = the sum
 * of x, or with mean (not NULL) of (x - mean)^2, as lanes_add / lanes_add_sq sum a plane.
 * Inlined into its callers' vector clones. */
static inline __attribute__((always_inline)) void
blocked_sum(const float *xs, int64_t lo, int64_t hi, int64_t c, int64_t hw, int64_t ch0,
            const double *mean, double *out)
{
    const int64_t cb = c / BLOCK;
    group_d acc[LANES] = {0}, mn = {0};
    if (mean) memcpy(&mn, mean, sizeof mn);
    for (int64_t i = lo; i < hi; i++) {
        const float *p = xs + (i * cb + ch0 / BLOCK) * hw * BLOCK + ch0 % BLOCK;
        if (mean)
            FOR_LANES(hw, {
                group_f v;
                memcpy(&v, p + j * BLOCK, sizeof v);
                const group_d d = __builtin_convertvector(v, group_d) - mn;
                acc[lane] += d * d;
            });
        else
            FOR_LANES(hw, {
                group_f v;
                memcpy(&v, p + j * BLOCK, sizeof v);
                acc[lane] += __builtin_convertvector(v, group_d);
            });
    }
    for (int k = 0; k < GROUP; k++) {
        double t[LANES];
        for (int q = 0; q < LANES; q++) t[q] = acc[q][k];
        out[k * PARTS] = lanes_total(t);
    }
}

/* bn_backward's dx at GROUP floats: dy k + (x - m) u + v, with masked (a folded ReLU) dy first
 * masked where forward's output (x - m) s + b was not positive (bn_relu_masked); c holds m, s,
 * b, k, u, v. (Vectors by pointer: by value they would change the baseline build's ABI.) */
static inline void bn_dx_group(group_f *out, const float *x, const float *dy, const group_f c[6],
                               bool masked)
{
    group_f xv, gv;
    memcpy(&xv, x, sizeof xv);
    memcpy(&gv, dy, sizeof gv);
    if (masked) gv = (group_f)((group_i)gv & ((xv - c[0]) * c[1] + c[2] > 0.0f));
    *out = gv * c[3] + (xv - c[0]) * c[4] + c[5];
}


/* GROUP floats to bf16 at dst, lane by lane as rn_bf16_from_f32 (kernels/amp_elem.h): a NaN
 * made quiet, everything else rounded to nearest even. */
static inline void store_bf16(uint16_t *dst, const group_f *v)
{
    group_u u;
    memcpy(&u, v, sizeof u);
    const group_u nan = (group_u)((u & 0x7fffffffu) > 0x7f800000u);
    const group_u r = ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16 & ~nan) | ((u >> 16 | 0x40u) & nan);
    const group_h h = __builtin_convertvector(r, group_h);
    memcpy(dst, &h, sizeof h);
}

/* Over samples [lo, hi), for the GROUP channels from ch0: sg[k PARTS] = sum dy and
 * sgx[k PARTS] = sum dy (x - mean), as lanes_add_dot sums a plane; with `masked`, dy is first
 * masked by the folded ReLU (bn_relu_masked, fm/fs/fb: forward's floats). Inlined with `masked`
 * a constant, so each variant has its own loop. */
static inline __attribute__((always_inline)) void
blocked_dot(const float *g, const float *xs, int64_t lo, int64_t hi, int64_t c, int64_t hw,
            int64_t ch0, const double *mean, bool masked, const float *fm, const float *fs,
            const float *fb, double *sg, double *sgx)
{
    const int64_t cb = c / BLOCK;
    group_d lg[LANES] = {0}, lgx[LANES] = {0}, mn;
    group_f m_ = {0}, s_ = {0}, b_ = {0};
    memcpy(&mn, mean, sizeof mn);
    if (masked) {
        memcpy(&m_, fm, sizeof m_);
        memcpy(&s_, fs, sizeof s_);
        memcpy(&b_, fb, sizeof b_);
    }
    for (int64_t i = lo; i < hi; i++) {
        const int64_t at = (i * cb + ch0 / BLOCK) * hw * BLOCK + ch0 % BLOCK;
        const float *p = xs + at, *q = g + at;
        FOR_LANES(hw, {
            group_f xv;
            group_f gv;
            memcpy(&xv, p + j * BLOCK, sizeof xv);
            memcpy(&gv, q + j * BLOCK, sizeof gv);
            if (masked) /* bn_relu_masked, lane by lane */
                gv = (group_f)((group_i)gv & ((xv - m_) * s_ + b_ > 0.0f));
            const group_d gd = __builtin_convertvector(gv, group_d);
            lg[lane] += gd;
            lgx[lane] += gd * (__builtin_convertvector(xv, group_d) - mn);
        });
    }
    for (int k = 0; k < GROUP; k++) {
        double t[LANES], u[LANES];
        for (int q = 0; q < LANES; q++) {
            t[q] = lg[q][k];
            u[q] = lgx[q][k];
        }
        sg[k * PARTS] = lanes_total(t);
        sgx[k * PARTS] = lanes_total(u);
    }
}

/* out = (a - b[ch]) s[ch] + t[ch] over a blocked tensor: batch norm's forward and recompute
 * (a = x, b = mean, s = gamma invstd, t = beta; relu: then max(., 0), a folded ReLU as relu.c
 * computes it). Its backward is blocked_dx's. */
RN_VECTOR_CLONES
static void blocked_apply(float *out, const float *a, int64_t n, int64_t c, int64_t hw,
                          const float *b, const float *s, const float *t, bool relu)
{
    const int64_t cb = c / BLOCK;
#pragma omp parallel for schedule(static) if (n * c * hw > 16384)
    for (int64_t nb = 0; nb < n * cb; nb++) {
        const int64_t c0 = (nb % cb) * BLOCK, at = nb * hw * BLOCK;
        const float *pa = a + at;
        float *po = out + at;
        float bb[BLOCK], ss[BLOCK], tt[BLOCK];
        for (int q = 0; q < BLOCK; q++) {
            bb[q] = b[c0 + q];
            ss[q] = s[c0 + q];
            tt[q] = t[c0 + q];
        }
        if (relu) {
            for (int64_t j = 0; j < hw * BLOCK; j += BLOCK)
                for (int q = 0; q < BLOCK; q++) {
                    float v = (pa[j + q] - bb[q]) * ss[q] + tt[q];
                    po[j + q] = v > 0.0f ? v : 0.0f;
                }
        } else {
            for (int64_t j = 0; j < hw * BLOCK; j += BLOCK)
                for (int q = 0; q < BLOCK; q++) po[j + q] = (pa[j + q] - bb[q]) * ss[q] + tt[q];
        }
    }
}

/* bn_backward's output pass over a blocked tensor in GCC vectors (GCC leaves a compare and
 * select scalar, see group_f): dx = dy k[ch] + (x - m[ch]) u[ch] + v[ch], dy masked first by a
 * folded ReLU when fs is not NULL (bn_relu_masked with m, fs and fb: forward's floats; m is the
 * float mean in both passes), into a float dx or, with out16, a bf16 one (rn_layer.dx_bf16). */
RN_VECTOR_CLONES
static void blocked_dx(void *dx, bool out16, const float *x, const float *dy, int64_t n,
                       int64_t c, int64_t hw, const float *m, const float *u, const float *v,
                       const float *k, const float *fs, const float *fb)
{
    const int64_t cb = c / BLOCK;
    const bool masked = fs != NULL;
#pragma omp parallel for schedule(static) if (n * c * hw > 16384)
    for (int64_t nb = 0; nb < n * cb; nb++) {
        const int64_t c0 = (nb % cb) * BLOCK, at = nb * hw * BLOCK;
        const float *px = x + at, *pg = dy + at;
        group_f cs[2][6] = {{{0}}}; /* bn_dx_group's per-channel floats, the block's two halves */
        for (int h = 0; h < 2; h++) {
            const float *from[6] = {m, fs, fb, k, u, v};
            for (int q = 0; q < 6; q++)
                if (from[q]) memcpy(&cs[h][q], from[q] + c0 + h * GROUP, sizeof cs[h][q]);
        }
        /* each case its own loop, masked and out16 constants in it */
#define DX_LOOP(MASKED, STORE)                                                                \
    for (int64_t j = 0; j < hw * BLOCK; j += GROUP) {                                         \
        group_f out;                                                                          \
        bn_dx_group(&out, px + j, pg + j, cs[(j / GROUP) & 1], MASKED);                       \
        STORE;                                                                                \
    }
        if (!out16 && masked) DX_LOOP(true, memcpy((float *)dx + at + j, &out, sizeof out))
        else if (!out16) DX_LOOP(false, memcpy((float *)dx + at + j, &out, sizeof out))
        else if (masked) DX_LOOP(true, store_bf16((uint16_t *)dx + at + j, &out))
        else DX_LOOP(false, store_bf16((uint16_t *)dx + at + j, &out))
#undef DX_LOOP
    }
}

/* Channel ch's statistics for a forward, from its batch mean and biased variance (train: the
 * running stats move, the variance unbiased, m / (m - 1) times it) or from the running stats
 * (eval): records what backward needs and returns the float mean and scale the output pass
 * applies, y = (x - mean) scale + beta. Shared by both layouts. */
static inline void bn_channel_forward(bn_impl *b, int64_t ch, bool train, double mean, double var,
                                      int64_t m, float *mean_f, float *scale_f)
{
    float *rm = b->rmean.data, *rv = b->rvar.data;
    const double mom = b->momentum;
    if (train) {
        rm[ch] = (float)((1.0 - mom) * rm[ch] + mom * mean);
        rv[ch] = (float)((1.0 - mom) * rv[ch] + mom * var * (double)m / (double)(m - 1));
    } else {
        mean = rm[ch];
        var = rv[ch];
    }
    double is = 1.0 / sqrt(var + b->eps);
    b->mean[ch] = mean;
    b->invstd[ch] = is;
    bn_forward_floats(b, ch, mean_f, scale_f);
}

/* Channel ch's backward from its sums sg = sum dy and sgx = sum dy (x - mean): writes the
 * gradients of gamma and beta that are not frozen, and the floats of dx = dy k + (x - mean) u + v
 * (u, v from the batch sums in train mode, 0 in eval mode). Shared by both layouts. */
static inline void bn_channel_backward(bn_impl *b, const rn_layer *l, int64_t ch, double sg,
                                       double sgx, int64_t m, float *mean_f, float *k_f,
                                       float *u_f, float *v_f)
{
    const double mean = b->mean[ch], is = b->invstd[ch];
    if (!l->params[1].frozen) b->db.data[ch] = (float)sg;
    if (!l->params[0].frozen) b->dw.data[ch] = (float)(sgx * is);
    const double k = b->w.data[ch] * is;
    double u = 0.0, v = 0.0;
    if (b->last_train) {
        double mg = sg / (double)m, mgx = sgx * is / (double)m; /* mean(dy), mean(dy xh) */
        u = -k * mgx * is;
        v = -k * mg;
    }
    *k_f = (float)k;
    *u_f = (float)u;
    *v_f = (float)v;
    *mean_f = (float)mean;
}

/* y = (x - mean_f) scale_f + beta over channel ch of a plain tensor, then max(., 0) with a
 * folded ReLU (layer.h's folds_relu), as relu.c computes it. */
static inline void plain_apply(const float *xs, float *ys, int64_t n, int64_t c, int64_t hw,
                               int64_t ch, float mf, float a, float o, bool relu)
{
    for (int64_t i = 0; i < n; i++) {
        const float *p = xs + (i * c + ch) * hw;
        float *q = ys + (i * c + ch) * hw;
        if (relu)
            for (int64_t j = 0; j < hw; j++) {
                float v = (p[j] - mf) * a + o;
                q[j] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int64_t j = 0; j < hw; j++) q[j] = (p[j] - mf) * a + o;
    }
}

/* b->part[ch PARTS + p] = part p's sum of x, or with mean (not NULL) of (x - mean[ch])^2, for
 * every channel: OpenMP iterations over parts, then 8-channel groups (blocked) or channels. */
RN_VECTOR_CLONES
static void part_sums(bn_impl *b, bool blocked, const float *xs, int64_t n, int64_t hw,
                      const double *mean)
{
    const int64_t c = b->c, per = blocked ? c / GROUP : c;
    double *part = b->part;
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > 16384)
    for (int p = 0; p < PARTS; p++)
        for (int64_t k = 0; k < per; k++) {
            const int64_t lo = part_start(n, p), hi = part_start(n, p + 1);
            if (blocked) {
                blocked_sum(xs, lo, hi, c, hw, k * GROUP, mean ? mean + k * GROUP : NULL,
                            part + k * GROUP * PARTS + p);
                continue;
            }
            double acc[LANES] = {0};
            for (int64_t i = lo; i < hi; i++) {
                if (mean) lanes_add_sq(acc, xs + (i * c + k) * hw, hw, mean[k]);
                else lanes_add(acc, xs + (i * c + k) * hw, hw);
            }
            part[k * PARTS + p] = lanes_total(acc);
        }
}

/* Channel ch's sum over the parts in b->part (part_sums), over the m values summed. */
static inline double part_mean(const bn_impl *b, int64_t ch, int64_t m)
{
    return lanes_total(b->part + ch * PARTS) / (double)m;
}

/* x, y (n, c, h, w). Train: batch mean and biased variance normalise; the running variance gets
 * the unbiased one, m / (m - 1) times it, m = n h w. */
RN_VECTOR_CLONES
static int bn_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    bn_impl *b = l->impl;
    const int64_t n = x->shape.d[0], c = b->c, hw = x->shape.d[2] * x->shape.d[3];
    const int64_t m = n * hw;
    /* Frozen weight and bias (without train_bn): a fixed affine map, as fastai freezes a body;
     * the running stats and the batch count stay as they are. */
    if (l->params[0].frozen && l->params[1].frozen) train = false;
    if (train && m < 2)
        return rn_nn_err(l->err, sizeof l->err,
                         "expected more than 1 value per channel in train mode, got input "
                         "%lldx%lldx%lldx%lld",
                         (long long)n, (long long)c, (long long)x->shape.d[2],
                         (long long)x->shape.d[3]);
    const float *xs = x->data, *beta = b->b.data;
    float *ys = y->data;
    const bool relu = l->relu_out;
    /* train: the batch mean into b->mean (bn_channel_forward sets it to the same), then the
     * biased variance around it, left in b->part (two passes: no cancellation when the mean is
     * large against the spread), each summed per part (part_sums); eval ignores both */
    if (train) {
        part_sums(b, l->in_blocked, xs, n, hw, NULL);
        for (int64_t ch = 0; ch < c; ch++) b->mean[ch] = part_mean(b, ch, m);
        part_sums(b, l->in_blocked, xs, n, hw, b->mean);
    }
    if (l->in_blocked) {
        float *mf = b->cf, *af = b->cf + c;
        for (int64_t ch = 0; ch < c; ch++)
            bn_channel_forward(b, ch, train, b->mean[ch], train ? part_mean(b, ch, m) : 0.0, m,
                               &mf[ch], &af[ch]);
        blocked_apply(ys, xs, n, c, hw, mf, af, beta, relu);
        if (train) l->calls++;
        b->last_train = train;
        return 0;
    }
#pragma omp parallel for schedule(static) if (m * c > 16384)
    for (int64_t ch = 0; ch < c; ch++) {
        /* y = (x - mean) a + beta; centring first keeps a large mean from cancelling */
        float mf, a;
        bn_channel_forward(b, ch, train, b->mean[ch], train ? part_mean(b, ch, m) : 0.0, m, &mf,
                           &a);
        plain_apply(xs, ys, n, c, hw, ch, mf, a, beta[ch], relu);
    }
    if (train) l->calls++; /* num_batches_tracked: the layer's train-mode (batch stats) calls */
    b->last_train = train;
    return 0;
}

/* The last forward's output again, from x and the statistics it recorded (layer.h's recompute):
 * its output pass alone, with the same floats, so the same bits; the running stats and the
 * batch count do not move. */
RN_VECTOR_CLONES
static int bn_recompute(rn_layer *l, const rn_tensor *x, rn_tensor *y)
{
    bn_impl *b = l->impl;
    const int64_t n = x->shape.d[0], c = b->c, hw = x->shape.d[2] * x->shape.d[3];
    const float *xs = x->data, *beta = b->b.data;
    if (l->in_blocked) {
        float *mf = b->cf, *af = b->cf + c;
        for (int64_t ch = 0; ch < c; ch++) bn_forward_floats(b, ch, &mf[ch], &af[ch]);
        blocked_apply(y->data, xs, n, c, hw, mf, af, beta, l->relu_out);
        return 0;
    }
#pragma omp parallel for schedule(static) if (n * hw * c > 16384)
    for (int64_t ch = 0; ch < c; ch++) {
        float mf, a;
        bn_forward_floats(b, ch, &mf, &a);
        plain_apply(xs, y->data, n, c, hw, ch, mf, a, beta[ch], l->relu_out);
    }
    return 0;
}

/* lanes_add_dot (lanes.h) of dy masked by the folded ReLU (bn_relu_masked): the same sums, in
 * the same order, as over the masked gradient that relu.c's backward would have written. In
 * GCC vectors (see group_f), lane k being element j + k. */
static inline void lanes_add_dot_masked(double g[LANES], double gx[LANES], const float *q,
                                        const float *p, int64_t hw, double mean, float mf,
                                        float a, float o)
{
    _Static_assert(LANES == GROUP, "a group vector holds the lanes");
    group_d vg, vgx;
    memcpy(&vg, g, sizeof vg);
    memcpy(&vgx, gx, sizeof vgx);
    int64_t j = 0;
    for (; j + LANES <= hw; j += LANES) {
        group_f xv, gv;
        memcpy(&xv, p + j, sizeof xv);
        memcpy(&gv, q + j, sizeof gv);
        gv = (group_f)((group_i)gv & ((xv - mf) * a + o > 0.0f));
        const group_d gd = __builtin_convertvector(gv, group_d);
        vg += gd;
        vgx += gd * (__builtin_convertvector(xv, group_d) - mean);
    }
    memcpy(g, &vg, sizeof vg);
    memcpy(gx, &vgx, sizeof vgx);
    for (int k = 0; j < hw; j++, k++) {
        const float v = bn_relu_masked(q[j], p[j], mf, a, o);
        g[k] += v;
        gx[k] += v * ((double)p[j] - mean);
    }
}

/* dx = dy k + (x - mean_f) u + v over one plane (bn_backward's plain output pass), dy masked
 * first by a folded ReLU with `masked`, into float dx or, with out16, bf16 (blocked_dx's lanes,
 * by GROUP, then the tail). */
static inline void plain_dx(void *r, bool out16, bool masked, const float *q, const float *p,
                            int64_t hw, float mf, float fa, float fb, float kf, float uf, float vf)
{
    const group_f zero = {0};
    const group_f cs[6] = {zero + mf, zero + fa, zero + fb, zero + kf, zero + uf, zero + vf};
    int64_t j = 0;
    for (; j + GROUP <= hw; j += GROUP) {
        group_f out;
        bn_dx_group(&out, p + j, q + j, cs, masked);
        if (out16) store_bf16((uint16_t *)r + j, &out);
        else memcpy((float *)r + j, &out, sizeof out);
    }
    for (; j < hw; j++) {
        const float d = masked ? bn_relu_masked(q[j], p[j], mf, fa, fb) : q[j];
        const float v = d * kf + (p[j] - mf) * uf + vf;
        if (out16) ((uint16_t *)r)[j] = rn_bf16_from_f32(v);
        else ((float *)r)[j] = v;
    }
}

/* b->part[ch PARTS + p] = part p's sum of dy and b->part[(c + ch) PARTS + p] of dy (x - mean), for
 * every channel, dy masked first by a folded ReLU with relu (fm, fs, fb: forward's floats):
 * OpenMP iterations over parts, then 8-channel groups (blocked) or channels. */
RN_VECTOR_CLONES
static void part_dots(bn_impl *b, bool blocked, const float *g, const float *xs, int64_t n,
                      int64_t hw, bool relu, const float *fm, const float *fs, const float *fb)
{
    const int64_t c = b->c, per = blocked ? c / GROUP : c;
    double *sg = b->part, *sgx = b->part + c * PARTS;
    const double *mean = b->mean;
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > 16384)
    for (int p = 0; p < PARTS; p++)
        for (int64_t k = 0; k < per; k++) {
            const int64_t lo = part_start(n, p), hi = part_start(n, p + 1);
            if (blocked) {
                const int64_t ch0 = k * GROUP, at = ch0 * PARTS + p;
                if (relu)
                    blocked_dot(g, xs, lo, hi, c, hw, ch0, mean + ch0, true, fm + ch0, fs + ch0,
                                fb + ch0, sg + at, sgx + at);
                else
                    blocked_dot(g, xs, lo, hi, c, hw, ch0, mean + ch0, false, NULL, NULL, NULL,
                                sg + at, sgx + at);
                continue;
            }
            double lg[LANES] = {0}, lgx[LANES] = {0};
            for (int64_t i = lo; i < hi; i++) {
                const float *q = g + (i * c + k) * hw, *x = xs + (i * c + k) * hw;
                if (relu) lanes_add_dot_masked(lg, lgx, q, x, hw, mean[k], fm[k], fs[k], fb[k]);
                else lanes_add_dot(lg, lgx, q, x, hw, mean[k]);
            }
            sg[k * PARTS + p] = lanes_total(lg);
            sgx[k * PARTS + p] = lanes_total(lgx);
        }
}

/* With xh = (x - mean) invstd: dbeta = sum dy, dgamma = sum dy xh; in train mode the batch stats
 * depend on x: dx = gamma invstd (dy - mean(dy) - xh mean(dy xh)); in eval mode they are
 * constants: dx = gamma invstd dy. A frozen gamma or beta keeps its gradient unwritten. With a
 * folded ReLU (relu_out), dy is first masked where the ReLU's output, recomputed from x, was not
 * positive (masks_own_relu): y is never read. */
RN_VECTOR_CLONES
static int bn_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                       rn_tensor *dx)
{
    (void)y;
    bn_impl *b = l->impl;
    const int64_t n = x->shape.d[0], c = b->c, hw = x->shape.d[2] * x->shape.d[3];
    const int64_t m = n * hw;
    const float *xs = x->data, *g = dy->data, *beta = b->b.data;
    float *gx = dx ? dx->data : NULL;
    const bool train = b->last_train, relu = l->relu_out;
    const bool w_frozen = l->params[0].frozen, b_frozen = l->params[1].frozen;
    if (!gx && w_frozen && b_frozen) return 0;
    /* the batch sums feed the param grads and the train-mode dx only */
    const bool sums = train || !w_frozen || !b_frozen;
    float *mf = b->cf, *kf = b->cf + c, *uf = b->cf + 2 * c, *vf = b->cf + 3 * c;
    float *af = b->cf + 4 * c; /* forward's scale, for the ReLU's mask */
    for (int64_t ch = 0; ch < c; ch++) bn_forward_floats(b, ch, &mf[ch], &af[ch]);
    const double *sg = b->part, *sgx = b->part + c * PARTS;
    if (sums) part_dots(b, l->in_blocked, g, xs, n, hw, relu, mf, af, beta);
    for (int64_t ch = 0; ch < c; ch++)
        bn_channel_backward(b, l, ch, sums ? lanes_total(sg + ch * PARTS) : 0.0,
                            sums ? lanes_total(sgx + ch * PARTS) : 0.0, m, &mf[ch], &kf[ch],
                            &uf[ch], &vf[ch]);
    if (!gx) return 0;
    if (l->in_blocked) {
        blocked_dx(gx, l->dx_bf16, xs, g, n, c, hw, mf, uf, vf, kf, relu ? af : NULL,
                   relu ? beta : NULL);
        return 0;
    }
    const size_t dx_size = l->dx_bf16 ? sizeof(uint16_t) : sizeof(float);
#pragma omp parallel for schedule(static) if (m * c > 16384)
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < n; i++) {
            const int64_t at = (i * c + ch) * hw;
            plain_dx((char *)gx + at * dx_size, l->dx_bf16, relu, g + at, xs + at, hw, mf[ch],
                     af[ch], beta[ch], kf[ch], uf[ch], vf[ch]);
        }
    return 0;
}

static void bn_destroy(rn_layer *l)
{
    bn_impl *b = l->impl;
    rn_tensor_free(&b->w);
    rn_tensor_free(&b->dw);
    rn_tensor_free(&b->b);
    rn_tensor_free(&b->db);
    rn_tensor_free(&b->rmean);
    rn_tensor_free(&b->rvar);
    free(b->mean);
    free(b->invstd);
    free(b->cf);
    free(b->part);
}

static void bn_ops_describe(const rn_layer *l, rn_node *node)
{
    const bn_impl *b = l->impl;
    node->kind = RN_NODE_BATCHNORM2D;
    node->out_ch = b->c;
    node->eps = b->eps;
    node->momentum = b->momentum;
}

static const rn_layer_ops bn_ops = {
    .type = "batch_norm2d",
    .setup = bn_setup,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
    .describe = bn_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME, /* per channel, either layout */
    .folds_relu = true,       /* backward reads x, never y */
    .backward_skips_y = true,
    .masks_own_relu = true,
    .recompute = bn_recompute,
    .writes_dx_bf16 = true,
};

rn_layer *rn_batchnorm2d_create(const char *name, int64_t channels, double eps, double momentum,
                                char *err, size_t errlen)
{
    const char *nm = name ? name : "";
    if (channels < 1 || !(eps > 0.0) || !(momentum >= 0.0 && momentum <= 1.0)) {
        rn_nn_err(err, errlen,
                  "batch_norm2d %s: expected channels >= 1, eps > 0 and momentum in [0, 1], got "
                  "%lld, %g, %g",
                  nm, (long long)channels, eps, momentum);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&bn_ops, name, sizeof(bn_impl), 4);
    if (!l) {
        rn_nn_err(err, errlen, "batch_norm2d %s: out of memory", nm);
        return NULL;
    }
    bn_impl *b = l->impl;
    b->c = channels;
    b->eps = eps;
    b->momentum = momentum;
    rn_shape cs = rn_shape_make(1, (int64_t[]){channels});
    b->mean = calloc((size_t)channels, sizeof *b->mean);
    b->invstd = calloc((size_t)channels, sizeof *b->invstd);
    b->cf = calloc(5 * (size_t)channels, sizeof *b->cf);
    b->part = calloc(2 * PARTS * (size_t)channels, sizeof *b->part);
    int bad = !b->mean || !b->invstd || !b->cf || !b->part || rn_tensor_alloc(&b->w, cs) ||
              rn_tensor_alloc(&b->dw, cs) || rn_tensor_alloc(&b->b, cs) ||
              rn_tensor_alloc(&b->db, cs) || rn_tensor_alloc(&b->rmean, cs) ||
              rn_tensor_alloc(&b->rvar, cs) ||
              rn_nn_layer_set_param(l, 0, "weight", &b->w, &b->dw) ||
              rn_nn_layer_set_param(l, 1, "bias", &b->b, &b->db) ||
              rn_nn_layer_set_param(l, 2, "running_mean", &b->rmean, NULL) ||
              rn_nn_layer_set_param(l, 3, "running_var", &b->rvar, NULL);
    if (bad) {
        rn_layer_destroy(l);
        rn_nn_err(err, errlen, "batch_norm2d %s: out of memory for the parameters", nm);
        return NULL;
    }
    /* PyTorch's reset_parameters: gamma 1, beta 0, running mean 0, running var 1 */
    for (int64_t i = 0; i < channels; i++) {
        b->w.data[i] = 1.0f;
        b->rvar.data[i] = 1.0f;
    }
    return l;
}

bool rn_nn_is_batchnorm(const rn_layer *l) { return l && l->ops == &bn_ops; }

bool rn_nn_folds_bn(const rn_layer *l, const rn_layer *next)
{
    return l && l->ops->forward_bn && !l->relu_out && rn_nn_is_batchnorm(next);
}

void rn_batchnorm2d_eval_affine(rn_layer *l, double *s, double *t)
{
    bn_impl *b = l->impl;
    for (int64_t ch = 0; ch < b->c; ch++) {
        float mf, af;
        bn_channel_forward(b, ch, false, 0.0, 0.0, 0, &mf, &af);
        s[ch] = b->w.data[ch] * b->invstd[ch];
        t[ch] = b->b.data[ch] - b->mean[ch] * s[ch];
    }
    b->last_train = false;
}

int64_t rn_batchnorm2d_num_batches_tracked(const rn_layer *l)
{
    if (!l || l->ops != &bn_ops) return -1;
    return (int64_t)l->calls;
}

int rn_batchnorm2d_set_num_batches_tracked(rn_layer *l, int64_t n)
{
    if (!l || l->ops != &bn_ops || n < 0) return -1;
    l->calls = (uint64_t)n;
    return 0;
}
