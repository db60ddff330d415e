/* Max pooling, square window, floor mode (PyTorch nn.MaxPool2d(k, s, padding)); the padding is
 * -inf, so a window never picks it. */
#include "nn_internal.h"
#include "vector_clones.h"
#include "net.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/amp_elem.h"

typedef struct pool_impl {
    int64_t k, stride, pad;
    int64_t c, h, w, oh, ow; /* set by setup */
    int32_t *argmax;         /* (max_batch, c, oh, ow): input index within its (h, w) plane */
    int64_t cap;             /* argmax entries allocated */
} pool_impl;

static int pool_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    pool_impl *p = l->impl;
    char got[64];
    rn_nn_sample_str(in, got, sizeof got);
    if (in->ndim != 4)
        return rn_nn_err(err, errlen, "max_pool2d: expected input CxHxW, got %s", got);
    if (in->d[2] + 2 * p->pad < p->k || in->d[3] + 2 * p->pad < p->k)
        return rn_nn_err(err, errlen, "max_pool2d: input %s is smaller than the %lldx%lld window",
                         got, (long long)p->k, (long long)p->k);
    if (in->d[2] * in->d[3] > INT32_MAX)
        return rn_nn_err(err, errlen, "max_pool2d: input plane %s is too large", got);
    p->c = in->d[1];
    p->h = in->d[2];
    p->w = in->d[3];
    p->oh = (p->h + 2 * p->pad - p->k) / p->stride + 1;
    p->ow = (p->w + 2 * p->pad - p->k) / p->stride + 1;
    int64_t need = in->d[0] * p->c * p->oh * p->ow;
    if (need > p->cap) {
        free(p->argmax);
        p->argmax = malloc((size_t)need * sizeof *p->argmax);
        p->cap = p->argmax ? need : 0;
        if (!p->argmax) return rn_nn_err(err, errlen, "max_pool2d: out of memory for %lld indices",
                                         (long long)need);
    }
    *out = rn_shape_make(4, (int64_t[]){in->d[0], p->c, p->oh, p->ow});
    return 0;
}

/* The max of the 2x2 window a b / c d whose top-left element is at index base in a plane w wide,
 * and in *at where it is: the first maximum in row order, a NaN winning, as the general loop.
 * Branch-free selects: the compares are data-dependent and mispredict. */
static inline float max2x2(float a, float b, float c, float d, int32_t base, int32_t w,
                           int32_t *at)
{
    int tb = b > a || b != b;
    float m = tb ? b : a;
    int32_t best = tb ? base + 1 : base;
    int tc = c > m || c != c;
    m = tc ? c : m;
    best = tc ? base + w : best;
    int td = d > m || d != d;
    m = td ? d : m;
    *at = td ? base + w + 1 : best;
    return m;
}

/* The common 2x2 stride-2 window, unrolled; same tie and NaN rules as the general loop. */
RN_VECTOR_CLONES
static void pool2x2(const float *x, float *y, int32_t *argmax, int64_t planes, int64_t h,
                    int64_t w, int64_t oh, int64_t ow)
{
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *in = x + pl * h * w;
        float *o = y + pl * oh * ow;
        int32_t *am = argmax + pl * oh * ow;
        for (int64_t i = 0; i < oh; i++) {
            const float *r0 = in + 2 * i * w, *r1 = r0 + w;
            for (int64_t j = 0; j < ow; j++) {
                const int32_t base = (int32_t)(2 * i * w + 2 * j);
                o[i * ow + j] = max2x2(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1], base,
                                       (int32_t)w, &am[i * ow + j]);
            }
        }
    }
}

/* pool2x2 on a blocked input (nChw16c, layer.h): the same selects, 16 channels side by side;
 * y and argmax are plain, with the same values as pool2x2's on the plain input. */
