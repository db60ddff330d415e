/* batch_norm2d: names and PyTorch's initial values; train-mode output against the closed form
 * in double; the running-stat update (unbiased variance, momentum) and num_batches_tracked; eval
 * mode uses the running stats; input, weight and bias gradients against central finite
 * differences in train and eval mode; errors; the same bits at 1, 2 and 3 threads, in both
 * layouts, with and without a folded ReLU (the sums run per part of the batch, in an order that
 * does not follow the thread count); and the input gradient written in bf16 (rn_layer.dx_bf16)
 * equal to the float one rounded by rn_bf16_from_f32, NaNs included. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../kernels/amp_elem.h"
#include "nn_gradcheck.h"

enum { N = 3, C = 4, H = 3, W = 5, M = N * H * W };

/* per channel: batch mean and biased variance, in double */
static void channel_stats(const float *x, int64_t ch, double *mean, double *var)
{
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < H * W; j++) s += x[(i * C + ch) * H * W + j];
    *mean = s / M;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < H * W; j++) {
            double d = x[(i * C + ch) * H * W + j] - *mean;
            ss += d * d;
        }
    *var = ss / M;
}

/* Forward (train) and backward of a 20x32x7x5 batch (parts of 2 and 3 samples, a plane of 35:
 * the lanes' tail) at `threads` threads: y, dx, dgamma, dbeta and the running stats, in order.
 * With dx16, dx is written in bf16, in the first half of its floats' place. With nan, dy holds
 * quiet NaNs with every payload bit set (0x7fffffff: rounded as a number, it would carry into
 * the sign, giving -0) in five places and +Inf in one; each one the folded ReLU lets through
 * makes its channel's sums, so its whole gradient, NaN. */
static float *run_at(int threads, bool blocked, bool relu, bool dx16, bool nan)
{
    enum { TN = 20, TC = 32, TH = 7, TW = 5 };
    const int64_t n = (int64_t)TN * TC * TH * TW;
    char err[256];
    rn_layer *l = rn_batchnorm2d_create("bn", TC, 1e-5, 0.1, err, sizeof err);
    rn_shape s = rn_shape_make(4, (int64_t[]){TN, TC, TH, TW}), out;
    l->in_blocked = l->out_blocked = blocked;
    l->relu_out = relu;
    l->dx_bf16 = dx16;
    float *res = malloc((size_t)(2 * n + 4 * TC) * sizeof *res);
    rn_tensor x, y, dy, dx;
    if (!l || !res || l->ops->setup(l, &s, &out, err, sizeof err) || rn_tensor_alloc(&x, s) ||
        rn_tensor_alloc(&y, s) || rn_tensor_alloc(&dy, s) || rn_tensor_alloc(&dx, s)) {
        CHECK(!"set up");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) {
        x.data[i] = (float)(i * 7919 % 1009) / 300.0f - 1.0f; /* a mean off 0 */
        dy.data[i] = (float)(i * 104729 % 997) / 500.0f - 1.0f;
    }
    if (nan) {
        const uint32_t payload = 0x7fffffffu;
        for (int64_t i = 3; i < 5 * 4999; i += 4999) memcpy(&dy.data[i], &payload, sizeof payload);
        dy.data[n / 2 + 40] = INFINITY;
    }
    for (int c = 0; c < TC; c++) {
        l->params[0].value->data[c] = 0.5f + (float)(c % 7) / 7.0f;
        l->params[1].value->data[c] = (float)(c % 5) / 5.0f - 0.5f;
    }
    omp_set_num_threads(threads);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    memcpy(res, y.data, (size_t)n * sizeof *res);
    memcpy(res + n, dx.data, (size_t)n * sizeof *res);
    for (int p = 0; p < 4; p++) {
        const float *v = p < 2 ? l->params[p].grad->data : l->params[p].value->data;
        memcpy(res + 2 * n + p * TC, v, TC * sizeof *res);
    }
    rn_tensor_free(&x), rn_tensor_free(&y), rn_tensor_free(&dy), rn_tensor_free(&dx);
    rn_layer_destroy(l);
    return res;
}

