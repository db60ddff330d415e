/* cross_entropy2: label smoothing and soft targets. The loss against the closed form in double,
 * dlogits against central finite differences of the returned loss in each of the four modes,
 * one-hot soft targets equal hard labels, label smoothing on mixed targets equals timm's
 * mixup_target + SoftTargetCrossEntropy, argmax hits, and the NaN cases. */
#include <string.h>

#include "nn_gradcheck.h"

enum { N = 4, K = 5 };

/* mean_i sum_j -t'_ij log softmax(z_i)_j, t' = (1 - ls) t + ls / K, t one-hot when soft is NULL */
static double ref_loss(const float *z, const int32_t *labels, const float *soft, double ls)
{
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += exp((double)z[i * K + j]);
        for (int j = 0; j < K; j++) {
            double t = soft ? soft[i * K + j] : (double)(j == labels[i]);
            t = (1.0 - ls) * t + ls / K;
            total += -t * ((double)z[i * K + j] - log(s));
        }
    }
    return total / N;
}

static void check_mode(rn_tensor *z, const int32_t *labels, const float *soft, double ls)
{
    char what[80];
    snprintf(what, sizeof what, "%s targets, label_smoothing %g", soft ? "soft" : "hard", ls);
    rn_tensor g;
    rn_tensor_alloc(&g, z->shape);
    /* |diff| <= 1e-12 + 1e-9 |ref| */
    double loss = rn_cross_entropy2(z, soft ? NULL : labels, soft, ls, &g, NULL);
    CHECK_NEAR(loss, ref_loss(z->data, labels, soft, ls), 1e-12, 1e-9);
    /* without dlogits the loss is the same */
    CHECK(rn_cross_entropy2(z, soft ? NULL : labels, soft, ls, NULL, NULL) == loss);
    /* eps 1e-3: |diff| <= 1e-6 + 1e-4 |numeric| */
    int bad = 0;
    for (int i = 0; i < N * K; i++) {
        float keep = z->data[i];
        z->data[i] = keep + 1e-3f;
        double lp = rn_cross_entropy2(z, soft ? NULL : labels, soft, ls, NULL, NULL);
        z->data[i] = keep - 1e-3f;
        double lm = rn_cross_entropy2(z, soft ? NULL : labels, soft, ls, NULL, NULL);
        z->data[i] = keep;
        double h = (double)(keep + 1e-3f) - (double)(keep - 1e-3f);
        double num = (lp - lm) / h;
        if (!(fabs(g.data[i] - num) <= 1e-6 + 1e-4 * fabs(num))) {
            fprintf(stderr, "%s: dlogits[%d] = %.9g, finite difference %.9g\n", what, i,
                    g.data[i], num);
            bad++;
        }
    }
    CHECK(bad == 0);
    /* targets that sum to 1 give gradient rows that sum to 0 */
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += g.data[i * K + j];
        CHECK_NEAR(s, 0.0, 1e-7, 0.0);
    }
    rn_tensor_free(&g);
}