RN_VECTOR_CLONES
static void pool2x2_blocked(const float *x, float *y, int32_t *argmax, int64_t blocks, int64_t h,
                            int64_t w, int64_t oh, int64_t ow)
{
    const int64_t ohw = oh * ow;
#pragma omp parallel for schedule(static)
    for (int64_t nb = 0; nb < blocks; nb++) {
        const float *in = x + nb * h * w * 16;
        float *o = y + nb * 16 * ohw; /* planes 16 nb .. 16 nb + 15 */
        int32_t *am = argmax + nb * 16 * ohw;
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                const int32_t base = (int32_t)(2 * i * w + 2 * j);
                const float *r0 = in + (int64_t)base * 16, *r1 = r0 + w * 16;
                for (int k = 0; k < 16; k++)
                    o[k * ohw + i * ow + j] = max2x2(r0[k], r0[16 + k], r1[k], r1[16 + k], base,
                                                     (int32_t)w, &am[k * ohw + i * ow + j]);
            }
    }
}

/* Plane pl's element `at` (its index within h w) is at x[off(pl) + at * st]: plain planes are
 * contiguous; blocked ones (layer.h) interleave 16 channels. */
static inline int64_t plane_off(bool blocked, int64_t pl, int64_t hw)
{
    return blocked ? (pl / 16) * hw * 16 + pl % 16 : pl * hw;
}

/* x (n, c, h, w) -> y (n, c, oh, ow); remembers where each max came from (its index in the
 * plane, whatever the layouts). x and y may each be blocked (layer.h). */
RN_VECTOR_CLONES
static int pool_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    pool_impl *p = l->impl;
    int64_t planes = x->shape.d[0] * p->c;
    if (planes * p->oh * p->ow > p->cap)
        return rn_nn_err(l->err, sizeof l->err, "batch %lld exceeds the max batch given to setup",
                         (long long)x->shape.d[0]);
    const int64_t k = p->k, s = p->stride, h = p->h, w = p->w, oh = p->oh, ow = p->ow;
    const int64_t pad = p->pad;
    const bool xb = l->in_blocked, yb = l->out_blocked;
    if (k == 2 && s == 2 && pad == 0 && !yb) {
        if (xb) pool2x2_blocked(x->data, y->data, p->argmax, planes / 16, h, w, oh, ow);
        else pool2x2(x->data, y->data, p->argmax, planes, h, w, oh, ow);
        return 0;
    }
    const int64_t st = xb ? 16 : 1, so = yb ? 16 : 1;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *in = x->data + plane_off(xb, pl, h * w);
        float *o = y->data + plane_off(yb, pl, oh * ow);
        int32_t *am = p->argmax + pl * oh * ow;
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                /* the window clipped to the image (padding <= k/2 keeps it non-empty) */
                int64_t a0 = i * s - pad, b0 = j * s - pad;
                int64_t a1 = a0 + k < h ? a0 + k : h, b1 = b0 + k < w ? b0 + k : w;
                if (a0 < 0) a0 = 0;
                if (b0 < 0) b0 = 0;
                int64_t best = a0 * w + b0;
                float m = in[best * st];
                for (int64_t a = a0; a < a1; a++)
                    for (int64_t b = b0; b < b1; b++) {
                        int64_t at = a * w + b;
                        float v = in[at * st];
                        /* NaN propagates, like PyTorch */
                        if (v > m || v != v) {
                            m = v;
                            best = at;
                        }
                    }
                o[(i * ow + j) * so] = m;
                am[i * ow + j] = (int32_t)best;
            }
    }
    return 0;
}

/* dx is zero except at each window's argmax, which gets (the sum of) its dy. With relu_in (the
 * ReLU before the pool folded, layer.h) only where the window's max, that ReLU's output at the
 * argmax, is positive: what the ReLU's backward would have left of dx. */
