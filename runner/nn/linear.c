/* Fully connected layer, y = x W^T + b (PyTorch nn.Linear), on oneDNN's matmul: cached plans of
 * the three products, in float32 or (precision = "bf16") bfloat16. */
#include "net.h"
#include "cpu_matmul.h"
#include "nn_internal.h"

#include <math.h>
#include <runner/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 3 products x (the full batch, the last partial one, an eval batch size) */
#define LINEAR_PLANS 9

typedef struct linear_impl {
    int64_t in_f, out_f;
    bool bias;
    rn_tensor w, dw; /* (out_f, in_f) */
    rn_tensor b, db; /* (out_f) */
    bool bf16;       /* the three products run in bf16 (rn_linear_set_bf16) */
    /* bf16 copies of the operands, each converted once per step: x and W by the forward (the
     * backward's weight and input gradients read them again), dy by the backward */
    uint16_t *x16, *w16, *dy16;
    int64_t rows16;  /* the batch x16 and dy16 hold room for */
    /* plans: forward, weight and input gradient, for up to a few batch sizes */
    rn_cpu_matmul *plans[LINEAR_PLANS];
    int next_evict;
} linear_impl;

/* C = op(A) op(B) [+ bias] through a cached plan, A and B bf16 (uint16_t) when the layer runs in
 * bf16, float otherwise; 0, or -1 with l->err set. */
static int gemm(rn_layer *l, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
                const void *b, const float *bias, float *c)
{
    linear_impl *f = l->impl;
    rn_cpu_matmul *g = NULL;
    for (int i = 0; i < LINEAR_PLANS && !g; i++)
        if (rn_cpu_matmul_matches(f->plans[i], f->bf16, ta, tb, m, n, k, bias != NULL))
            g = f->plans[i];
    if (!g) {
        int slot = f->next_evict;
        f->next_evict = (f->next_evict + 1) % LINEAR_PLANS;
        rn_cpu_matmul_destroy(f->plans[slot]);
        f->plans[slot] = NULL;
        if (rn_cpu_matmul_create(&f->plans[slot], f->bf16, ta, tb, m, n, k, bias != NULL, l->err,
                                 sizeof l->err))
            return -1;
        g = f->plans[slot];
    }
    return rn_cpu_matmul_run(g, a, b, bias, c, l->err, sizeof l->err);
}

static void drop_plans(linear_impl *f)
{
    for (int i = 0; i < LINEAR_PLANS; i++) {
        rn_cpu_matmul_destroy(f->plans[i]);
        f->plans[i] = NULL;
    }
    f->next_evict = 0;
}

/* Room for n rows of x16 and dy16 (and W's copy), grown only when a batch is larger; 0 or -1. */
static int reserve16(rn_layer *l, int64_t n)
{
    linear_impl *f = l->impl;
    if (!f->w16 && !(f->w16 = malloc((size_t)(f->out_f * f->in_f) * sizeof *f->w16)))
        return rn_nn_err(l->err, sizeof l->err, "out of memory for the bf16 weights");
    if (n <= f->rows16) return 0;
    free(f->x16);
    free(f->dy16);
    f->x16 = malloc((size_t)(n * f->in_f) * sizeof *f->x16);
    f->dy16 = malloc((size_t)(n * f->out_f) * sizeof *f->dy16);
    f->rows16 = f->x16 && f->dy16 ? n : 0;
    if (!f->rows16) return rn_nn_err(l->err, sizeof l->err, "out of memory for bf16 operands");
    return 0;
}

void rn_linear_set_bf16(rn_layer *l, bool on)
{
    linear_impl *f = l->impl;
    if (f->bf16 != on) drop_plans(f);
    f->bf16 = on;
}

static int linear_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    linear_impl *f = l->impl;
    if (in->ndim != 2 || in->d[1] != f->in_f) {
        char label[96], got[64];
        int64_t per = in->ndim > 1 ? rn_shape_numel(in) / (in->d[0] ? in->d[0] : 1) : 1;
        rn_nn_sample_str(in, got, sizeof got);
        char count[32] = ""; /* "1x13x13 (169)"; a flat input is its own count */
        if (in->ndim > 2) snprintf(count, sizeof count, " (%lld)", (long long)per);
        return rn_nn_err(err, errlen, "%s: expected input with %lld features, got %s%s%s",
                         rn_nn_layer_label(l, label, sizeof label), (long long)f->in_f, got,
                         count, in->ndim > 2 && per == f->in_f ? "; add a flatten before it" : "");
    }
    *out = rn_shape_make(2, (int64_t[]){in->d[0], f->out_f});
    return 0;
}

