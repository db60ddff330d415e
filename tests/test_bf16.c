/* precision = "bf16" on the CPU: the rounding to bf16, the bf16 convolution and GEMM plans
 * against a double-precision reference on the bf16-rounded operands, and rn_model_set_bf16
 * reaching every convolution and linear layer, nested ones included.
 *
 * The reference: a bf16 layer multiplies bf16(x) by bf16(w) exactly (a product of two 8-bit
 * mantissas fits a float) and sums in float32, so its result equals the double-precision sum of
 * the rounded operands' products up to float32 accumulation error: |got - ref| <= 2^-20 * sum |terms|
 * covers a float32 sum of up to a few thousand terms in any order (the bound is ~K ulps/2 for K
 * terms; oneDNN blocks its sums, so the effective depth is far below K). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_conv.h"
#include "cpu_matmul.h"
#include "../kernels/amp_elem.h"
#include "chain.h"
#include "conv_ref.h"
#include "model.h"
#include "rn_test.h"

static float bf(float x) { return rn_bf16_to_f32(rn_bf16_from_f32(x)); }

static void test_rounding(void)
{
    CHECK(rn_bf16_from_f32(1.0f) == 0x3f80);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1 */
    CHECK(bf(1.0f + 0x1p-8f) == 1.0f);
    /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to the even one */
    CHECK(bf(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
    CHECK(bf(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f); /* above half: up */
    CHECK(bf(-2.5f) == -2.5f);                               /* exact values stay */
    CHECK(bf(3.389e38f) == 0x1.fep127f);                     /* the largest bf16 */
    CHECK(bf(FLT_MAX) == INFINITY);                          /* rounds past it */
    CHECK(bf(INFINITY) == INFINITY && bf(-INFINITY) == -INFINITY);
    CHECK(isnan(bf(NAN)));
    CHECK(bf(0x1p-130f) == 0x1p-130f); /* subnormals keep their top bits */
    /* relative error at most half an ulp, 2^-8 (7 stored mantissa bits), on normal numbers */
    float xs[1000];
    conv_ref_fill(xs, 1000, 3);
    double e = 0;
    for (int i = 0; i < 1000; i++) {
        double r = fabs(bf(xs[i]) - xs[i]) / fabs(xs[i]);
        if (r > e) e = r;
    }
    CHECK(e <= 0x1p-8);
    CHECK(e > 0x1p-10); /* and it does round */
}

static void test_conv(rn_cpu_conv_desc d, const char *what)
{
    d.bf16 = true;
    conv_ref_errs e = conv_ref_run(&d, true, what);
    CHECK(e.y <= 0x1p-20);
    CHECK(e.dx <= 0x1p-20);
    CHECK(e.dw <= 0x1p-20);
    CHECK(e.db <= 0x1p-20);
    /* and it is not the float32 convolution: that one misses the bf16 reference by ~2^-8 */
    d.bf16 = false;
    CHECK(conv_ref_run(&d, true, "  the same in float32").y > 0x1p-14);
}

/* A matmul plan against a double product of its (bf16-rounded, with bf16) operands: bf16's
 * float32 accumulation within 2^-20 of the magnitude; float32 plans (the linear layer's fp32
 * path) within 2^-18 (k float32 roundings, k up to 576). */
static void test_gemm(bool bf16, bool ta, bool tb, int64_t m, int64_t n, int64_t k, bool bias)
{
    float *a = malloc(m * k * 4), *b = malloc(k * n * 4), *c = malloc(m * n * 4),
          *bv = malloc(n * 4);
    double *ref = malloc(m * n * 8), *mag = malloc(m * n * 8);
    conv_ref_fill(a, m * k, 5);
    conv_ref_fill(b, k * n, 6);
    conv_ref_fill(bv, n, 7);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = bias ? bv[j] : 0, g = bias ? fabs(bv[j]) : 0;
            for (int64_t p = 0; p < k; p++) {
                float x = ta ? a[p * m + i] : a[i * k + p], y = tb ? b[j * k + p] : b[p * n + j];
                double t = bf16 ? (double)bf(x) * bf(y) : (double)x * y;
                s += t;
                g += fabs(t);
            }
            ref[i * n + j] = s;
            mag[i * n + j] = g;
        }
    rn_cpu_matmul *gm = NULL;
    char err[256];
    int rc = rn_cpu_matmul_create(&gm, bf16, ta, tb, m, n, k, bias, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "gemm: %s\n", err);
        return;
    }
    CHECK(rn_cpu_matmul_matches(gm, bf16, ta, tb, m, n, k, bias));
    CHECK(!rn_cpu_matmul_matches(gm, bf16, !ta, tb, m, n, k, bias));
    CHECK(!rn_cpu_matmul_matches(gm, !bf16, ta, tb, m, n, k, bias));
    uint16_t *a16 = malloc(m * k * 2), *b16 = malloc(k * n * 2);
    rn_bf16_convert(a16, a, m * k);
    rn_bf16_convert(b16, b, k * n);
    /* twice: the second run must not see the first's state */
    for (int r = 0; r < 2; r++) {
        memset(c, 0xff, m * n * 4);
        CHECK(rn_cpu_matmul_run(gm, bf16 ? (const void *)a16 : a, bf16 ? (const void *)b16 : b,
                                bv, c, err, sizeof err) == 0);
        double e = conv_ref_worst(c, ref, mag, m * n);
        if (r == 0)
            printf("gemm %s %c%c %lldx%lldx%lld%s: relative error %.2e\n", bf16 ? "bf16" : "f32",
                   ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n, (long long)k,
                   bias ? " +bias" : "", e);
        CHECK(e <= (bf16 ? 0x1p-20 : 0x1p-18));
    }
    rn_cpu_matmul_destroy(gm);
    free(a16), free(b16);
    free(a), free(b), free(c), free(bv), free(ref), free(mag);
}