RN_VECTOR_CLONES
static int pool_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                         rn_tensor *dx)
{
    if (!dx) return 0;
    pool_impl *p = l->impl;
    int64_t planes = x->shape.d[0] * p->c;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    const bool xb = l->in_blocked, yb = l->out_blocked, relu = l->relu_in;
    const bool out16 = l->dx_bf16; /* windows apart (pool_dx_bf16_ok): one dy per input at most */
    if (xb || yb || out16) { /* dx (like x) and dy (like y) each plain or blocked (layer.h) */
        const int64_t group = xb ? 16 : 1, st = xb ? 16 : 1, so = yb ? 16 : 1;
        const size_t elem = out16 ? sizeof(uint16_t) : sizeof(float);
#pragma omp parallel for schedule(static)
        for (int64_t gr = 0; gr < planes / group; gr++) {
            /* a blocked dx's 16 planes are one stretch of memory: zeroed together */
            memset((char *)dx->data + (size_t)(gr * group * hw) * elem, 0,
                   (size_t)(group * hw) * elem);
            for (int64_t pl = gr * group; pl < (gr + 1) * group; pl++) {
                const int64_t at = plane_off(xb, pl, hw);
                const float *g = dy->data + plane_off(yb, pl, ohw);
                const float *ym = y->data + plane_off(yb, pl, ohw);
                const int32_t *am = p->argmax + pl * ohw;
                for (int64_t i = 0; i < ohw; i++) {
                    const float d = relu && !(ym[i * so] > 0.0f) ? 0.0f : g[i * so];
                    const int64_t k = at + (int64_t)am[i] * st;
                    /* bf16: 0 + dy, as the float sum into a zeroed dx (a -0 becomes +0) */
                    if (out16) ((uint16_t *)dx->data)[k] = rn_bf16_from_f32(0.0f + d);
                    else dx->data[k] += d;
                }
            }
        }
        return 0;
    }
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *gx = dx->data + pl * hw;
        const float *g = dy->data + pl * ohw;
        const float *ym = y->data + pl * ohw;
        const int32_t *am = p->argmax + pl * ohw;
        memset(gx, 0, (size_t)hw * sizeof *gx);
        if (relu)
            for (int64_t i = 0; i < ohw; i++) gx[am[i]] += ym[i] > 0.0f ? g[i] : 0.0f;
        else
            for (int64_t i = 0; i < ohw; i++) gx[am[i]] += g[i];
    }
    return 0;
}

/* Windows that do not overlap (stride = kernel, no padding): backward writes each input's
 * gradient once, so it can write it in bf16 (layer.h's writes_dx_bf16). */
static bool pool_dx_bf16_ok(const rn_layer *l)
{
    const pool_impl *p = l->impl;
    return p->k == p->stride && p->pad == 0;
}

static void pool_destroy(rn_layer *l)
{
    pool_impl *p = l->impl;
    free(p->argmax);
}

static void pool_ops_describe(const rn_layer *l, rn_node *node)
{
    const pool_impl *p = l->impl;
    node->kind = RN_NODE_MAXPOOL2D;
    node->kernel = p->k;
    node->stride = p->stride;
    node->padding = p->pad;
}

static const rn_layer_ops pool_ops = {
    .type = "max_pool2d",
    .setup = pool_setup,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = pool_destroy,
    .describe = pool_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT, /* each side plain or blocked */
    .takes_relu_backward = true,
    .writes_dx_bf16 = true,
    .dx_bf16_ok = pool_dx_bf16_ok,
};

rn_layer *rn_maxpool2d_create(int64_t kernel, int64_t stride, char *err, size_t errlen)
{
    return rn_maxpool2d_create2(kernel, stride, 0, err, errlen);
}

rn_layer *rn_maxpool2d_create2(int64_t kernel, int64_t stride, int64_t padding, char *err,
                               size_t errlen)
{
    if (kernel < 1 || stride < 1) {
        rn_nn_err(err, errlen, "max_pool2d: expected kernel, stride >= 1, got %lld, %lld",
                  (long long)kernel, (long long)stride);
        return NULL;
    }
    if (padding < 0 || 2 * padding > kernel) {
        rn_nn_err(err, errlen, "max_pool2d: padding should be at most half the kernel (%lld), "
                  "got %lld", (long long)kernel, (long long)padding);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&pool_ops, "", sizeof(pool_impl), 0);
    if (!l) {
        rn_nn_err(err, errlen, "max_pool2d: out of memory");
        return NULL;
    }
    pool_impl *p = l->impl;
    p->k = kernel;
    p->stride = stride;
    p->pad = padding;
    return l;
}
