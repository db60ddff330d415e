/* cross_entropy: the loss against a closed form in double, its gradient against central finite
 * differences of the returned loss, stability for huge logits, argmax hits, bad labels. */
#include <float.h>
#include <string.h>

#include "nn_gradcheck.h"

int main(void)
{
    enum { N = 4, K = 5 };
    rn_tensor z, g;
    rn_tensor_alloc(&z, rn_shape_make(2, (int64_t[]){N, K}));
    rn_tensor_alloc(&g, z.shape);
    gc_fill(z.data, N * K, 8, -3.0, 3.0);
    int32_t labels[N] = {0, 4, 2, 2};

    /* loss = mean_i (log sum_j exp z_ij - z_i,y_i), |diff| <= 1e-12 + 1e-9 |ref| */
    double ref = 0.0;
    int64_t ref_hits = 0;
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        int best = 0;
        for (int j = 0; j < K; j++) {
            s += exp((double)z.data[i * K + j]);
            if (z.data[i * K + j] > z.data[i * K + best]) best = j;
        }
        ref += log(s) - z.data[i * K + labels[i]];
        ref_hits += best == labels[i];
    }
    ref /= N;
    int64_t hits = -1;
    double loss = rn_cross_entropy(&z, labels, &g, &hits);
    CHECK_NEAR(loss, ref, 1e-12, 1e-9);
    CHECK(hits == ref_hits);

    /* dlogits vs central differences of the loss, eps 1e-3: |diff| <= 1e-6 + 1e-4 |numeric| */
    int bad = 0;
    for (int i = 0; i < N * K; i++) {
        float keep = z.data[i];
        z.data[i] = keep + 1e-3f;
        double lp = rn_cross_entropy(&z, labels, NULL, NULL);
        z.data[i] = keep - 1e-3f;
        double lm = rn_cross_entropy(&z, labels, NULL, NULL);
        z.data[i] = keep;
        double h = (double)(keep + 1e-3f) - (double)(keep - 1e-3f);
        double num = (lp - lm) / h;
        if (!(fabs(g.data[i] - num) <= 1e-6 + 1e-4 * fabs(num))) {
            fprintf(stderr, "dlogits[%d] = %.9g, finite difference %.9g\n", i, g.data[i], num);
            bad++;
        }
    }
    CHECK(bad == 0);
    /* each row of the gradient sums to 0 */
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += g.data[i * K + j];
        CHECK_NEAR(s, 0.0, 1e-7, 0.0);
    }

    /* stable for huge logits: row 0 = (1000, 0, ...), label 0 -> loss ~ 4 e^-1000 ~ 0 */
    for (int j = 0; j < N * K; j++) z.data[j] = 0.0f;
    z.data[0] = 1000.0f;
    z.data[K + 1] = -1000.0f;
    labels[1] = 1;
    loss = rn_cross_entropy(&z, labels, &g, &hits);
    CHECK(isfinite(loss));
    /* rows 2, 3: uniform -> log 5; row 1: 1000 + log(4 + e^-1000) */
    CHECK_NEAR(loss, (0.0 + (1000.0 + log(4.0)) + 2 * log(5.0)) / N, 1e-9, 1e-9);
    CHECK_NEAR(g.data[0], 0.0, 1e-12, 0.0);
    CHECK_NEAR(g.data[K + 1], -1.0 / N, 1e-7, 0.0);

    /* a label out of range gives NaN */
    labels[3] = K;
    CHECK(isnan(rn_cross_entropy(&z, labels, NULL, NULL)));
    labels[3] = -1;
    CHECK(isnan(rn_cross_entropy(&z, labels, &g, NULL)));
    rn_tensor_free(&z);
    rn_tensor_free(&g);
    return rn_test_report("test_cross_entropy");
}