static void check_thread_counts(void)
{
    const size_t bytes = (size_t)(2 * 20 * 32 * 7 * 5 + 4 * 32) * sizeof(float);
    const int threads = omp_get_max_threads();
    for (int k = 0; k < 4; k++) {
        bool blocked = k & 1, relu = k & 2;
        float *one = run_at(1, blocked, relu, false, false),
              *two = run_at(2, blocked, relu, false, false),
              *three = run_at(3, blocked, relu, false, false);
        CHECK(memcmp(one, two, bytes) == 0);
        CHECK(memcmp(one, three, bytes) == 0);
        free(one), free(two), free(three);
    }
    omp_set_num_threads(threads);
}

/* dx in bf16 is the float dx rounded by rn_bf16_from_f32, bit for bit, in both layouts (the
 * vector store_bf16 and the scalar tail), and each NaN stays a NaN; the rest of the results do
 * not change. */
static void check_bf16_dx(void)
{
    const int64_t n = 20 * 32 * 7 * 5;
    for (int k = 0; k < 4; k++) {
        bool blocked = k & 1, relu = k & 2;
        float *f = run_at(2, blocked, relu, false, true), *h = run_at(2, blocked, relu, true, true);
        int64_t same = 0, nans = 0, nan_kept = 0;
        for (int64_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, (const char *)(h + n) + i * sizeof b, sizeof b);
            same += b == rn_bf16_from_f32(f[n + i]);
            if (isnan(f[n + i])) {
                nans++;
                nan_kept += (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0;
            }
        }
        printf("bf16 dx, %s%s: %lld of %lld as rn_bf16_from_f32, %lld NaNs kept of %lld\n",
               blocked ? "blocked" : "plain", relu ? ", ReLU" : "", (long long)same,
               (long long)n, (long long)nan_kept, (long long)nans);
        CHECK(same == n);
        CHECK(nans >= 7 * 5 * 20 && nan_kept == nans); /* at least one whole channel */
        CHECK(memcmp(f, h, (size_t)n * sizeof *f) == 0);                 /* y */
        CHECK(memcmp(f + 2 * n, h + 2 * n, 4 * 32 * sizeof *f) == 0); /* grads, stats */
        free(f), free(h);
    }
}