/* A small ResNet-like model: set_bf16 must reach the convolutions inside the residual block and
 * the head, and switching it off must give the float32 model back bit for bit. */
static void test_model(void)
{
    char err[384];
    rn_layer **body = malloc(3 * sizeof *body);
    body[0] = rn_conv2d_create("block.conv1", 16, 16, 3, 1, 1, false, 11, err, sizeof err);
    body[1] = rn_relu_create();
    body[2] = rn_conv2d_create("block.conv2", 16, 16, 3, 1, 1, false, 12, err, sizeof err);
    rn_layer **ls = malloc(6 * sizeof *ls);
    int n = 0;
    ls[n++] = rn_conv2d_create("conv1", 3, 16, 3, 1, 1, true, 10, err, sizeof err);
    ls[n++] = rn_residual_create("block", body, 3, NULL, 0, true, "body", "shortcut", err,
                                 sizeof err);
    ls[n++] = rn_global_avgpool2d_create();
    ls[n++] = rn_flatten_create();
    ls[n++] = rn_linear_create("fc", 16, 10, true, 13, err, sizeof err);
    rn_model m;
    int rc = rn_model_init(&m, ls, n, rn_shape_make(3, (int64_t[]){3, 8, 8}), 4, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "model: %s\n", err);
        return;
    }
    /* plain activations, since the check below reads the nested block's as NCHW (test_layout
     * holds blocked runs to plain ones, bf16 included) */
    CHECK(rn_model_set_layouts(&m, false, err, sizeof err) == 0);
    conv_ref_fill(m.acts[0].data, rn_tensor_numel(&m.acts[0]), 9);
    int64_t k = 4 * 10;
    float *f32 = malloc(k * 4), *b16 = malloc(k * 4), *back = malloc(k * 4);
    rn_tensor out;
    CHECK(rn_model_forward(&m, 4, false, &out) == 0);
    memcpy(f32, out.data, k * 4);
    rn_model_set_bf16(&m, true);
    CHECK(rn_model_forward(&m, 4, false, &out) == 0);
    memcpy(b16, out.data, k * 4);
    /* each bf16 layer moves the result by up to ~2^-8 relative: different, but close */
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < k; i++) {
        diff = fmax(diff, fabs(b16[i] - f32[i]));
        scale = fmax(scale, fabs(f32[i]));
    }
    printf("model: bf16 vs fp32 logits differ by at most %.2e (logit scale %.2e)\n", diff, scale);
    CHECK(diff > 0);
    CHECK(diff <= 0x1p-5 * scale);
    /* the convolution nested in the residual block ran in bf16: its output equals the bf16
     * reference on its own input (a float32 convolution misses it by ~2^-8, see test_conv) */
    const rn_chain *body_chain = rn_container_chain(m.layers[1], 0);
    CHECK(body_chain != NULL);
    if (body_chain) {
        rn_cpu_conv_desc d = {.n = 4, .ic = 16, .ih = 8, .iw = 8, .oc = 16, .kh = 3, .kw = 3,
                              .sh = 1, .sw = 1, .ph = 1, .pw = 1, .oh = 8, .ow = 8};
        int64_t ny = 4 * 16 * 8 * 8;
        double *ry = malloc(ny * 8), *my = malloc(ny * 8);
        conv_ref(&d, true, m.acts[1].data, body_chain->layers[0]->params[0].value->data, NULL,
                 NULL, ry, my, NULL, NULL, NULL, NULL, NULL, NULL);
        /* the ReLU after it is folded into it (chain.h), so its output is the ReLU's */
        CHECK(body_chain->folded[1]);
        for (int64_t i = 0; i < ny; i++) ry[i] = ry[i] > 0 ? ry[i] : 0;
        double e = conv_ref_worst(body_chain->acts[1].data, ry, my, ny);
        printf("model: the nested block.conv1 in bf16, relative error %.2e\n", e);
        CHECK(e <= 0x1p-20);
        free(ry), free(my);
    }
    /* switched off: the float32 model again, bit for bit */
    rn_model_set_bf16(&m, false);
    CHECK(rn_model_forward(&m, 4, false, &out) == 0);
    memcpy(back, out.data, k * 4);
    CHECK(memcmp(back, f32, k * 4) == 0);
    /* backward in bf16 runs and writes finite gradients everywhere */
    rn_model_set_bf16(&m, true);
    CHECK(rn_model_forward(&m, 4, true, &out) == 0);
    conv_ref_fill(m.grads[m.n_layers].data, k, 10);
    CHECK(rn_model_backward(&m, 4) == 0);
    int finite = 1;
    for (int i = 0; i < m.n_params; i++)
        if (m.params[i].grad)
            for (int64_t j = 0; j < rn_tensor_numel(m.params[i].grad); j++)
                finite &= isfinite(m.params[i].grad->data[j]);
    CHECK(finite);
    free(f32), free(b16), free(back);
    rn_model_free(&m);
}

