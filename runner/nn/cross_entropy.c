/* Softmax cross-entropy over logits (N, K), mean over the batch, with hard or soft targets and
 * label smoothing (torch.nn.functional.cross_entropy). */
#include "nn_internal.h"

#include <math.h>

static int64_t row_argmax(const float *z, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

/* A label outside [0, K) makes the loss NaN (the data reader is expected to have checked). */
double rn_cross_entropy2(const rn_tensor *logits, const int32_t *labels, const float *soft_targets,
                         double label_smoothing, rn_tensor *dlogits, int64_t *correct)
{
    const int64_t n = logits->shape.d[0];
    const int64_t k = logits->shape.ndim > 1 ? rn_tensor_numel(logits) / (n ? n : 1) : 1;
    const double ls = label_smoothing, off = ls / (double)k, on = 1.0 - ls;
    const float *soft = soft_targets;
    double total = 0.0;
    int64_t hits = 0;
    int bad = !(ls >= 0.0 && ls <= 1.0) || (!labels && !soft);
    float *g = dlogits ? dlogits->data : NULL;
#pragma omp parallel for reduction(+ : total, hits, bad) if (n * k > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits->data + i * k;
        float *gi = g ? g + i * k : NULL;
        int64_t best = row_argmax(z, k);
        /* log-softmax shifted by the max, so exp never overflows */
        double mx = z[best], sum = 0.0;
        for (int64_t j = 0; j < k; j++) sum += exp((double)z[j] - mx);
        double lse = mx + log(sum);
        int32_t y = labels ? labels[i] : -1;
        if (labels) hits += best == y;
        else if (soft) hits += best == row_argmax(soft + i * k, k);
        if (soft) {
            /* t' = (1 - ls) t + ls / K; loss = -sum t' log p; dz = p sum(t') - t' */
            const float *t = soft + i * k;
            double tsum = 0.0, li = 0.0;
            for (int64_t j = 0; j < k; j++) {
                double tj = on * t[j] + off;
                tsum += tj;
                li += tj * (lse - (double)z[j]);
            }
            total += li;
            if (gi)
                for (int64_t j = 0; j < k; j++)
                    gi[j] = (float)((exp((double)z[j] - lse) * tsum - (on * t[j] + off)) /
                                    (double)n);
            continue;
        }
        if (!labels || y < 0 || y >= k) {
            bad++;
            if (gi)
                for (int64_t j = 0; j < k; j++) gi[j] = 0.0f;
            continue;
        }
        /* (1 - ls) (-log p_y) + ls / K sum_j (-log p_j) */
        double li = on * (lse - (double)z[y]);
        if (ls > 0.0) {
            double all = 0.0;
            for (int64_t j = 0; j < k; j++) all += lse - (double)z[j];
            li += off * all;
        }
        total += li;
        if (gi)
            for (int64_t j = 0; j < k; j++)
                gi[j] = (float)((exp((double)z[j] - lse) - (j == y ? on : 0.0) - off) / (double)n);
    }
    if (correct) *correct = hits;
    if (bad || n == 0) return NAN;
    return total / (double)n;
}

double rn_cross_entropy(const rn_tensor *logits, const int32_t *labels, rn_tensor *dlogits,
                        int64_t *correct)
{
    return rn_cross_entropy2(logits, labels, NULL, 0.0, dlogits, correct);
}