/* x (n, in_f) -> y (n, out_f) */
static int linear_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    linear_impl *f = l->impl;
    int64_t n = x->shape.d[0];
    const void *a = x->data, *w = f->w.data;
    if (f->bf16) {
        if (reserve16(l, n)) return -1;
        rn_bf16_convert(f->x16, x->data, n * f->in_f);
        rn_bf16_convert(f->w16, f->w.data, f->out_f * f->in_f);
        a = f->x16;
        w = f->w16;
    }
    return gemm(l, false, true, n, f->out_f, f->in_f, a, w, f->bias ? f->b.data : NULL, y->data);
}

/* dW (out_f, in_f) = dy^T x; db = sum over the batch of dy; dx (n, in_f) = dy W. A frozen W or b
 * gets no gradient. */
static int linear_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y,
                           const rn_tensor *dy, rn_tensor *dx)
{
    linear_impl *f = l->impl;
    int64_t n = x->shape.d[0];
    const void *g = dy->data, *a = x->data, *w = f->w.data;
    /* bf16: x16 and w16 are the forward's copies of this x and W (nothing changed them since) */
    if (f->bf16) {
        if (n > f->rows16)
            return rn_nn_err(l->err, sizeof l->err, "bf16 backward of %lld rows without its "
                             "forward", (long long)n);
        rn_bf16_convert(f->dy16, dy->data, n * f->out_f);
        g = f->dy16;
        a = f->x16;
        w = f->w16;
    }
    if (!l->params[0].frozen &&
        gemm(l, true, false, f->out_f, f->in_f, n, g, a, NULL, f->dw.data))
        return -1;
    if (f->bias && !l->params[1].frozen) {
        const float *gy = dy->data;
        float *db = f->db.data;
        int64_t of = f->out_f;
#pragma omp parallel for if (n * of > 16384)
        for (int64_t j = 0; j < of; j++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += gy[i * of + j];
            db[j] = (float)s;
        }
    }
    return dx ? gemm(l, false, false, n, f->in_f, f->out_f, g, w, NULL, dx->data) : 0;
}

static void linear_destroy(rn_layer *l)
{
    linear_impl *f = l->impl;
    rn_tensor_free(&f->w);
    rn_tensor_free(&f->dw);
    rn_tensor_free(&f->b);
    rn_tensor_free(&f->db);
    drop_plans(f);
    free(f->x16);
    free(f->w16);
    free(f->dy16);
}

static void linear_ops_describe(const rn_layer *l, rn_node *node)
{
    const linear_impl *f = l->impl;
    node->kind = RN_NODE_LINEAR;
    node->in_f = f->in_f;
    node->out_f = f->out_f;
    node->bias = f->bias;
}

static const rn_layer_ops linear_ops = {
    .type = "linear",
    .setup = linear_setup,
    .forward = linear_forward,
    .backward = linear_backward,
    .destroy = linear_destroy,
    .describe = linear_ops_describe,
    .backward_skips_y = true,
};

rn_layer *rn_linear_create(const char *name, int64_t in_f, int64_t out_f, bool bias,
                           uint64_t seed, char *err, size_t errlen)
{
    if (in_f < 1 || out_f < 1) {
        rn_nn_err(err, errlen, "linear %s: expected in_features, out_features >= 1, got %lld, %lld",
                  name ? name : "", (long long)in_f, (long long)out_f);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&linear_ops, name, sizeof(linear_impl), bias ? 2 : 1);
    if (!l) {
        rn_nn_err(err, errlen, "linear %s: out of memory", name ? name : "");
        return NULL;
    }
    linear_impl *f = l->impl;
    f->in_f = in_f;
    f->out_f = out_f;
    f->bias = bias;
    l->seed = seed;
    rn_shape ws = rn_shape_make(2, (int64_t[]){out_f, in_f});
    rn_shape bs = rn_shape_make(1, (int64_t[]){out_f});
    int bad = rn_tensor_alloc(&f->w, ws) || rn_tensor_alloc(&f->dw, ws) ||
              rn_nn_layer_set_param(l, 0, "weight", &f->w, &f->dw);
    if (!bad && bias)
        bad = rn_tensor_alloc(&f->b, bs) || rn_tensor_alloc(&f->db, bs) ||
              rn_nn_layer_set_param(l, 1, "bias", &f->b, &f->db);
    if (bad) {
        rn_layer_destroy(l);
        rn_nn_err(err, errlen, "linear %s: out of memory for the weights", name ? name : "");
        return NULL;
    }
    /* PyTorch's default: kaiming_uniform(a=sqrt(5)) and the bias both give U(+-1/sqrt(fan_in)) */
    double bound = 1.0 / sqrt((double)in_f);
    rn_nn_fill_uniform(f->w.data, rn_tensor_numel(&f->w), bound, RN_NN_INIT_KEY(seed, 0));
    if (bias) rn_nn_fill_uniform(f->b.data, out_f, bound, RN_NN_INIT_KEY(seed, 1));
    return l;
}