int main(void)
{
    char err[256];
    rn_layer *l = rn_batchnorm2d_create("bn1", C, 1e-5, 0.1, err, sizeof err);
    CHECK(l != NULL);
    CHECK(l->n_params == 4);
    const char *names[4] = {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"};
    const float init[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    for (int p = 0; p < 4; p++) {
        CHECK(strcmp(l->params[p].name, names[p]) == 0);
        CHECK((l->params[p].grad != NULL) == (p < 2)); /* running stats are buffers */
        for (int c = 0; c < C; c++) CHECK(l->params[p].value->data[c] == init[p]);
    }
    CHECK(rn_batchnorm2d_num_batches_tracked(l) == 0);

    rn_shape in = rn_shape_make(4, (int64_t[]){N, C, H, W}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(rn_shape_equal(&in, &out));
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 21, -2.0, 3.0);
    float *gamma = l->params[0].value->data, *beta = l->params[1].value->data;
    float *rm = l->params[2].value->data, *rv = l->params[3].value->data;
    gc_fill(gamma, C, 22, 0.5, 1.5);
    gc_fill(beta, C, 23, -0.5, 0.5);
    gc_fill(rm, C, 24, -0.5, 0.5);
    gc_fill(rv, C, 25, 0.5, 2.0);
    float rm0[C], rv0[C];
    memcpy(rm0, rm, sizeof rm0);
    memcpy(rv0, rv, sizeof rv0);

    /* train: y = (x - mean) / sqrt(var + eps) gamma + beta, |diff| <= 1e-5 + 1e-5 |ref|;
     * running = 0.9 running + 0.1 batch, the variance unbiased: |diff| <= 1e-6 + 1e-6 |ref| */
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(rn_batchnorm2d_num_batches_tracked(l) == 1);
    for (int c = 0; c < C; c++) {
        double mean, var;
        channel_stats(x.data, c, &mean, &var);
        int bad = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < H * W; j++) {
                int64_t at = (i * C + c) * H * W + j;
                double ref = (x.data[at] - mean) / sqrt(var + 1e-5) * gamma[c] + beta[c];
                bad += !(fabs(y.data[at] - ref) <= 1e-5 + 1e-5 * fabs(ref));
            }
        CHECK(bad == 0);
        CHECK_NEAR(rm[c], 0.9 * rm0[c] + 0.1 * mean, 1e-6, 1e-6);
        CHECK_NEAR(rv[c], 0.9 * rv0[c] + 0.1 * var * M / (M - 1), 1e-6, 1e-6);
    }

    /* eval: the running stats, which do not move; num_batches_tracked neither */
    float rm1[C], rv1[C];
    memcpy(rm1, rm, sizeof rm1);
    memcpy(rv1, rv, sizeof rv1);
    CHECK(l->ops->forward(l, &x, &y, false) == 0);
    CHECK(rn_batchnorm2d_num_batches_tracked(l) == 1);
    CHECK(memcmp(rm1, rm, sizeof rm1) == 0 && memcmp(rv1, rv, sizeof rv1) == 0);
    int bad = 0;
    for (int64_t at = 0; at < rn_tensor_numel(&x); at++) {
        int c = (int)(at / (H * W) % C);
        double ref = (x.data[at] - rm[c]) / sqrt(rv[c] + 1e-5) * gamma[c] + beta[c];
        bad += !(fabs(y.data[at] - ref) <= 1e-5 + 1e-5 * fabs(ref));
    }
    CHECK(bad == 0);

    /* gradients (nonlinear in x and gamma in train mode): eps 1e-2, where float rounding and the
     * central difference's truncation both stay under 1e-4; |diff| <= 5e-4 + 1e-3 |numeric| */
    CHECK(gradcheck_layer("batch_norm2d train", l, &x, &y, true, true, 1e-2, 5e-4, 1e-3) == 0);
    CHECK(gradcheck_layer("batch_norm2d eval", l, &x, &y, false, true, 1e-2, 5e-4, 1e-3) == 0);
    /* the train-mode input gradient sums to 0 per channel (the mean is subtracted) */
    {
        rn_tensor dy = y, dx;
        rn_tensor_alloc(&dx, in);
        dy.data = malloc(sizeof(float) * (size_t)rn_tensor_numel(&y));
        gc_fill(dy.data, rn_tensor_numel(&y), 31, -1.0, 1.0);
        CHECK(l->ops->forward(l, &x, &y, true) == 0);
        CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < H * W; j++) s += dx.data[(i * C + c) * H * W + j];
            CHECK_NEAR(s, 0.0, 1e-5, 0.0);
        }
        free(dy.data);
        rn_tensor_free(&dx);
    }
    CHECK(rn_batchnorm2d_set_num_batches_tracked(l, 7) == 0);
    CHECK(rn_batchnorm2d_num_batches_tracked(l) == 7);

    /* one value per channel cannot be normalised in train mode (PyTorch refuses too) */
    rn_tensor x1 = x, y1 = y;
    x1.shape = y1.shape = rn_shape_make(4, (int64_t[]){1, C, 1, 1});
    CHECK(l->ops->forward(l, &x1, &y1, true) != 0);
    CHECK(strstr(l->err, "more than 1 value per channel") != NULL);
    CHECK(l->ops->forward(l, &x1, &y1, false) == 0);

    /* errors name the layer and the shapes */
    rn_shape bad_in = rn_shape_make(4, (int64_t[]){N, 3, H, W});
    CHECK(l->ops->setup(l, &bad_in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "batch_norm2d bn1: expected input 4xHxW, got 3x3x5") == 0);
    CHECK(rn_batchnorm2d_create("bn", 0, 1e-5, 0.1, err, sizeof err) == NULL);
    CHECK(strstr(err, "batch_norm2d bn: expected") == err);
    CHECK(rn_batchnorm2d_create("bn", 4, 0.0, 0.1, err, sizeof err) == NULL);
    CHECK(rn_batchnorm2d_create("bn", 4, 1e-5, 1.5, err, sizeof err) == NULL);
    rn_layer *relu = rn_relu_create();
    CHECK(rn_batchnorm2d_num_batches_tracked(relu) == -1);
    CHECK(rn_batchnorm2d_set_num_batches_tracked(relu, 1) != 0);
    rn_layer_destroy(relu);

    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    check_thread_counts();
    check_bf16_dx();
    return rn_test_report("test_batchnorm2d");
}