/* A linear layer in a model under rn_model_set_bf16: its output, weight gradient and input
 * gradient against the double reference on bf16-rounded x, W and dy (each operand converted
 * once per step and read by two products: this checks they are the right ones). */
static void test_linear_layer(void)
{
    enum { N = 5, IN = 40, OUT = 7 };
    char err[384];
    rn_layer **ls = malloc(2 * sizeof *ls);
    ls[0] = rn_linear_create("a", 16, IN, true, 21, err, sizeof err);
    ls[1] = rn_linear_create("fc", IN, OUT, true, 22, err, sizeof err);
    rn_model m;
    if (rn_model_init(&m, ls, 2, rn_shape_make(1, (int64_t[]){16}), N, err, sizeof err)) {
        CHECK(!"model");
        return;
    }
    rn_model_set_bf16(&m, true);
    conv_ref_fill(m.acts[0].data, N * 16, 31);
    rn_tensor out;
    CHECK(rn_model_forward(&m, N, true, &out) == 0);
    conv_ref_fill(m.grads[2].data, N * OUT, 32);
    CHECK(rn_model_backward(&m, N) == 0);
    const float *x = m.acts[1].data, *dy = m.grads[2].data, *dx = m.grads[1].data;
    const float *w = m.params[2].value->data, *b = m.params[3].value->data;
    const float *dw = m.params[2].grad->data;
    double ey = 0, edw = 0, edx = 0;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            double s = b[o], g = fabs(b[o]);
            for (int j = 0; j < IN; j++) {
                double t = (double)bf(x[i * IN + j]) * bf(w[o * IN + j]);
                s += t;
                g += fabs(t);
            }
            ey = fmax(ey, fabs(out.data[i * OUT + o] - s) / g);
        }
    for (int o = 0; o < OUT; o++)
        for (int j = 0; j < IN; j++) {
            double s = 0, g = 0;
            for (int i = 0; i < N; i++) {
                double t = (double)bf(dy[i * OUT + o]) * bf(x[i * IN + j]);
                s += t;
                g += fabs(t);
            }
            edw = fmax(edw, fabs(dw[o * IN + j] - s) / (g + 1e-30));
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < IN; j++) {
            double s = 0, g = 0;
            for (int o = 0; o < OUT; o++) {
                double t = (double)bf(dy[i * OUT + o]) * bf(w[o * IN + j]);
                s += t;
                g += fabs(t);
            }
            edx = fmax(edx, fabs(dx[i * IN + j] - s) / (g + 1e-30));
        }
    printf("linear layer in bf16: relative error y %.2e dW %.2e dx %.2e\n", ey, edw, edx);
    CHECK(ey <= 0x1p-20);
    CHECK(edw <= 0x1p-20);
    CHECK(edx <= 0x1p-20);
    rn_model_free(&m);
}

