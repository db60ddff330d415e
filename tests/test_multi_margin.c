/* multi_margin against torch.nn.MultiMarginLoss's definition in double (p = 1 and 2, margins 1
 * and 0.5): the loss within 1e-12 relative, dlogits against central finite differences away from
 * the hinges' kinks, gradient rows that sum to 0, argmax hits, and NaN for a bad label or p. */
#include <string.h>

#include "nn_gradcheck.h"

enum { N = 5, K = 4 };

/* mean_i sum_{j != y_i} max(0, margin - z_iy + z_ij)^p / K */
static double ref_loss(const float *z, const int32_t *y, double margin, int p)
{
    double total = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++) {
            if (j == y[i]) continue;
            double d = margin - (double)z[i * K + y[i]] + (double)z[i * K + j];
            if (d > 0) total += (p == 1 ? d : d * d) / K;
        }
    return total / N;
}

/* Whether some hinge of row i lies within eps of its kink (finite differences straddle it). */
static int near_kink(const float *z, const int32_t *y, double margin, int i, double eps)
{
    for (int j = 0; j < K; j++)
        if (j != y[i] && fabs(margin - (double)z[i * K + y[i]] + (double)z[i * K + j]) < 3 * eps)
            return 1;
    return 0;
}

static void check(rn_tensor *z, const int32_t *y, double margin, int p)
{
    rn_tensor g;
    rn_tensor_alloc(&g, z->shape);
    double loss = rn_multi_margin(z, y, margin, p, &g, NULL);
    CHECK_NEAR(loss, ref_loss(z->data, y, margin, p), 1e-15, 1e-12);
    CHECK(loss > 0.0);
    int bad = 0, compared = 0;
    for (int i = 0; i < N * K; i++) {
        if (near_kink(z->data, y, margin, i / K, 1e-3)) continue;
        float keep = z->data[i];
        z->data[i] = keep + 1e-3f;
        double lp = rn_multi_margin(z, y, margin, p, NULL, NULL);
        z->data[i] = keep - 1e-3f;
        double lm = rn_multi_margin(z, y, margin, p, NULL, NULL);
        z->data[i] = keep;
        double num = (lp - lm) / ((double)(keep + 1e-3f) - (double)(keep - 1e-3f));
        compared++;
        /* |diff| <= 1e-6 + 1e-4 |numeric| */
        if (!(fabs(g.data[i] - num) <= 1e-6 + 1e-4 * fabs(num))) {
            fprintf(stderr, "p %d margin %g: dlogits[%d] = %.9g, finite difference %.9g\n", p,
                    margin, i, g.data[i], num);
            bad++;
        }
    }
    CHECK(bad == 0);
    CHECK(compared >= N * K / 2);
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += g.data[i * K + j];
        CHECK_NEAR(s, 0.0, 1e-7, 0.0);
    }
    rn_tensor_free(&g);
}

int main(void)
{
    rn_tensor z;
    rn_tensor_alloc(&z, rn_shape_make(2, (int64_t[]){N, K}));
    gc_fill(z.data, N * K, 21, -1.5, 1.5);
    int32_t y[N] = {0, 3, 1, 1, 2};
    check(&z, y, 1.0, 1);
    check(&z, y, 1.0, 2);
    check(&z, y, 0.5, 1);
    check(&z, y, 0.5, 2);

    /* a row beyond every margin costs nothing and gets no gradient */
    memset(z.data, 0, sizeof(float) * N * K);
    for (int i = 0; i < N; i++) z.data[i * K + y[i]] = 3.0f;
    int64_t hits = -1;
    rn_tensor g;
    rn_tensor_alloc(&g, z.shape);
    CHECK(rn_multi_margin(&z, y, 1.0, 2, &g, &hits) == 0.0);
    CHECK(hits == N);
    int zero = 1;
    for (int i = 0; i < N * K; i++) zero &= g.data[i] == 0.0f;
    CHECK(zero);
    /* one margin violated by exactly 0.25 in row 0 (p = 1): loss 0.25 / K / N */
    z.data[1] = 3.0f - 0.75f;
    CHECK_NEAR(rn_multi_margin(&z, y, 1.0, 1, &g, &hits), 0.25 / K / N, 1e-12, 0.0);
    CHECK_NEAR(g.data[1], 1.0 / K / N, 1e-9, 0.0);
    CHECK_NEAR(g.data[0], -1.0 / K / N, 1e-9, 0.0);

    int32_t bad_label[N] = {0, 4, 1, 1, 2};
    CHECK(isnan(rn_multi_margin(&z, bad_label, 1.0, 1, NULL, NULL)));
    CHECK(isnan(rn_multi_margin(&z, y, 1.0, 3, NULL, NULL)));
    CHECK(isnan(rn_multi_margin(&z, NULL, 1.0, 1, NULL, NULL)));
    rn_tensor_free(&g);
    rn_tensor_free(&z);
    return rn_test_report("test_multi_margin");
}
