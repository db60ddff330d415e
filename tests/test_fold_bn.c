/* Eval mode with each batch norm folded into the convolution before it (rn_chain_fold_bn):
 * - the plan's affine forward (rn_cpu_conv_forward_affine) against relu(s (conv(x, w) + b) + t)
 *   computed in double with the unfolded weights: direct, Winograd, plain, strided, bf16, with
 *   and without bias and ReLU; the error relative to s (sum |terms| + |b|) + |t|, the scale of
 *   float32 rounding, within 2^-20 (Winograd 2^-15, as tests/test_conv_winograd.c holds it);
 * - ResNet-8 in eval mode, folded and not: the logits agree within 1e-5 of the largest, every
 *   one of its 9 convolution + batch norm pairs ran folded, the running statistics did not
 *   move, and train mode is bit for bit what it was (nothing folds there); in bf16 nothing folds
 *   either (the batch norm runs in float after the bf16 convolution, as autocast runs it).
 * rn_net_forward folds the same pairs: tests/test_net.c holds its eval logits to the model's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <runner/plugin.h>

#include "chain.h"
#include "conv_ref.h"
#include "model_from_lua.h"
#include "nn_internal.h"
#include "rn_test.h"

static char dir[] = "/tmp/rn-fold-bn-XXXXXX";

/* One affine forward against the reference; returns the worst relative error. */
static double check_affine(const char *what, rn_cpu_conv_desc d, bool with_b, bool bf16)
{
    d.bias = true;
    d.inference = true;
    d.bf16 = bf16;
    int64_t g = d.groups ? d.groups : 1;
    int64_t nx = d.n * d.ic * d.ih * d.iw, nw = d.oc * (d.ic / g) * d.kh * d.kw;
    int64_t ny = d.n * d.oc * d.oh * d.ow;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(d.oc * 4), *y = malloc(ny * 4);
    float *wf = malloc(nw * 4);
    double *s = malloc(d.oc * 8), *t = malloc(d.oc * 8), *ry = malloc(ny * 8),
           *my = malloc(ny * 8);
    conv_ref_fill(x, nx, 11);
    conv_ref_fill(w, nw, 12);
    conv_ref_fill(b, d.oc, 13);
    srand(14);
    for (int64_t o = 0; o < d.oc; o++) { /* gamma / sqrt(var + eps) of either sign, any beta */
        s[o] = (0.5 + 1.5 * rand() / RAND_MAX) * (o % 3 ? 1 : -1);
        t[o] = 2.0 * rand() / RAND_MAX - 1.0;
    }
    /* bf16 rounds the folded weights, so the reference convolves those; float32 the raw ones */
    for (int64_t i = 0; i < nw; i++)
        wf[i] = bf16 ? (float)(w[i] * s[i / (nw / d.oc)]) : w[i];
    rn_cpu_conv_desc r = d;
    r.bias = false;
    conv_ref(&r, bf16, x, wf, NULL, NULL, ry, my, NULL, NULL, NULL, NULL, NULL, NULL);
    double worst = INFINITY;
    rn_cpu_conv_plan *p = NULL;
    char err[256] = "";
    if (rn_cpu_conv_plan_create(&p, &d, err, sizeof err) ||
        rn_cpu_conv_forward_affine(p, x, w, with_b ? b : NULL, s, t, y, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", what, err);
        CHECK(!"affine forward runs");
    } else {
        worst = 0;
        int64_t plane = d.oh * d.ow;
        for (int64_t i = 0; i < ny; i++) {
            int64_t o = i / plane % d.oc;
            double bo = with_b ? b[o] : 0, so = bf16 ? 1.0 : s[o];
            double v = so * ry[i] + (bf16 ? (float)(bo * s[o] + t[o]) : bo * s[o] + t[o]);
            if (d.relu && v < 0) v = 0;
            double e = fabs(y[i] - v) / (fabs(so) * my[i] + fabs(bo * s[o]) + fabs(t[o]));
            if (!(e <= worst)) worst = e;
        }
        printf("%-40s %-24s %.1e\n", what, rn_cpu_conv_impl(p, 0), worst);
        /* an inference plan has no backward */
        CHECK(rn_cpu_conv_backward(p, x, y, w, NULL, wf, NULL, err, sizeof err) != 0);
    }
    rn_cpu_conv_plan_destroy(p);
    free(x), free(w), free(b), free(y), free(wf), free(s), free(t), free(ry), free(my);
    return worst;
}

static rn_cpu_conv_desc geom(int64_t n, int64_t ic, int64_t oc, int64_t ih, int64_t iw, int64_t k,
                             int64_t stride, int64_t pad, bool blocked, bool relu)
{
    return (rn_cpu_conv_desc){.n = n, .ic = ic, .ih = ih, .iw = iw, .oc = oc, .kh = k, .kw = k,
                              .sh = stride, .sw = stride, .ph = pad, .pw = pad,
                              .oh = (ih + 2 * pad - k) / stride + 1,
                              .ow = (iw + 2 * pad - k) / stride + 1, .dh = 1, .dw = 1,
                              .groups = 1, .blocked = blocked, .relu = relu};
}

static void check_plans(void)
{
    const double tight = ldexp(1, -20), wino = ldexp(1, -15);
    CHECK(check_affine("16->32 9x7, bias, ReLU", geom(3, 16, 32, 9, 7, 3, 1, 1, true, true), true,
                       false) <= tight);
    CHECK(check_affine("16->32 9x7, no bias", geom(3, 16, 32, 9, 7, 3, 1, 1, true, false), false,
                       false) <= tight);
    rn_cpu_conv_desc w = geom(2, 32, 64, 8, 8, 3, 1, 1, true, true);
    double e = check_affine("32->64 8x8 (Winograd), ReLU", w, true, false);
    CHECK(e <= wino);
    rn_cpu_conv_plan *p = NULL;
    char err[256];
    w.bias = w.inference = true;
    CHECK(rn_cpu_conv_plan_create(&p, &w, err, sizeof err) == 0);
    CHECK(p && strstr(rn_cpu_conv_impl(p, 0), "wino")); /* so the case above ran Winograd */
    rn_cpu_conv_plan_destroy(p);
    CHECK(check_affine("3->8 plain, stride 2, ReLU", geom(2, 3, 8, 11, 9, 3, 2, 1, false, true),
                       true, false) <= tight);
    CHECK(check_affine("16->16 1x1 stride 2", geom(2, 16, 16, 10, 10, 1, 2, 0, true, false), true,
                       false) <= tight);
    CHECK(check_affine("16->16 bf16, ReLU", geom(2, 16, 16, 9, 9, 3, 1, 1, true, true), true,
                       true) <= tight);
    rn_cpu_conv_desc gd = geom(2, 16, 32, 11, 11, 3, 1, 1, true, true);
    gd.groups = 4; /* 4 input channels per group, 8 outputs: each output's own weights */
    CHECK(check_affine("16->32 4 groups, ReLU", gd, true, false) <= tight);

    /* an affine forward needs an inference plan */
    rn_cpu_conv_desc t = geom(1, 16, 16, 6, 6, 3, 1, 1, true, false);
    t.bias = true;
    CHECK(rn_cpu_conv_plan_create(&p, &t, err, sizeof err) == 0);
    float x[16 * 36] = {0}, wt[16 * 16 * 9] = {0}, y[16 * 36];
    double s[16] = {0}, sh[16] = {0};
    CHECK(rn_cpu_conv_forward_affine(p, x, wt, NULL, s, sh, y, err, sizeof err) != 0);
    rn_cpu_conv_plan_destroy(p);
}

/* The convolutions' folded forwards, over the chain and the chains inside its containers. */
static uint64_t folded_calls(const rn_chain *c)
{
    uint64_t k = 0;
    for (int i = 0; i < c->n; i++) {
        k += rn_conv2d_folded_calls(c->layers[i]);
        const rn_chain *inner;
        for (int j = 0; (inner = rn_container_chain(c->layers[i], j)); j++)
            k += folded_calls(inner);
    }
    return k;
}

static float *logits(rn_model *m, int64_t n, bool train)
{
    rn_tensor out;
    if (rn_model_forward(m, n, train, &out)) {
        fprintf(stderr, "forward: %s\n", m->err);
        return NULL;
    }
    float *copy = malloc((size_t)rn_tensor_numel(&out) * sizeof *copy);
    memcpy(copy, out.data, (size_t)rn_tensor_numel(&out) * sizeof *copy);
    return copy;
}

static void check_resnet8(void)
{
    rn_model m;
    const int64_t n = 4;
    if (rn_test_model_from_lua(&m, dir, "models.resnet8{ in_channels = 1, classes = 10 }",
                               rn_shape_make(3, (int64_t[]){1, 12, 12}), n)) {
        CHECK(!"model builds");
        return;
    }
    /* batch norms far from their initial identity: gamma, beta, running mean and variance */
    for (int i = 0; i < m.n_params; i++) {
        const char *name = m.params[i].name;
        rn_tensor *v = m.params[i].value;
        if (!strstr(name, "bn") && !strstr(name, "downsample.1")) continue;
        for (int64_t j = 0; j < rn_tensor_numel(v); j++) {
            double u = rn_uniform(0x666f6c64ull + (uint64_t)i, (uint64_t)j);
            v->data[j] = (float)(strstr(name, "running_var") ? 0.2 + 2 * u
                                 : strstr(name, "weight")    ? 0.5 + u
                                                             : 2 * u - 1);
        }
    }
    int64_t per = rn_tensor_numel(&m.acts[0]) / m.max_batch;
    for (int64_t i = 0; i < n * per; i++)
        m.acts[0].data[i] = (float)(4 * rn_uniform(7, (uint64_t)i) - 2);
    size_t bytes = 0;
    for (int i = 0; i < m.n_params; i++)
        bytes += (size_t)rn_tensor_numel(m.params[i].value) * sizeof(float);
    char *before = malloc(bytes), *at = before;
    for (int i = 0; i < m.n_params; i++) {
        size_t b = (size_t)rn_tensor_numel(m.params[i].value) * sizeof(float);
        memcpy(at, m.params[i].value->data, b);
        at += b;
    }

    float *folded = logits(&m, n, false);
    uint64_t calls = folded_calls(&m.chain);
    rn_model_fold_bn(&m, false);
    float *plain = logits(&m, n, false);
    CHECK(folded_calls(&m.chain) == calls);
    CHECK(calls == 9); /* stem, 2 + 2 + 2 in the blocks, 2 shortcuts */
    double scale = 0, worst = 0;
    for (int64_t i = 0; folded && plain && i < n * 10; i++) {
        scale = fmax(scale, fabs(plain[i]));
        double e = fabs(folded[i] - plain[i]);
        if (!(e <= worst)) worst = e;
    }
    printf("resnet8 eval, folded against not: max |diff| %.2e of max |logit| %.3g (%u pairs)\n",
           worst, scale, (unsigned)calls);
    CHECK(scale > 0.1 && worst <= 1e-5 * scale);

    /* eval moved no statistic; train mode folds nothing and gives the same bits either way */
    at = before;
    int same = 1;
    for (int i = 0; i < m.n_params; i++) {
        size_t b = (size_t)rn_tensor_numel(m.params[i].value) * sizeof(float);
        same &= memcmp(at, m.params[i].value->data, b) == 0;
        at += b;
    }
    CHECK(same);
    float *train_plain = logits(&m, n, true);
    rn_model_fold_bn(&m, true);
    /* the running stats moved with that forward: put them back for the second one */
    at = before;
    for (int i = 0; i < m.n_params; i++) {
        size_t b = (size_t)rn_tensor_numel(m.params[i].value) * sizeof(float);
        memcpy(m.params[i].value->data, at, b);
        at += b;
    }
    float *train_fold = logits(&m, n, true);
    CHECK(folded_calls(&m.chain) == calls);
    CHECK(train_plain && train_fold &&
          memcmp(train_plain, train_fold, (size_t)(n * 10) * sizeof(float)) == 0);

    /* bf16 folds nothing: autocast's bf16 convolution, then the batch norm in float */
    rn_model_set_bf16(&m, true);
    float *bf_fold = logits(&m, n, false);
    rn_model_fold_bn(&m, false);
    float *bf_plain = logits(&m, n, false);
    rn_model_fold_bn(&m, true);
    CHECK(folded_calls(&m.chain) == calls);
    CHECK(bf_fold && bf_plain && memcmp(bf_fold, bf_plain, (size_t)(n * 10) * sizeof(float)) == 0);
    CHECK(bf_fold && folded && memcmp(bf_fold, folded, (size_t)(n * 10) * sizeof(float)) != 0);
    free(bf_fold), free(bf_plain);
    free(folded), free(plain), free(train_plain), free(train_fold), free(before);
    rn_model_free(&m);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    check_plans();
    check_resnet8();
    rn_test_rmtree(dir);
    return rn_test_report("test_fold_bn");
}
