/* Softmax cross-entropy over logits (N, K), mean over the batch. */
#include "nn_internal.h"

#include <math.h>

/* A label outside [0, K) makes the loss NaN (the data reader is expected to have checked). */
double rn_cross_entropy(const rn_tensor *logits, const int32_t *labels, rn_tensor *dlogits,
                        int64_t *correct)
{
    const int64_t n = logits->shape.d[0];
    const int64_t k = logits->shape.ndim > 1 ? rn_tensor_numel(logits) / (n ? n : 1) : 1;
    double total = 0.0;
    int64_t hits = 0;
    int bad = 0;
    float *g = dlogits ? dlogits->data : NULL;
#pragma omp parallel for reduction(+ : total, hits, bad) if (n * k > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits->data + i * k;
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (z[j] > z[best]) best = j;
        /* log-softmax shifted by the max, so exp never overflows */
        double mx = z[best], sum = 0.0;
        for (int64_t j = 0; j < k; j++) sum += exp((double)z[j] - mx);
        double lse = mx + log(sum);
        int32_t y = labels[i];
        if (y < 0 || y >= k) {
            bad++;
            if (g)
                for (int64_t j = 0; j < k; j++) g[i * k + j] = 0.0f;
            continue;
        }
        total += lse - (double)z[y];
        hits += best == y;
        if (g) {
            for (int64_t j = 0; j < k; j++)
                g[i * k + j] = (float)((exp((double)z[j] - lse) - (j == y)) / (double)n);
        }
    }
    if (correct) *correct = hits;
    if (bad || n == 0) return NAN;
    return total / (double)n;
}