int main(void)
{
    rn_tensor z, g1, g2;
    rn_tensor_alloc(&z, rn_shape_make(2, (int64_t[]){N, K}));
    rn_tensor_alloc(&g1, z.shape);
    rn_tensor_alloc(&g2, z.shape);
    gc_fill(z.data, N * K, 8, -3.0, 3.0);
    int32_t labels[N] = {0, 4, 2, 2};
    float soft[N * K], onehot[N * K] = {0};
    gc_fill(soft, N * K, 9, 0.0, 1.0);
    for (int i = 0; i < N; i++) { /* rows of probabilities */
        double s = 0.0;
        for (int j = 0; j < K; j++) s += soft[i * K + j];
        for (int j = 0; j < K; j++) soft[i * K + j] = (float)(soft[i * K + j] / s);
        onehot[i * K + labels[i]] = 1.0f;
    }
    check_mode(&z, labels, NULL, 0.0);
    check_mode(&z, labels, NULL, 0.1);
    check_mode(&z, labels, soft, 0.0);
    check_mode(&z, labels, soft, 0.1);
    check_mode(&z, labels, NULL, 1.0); /* all uniform */

    /* one-hot soft targets are the hard labels, smoothing included: |diff| <= 1e-12 */
    for (int m = 0; m < 2; m++) {
        double ls = m ? 0.2 : 0.0;
        double a = rn_cross_entropy2(&z, labels, NULL, ls, &g1, NULL);
        double b = rn_cross_entropy2(&z, NULL, onehot, ls, &g2, NULL);
        CHECK_NEAR(a, b, 1e-12, 0.0);
        int same = 1;
        for (int i = 0; i < N * K; i++) same &= fabsf(g1.data[i] - g2.data[i]) <= 1e-7f;
        CHECK(same);
    }
    /* Label smoothing on mixed targets is timm's: mixup_target(y, K, lam, smoothing) mixes
     * smoothed one-hots (off = ls/K, on = 1 - ls + off) of y and its partner, and
     * SoftTargetCrossEntropy takes them as they are; here the mixture of plain one-hots with the
     * loss's label_smoothing. Same loss within 1e-12, same gradient within 1e-7. */
    {
        const double ls = 0.1, lam = 0.3;
        const int32_t partner[N] = {4, 0, 2, 1};
        float mixed[N * K], timm[N * K];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < K; j++) {
                double off = ls / K, on = 1.0 - ls + off;
                double y1 = j == labels[i] ? on : off, y2 = j == partner[i] ? on : off;
                timm[i * K + j] = (float)(y1 * lam + y2 * (1.0 - lam));
                mixed[i * K + j] = (float)(lam * (j == labels[i]) + (1.0 - lam) * (j == partner[i]));
            }
        double a = rn_cross_entropy2(&z, labels, mixed, ls, &g1, NULL);
        double b = rn_cross_entropy2(&z, labels, timm, 0.0, &g2, NULL);
        CHECK_NEAR(a, b, 1e-12, 1e-7);
        int same = 1;
        for (int i = 0; i < N * K; i++) same &= fabsf(g1.data[i] - g2.data[i]) <= 1e-7f;
        CHECK(same);
    }
    /* rn_cross_entropy is cross_entropy2 with hard labels and no smoothing */
    int64_t h1 = -1, h2 = -1;
    CHECK(rn_cross_entropy(&z, labels, &g1, &h1) ==
          rn_cross_entropy2(&z, labels, NULL, 0.0, &g2, &h2));
    CHECK(h1 == h2 && memcmp(g1.data, g2.data, sizeof(float) * N * K) == 0);

    /* correct: argmax == label; with soft targets only, argmax == the target's argmax */
    for (int j = 0; j < N * K; j++) z.data[j] = 0.0f;
    z.data[0 * K + 0] = 5.0f; /* hit on label 0 */
    z.data[1 * K + 3] = 5.0f; /* miss (label 4) */
    z.data[2 * K + 2] = 5.0f; /* hit */
    z.data[3 * K + 1] = 5.0f; /* miss */
    int64_t hits = -1;
    rn_cross_entropy2(&z, labels, NULL, 0.1, NULL, &hits);
    CHECK(hits == 2);
    float st[N * K] = {0};
    st[0 * K + 0] = 0.7f, st[0 * K + 1] = 0.3f; /* argmax 0: hit */
    st[1 * K + 3] = 0.6f, st[1 * K + 4] = 0.4f; /* argmax 3: hit */
    st[2 * K + 0] = 0.5f, st[2 * K + 2] = 0.4f; /* argmax 0: miss */
    st[3 * K + 1] = 0.9f, st[3 * K + 0] = 0.1f; /* argmax 1: hit */
    rn_cross_entropy2(&z, NULL, st, 0.0, NULL, &hits);
    CHECK(hits == 3);
    /* both given: the soft target is the loss, the labels count the hits */
    rn_cross_entropy2(&z, labels, st, 0.0, NULL, &hits);
    CHECK(hits == 2);

    /* NaN: a label out of range, label_smoothing outside [0, 1], no target at all */
    labels[3] = K;
    CHECK(isnan(rn_cross_entropy2(&z, labels, NULL, 0.1, &g1, NULL)));
    labels[3] = 1;
    CHECK(isnan(rn_cross_entropy2(&z, labels, NULL, -0.1, NULL, NULL)));
    CHECK(isnan(rn_cross_entropy2(&z, labels, NULL, 1.5, NULL, NULL)));
    CHECK(isnan(rn_cross_entropy2(&z, labels, NULL, NAN, NULL, NULL)));
    CHECK(isnan(rn_cross_entropy2(&z, NULL, NULL, 0.0, NULL, NULL)));
    CHECK(isfinite(rn_cross_entropy2(&z, labels, NULL, 0.1, NULL, NULL)));
    rn_tensor_free(&z);
    rn_tensor_free(&g1);
    rn_tensor_free(&g2);
    return rn_test_report("test_cross_entropy2");
}