int main(void)
{
    test_rounding();
    /* mnist_cnn's two convolutions (conv1 reads 1 channel: a plain layout), a strided padded
     * ResNet one, a grouped one */
    test_conv((rn_cpu_conv_desc){.n = 4, .ic = 1, .ih = 28, .iw = 28, .oc = 32, .kh = 3, .kw = 3,
                                 .sh = 1, .sw = 1, .oh = 26, .ow = 26, .bias = true},
              "conv 1->32 3x3");
    test_conv((rn_cpu_conv_desc){.n = 3, .ic = 32, .ih = 12, .iw = 12, .oc = 64, .kh = 3,
                                 .kw = 3, .sh = 1, .sw = 1, .oh = 10, .ow = 10, .bias = true},
              "conv 32->64 3x3");
    test_conv((rn_cpu_conv_desc){.n = 2, .ic = 16, .ih = 9, .iw = 9, .oc = 32, .kh = 3, .kw = 3,
                                 .sh = 2, .sw = 2, .ph = 1, .pw = 1, .oh = 5, .ow = 5},
              "conv 16->32 3x3 stride 2 pad 1");
    test_conv((rn_cpu_conv_desc){.n = 2, .ic = 8, .ih = 7, .iw = 7, .oc = 16, .kh = 3, .kw = 3,
                                 .sh = 1, .sw = 1, .ph = 1, .pw = 1, .oh = 7, .ow = 7,
                                 .groups = 4, .bias = true},
              "conv 8->16 3x3 groups 4");
    /* linear's three products (forward with bias, weight gradient, input gradient) at
     * mnist_cnn's fc1 shape, cut down, and a tiny one */
    for (int f32 = 0; f32 < 2; f32++) {
        test_gemm(!f32, false, true, 16, 128, 576, true);
        test_gemm(!f32, true, false, 128, 576, 16, false);
        test_gemm(!f32, false, false, 16, 576, 128, false);
        test_gemm(!f32, false, true, 1, 3, 1, true);
    }
    test_model();
    test_linear_layer();
    return rn_test_report("test_bf16");
}
