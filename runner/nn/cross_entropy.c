/* Softmax cross-entropy over logits (N, K), mean over the batch, with hard or soft targets and
 * label smoothing (torch.nn.functional.cross_entropy). */
#include "nn_internal.h"

#include "../../kernels/nn_elem.h"

#include <math.h>

/* A label outside [0, K) makes the loss NaN (the data reader is expected to have checked). The
 * row math is kernels/nn_elem.h's, which the GPU runs too. */
double rn_cross_entropy2(const rn_tensor *logits, const int32_t *labels, const float *soft_targets,
                         double label_smoothing, rn_tensor *dlogits, int64_t *correct)
{
    const int64_t n = logits->shape.d[0];
    const int64_t k = logits->shape.ndim > 1 ? rn_tensor_numel(logits) / (n ? n : 1) : 1;
    const double ls = label_smoothing;
    const float *soft = soft_targets;
    double total = 0.0;
    int64_t hits = 0;
    int bad = !(ls >= 0.0 && ls <= 1.0) || (!labels && !soft);
    float *g = dlogits ? dlogits->data : NULL;
#pragma omp parallel for reduction(+ : total, hits, bad) if (n * k > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits->data + i * k;
        int32_t y = labels ? labels[i] : -1;
        int64_t best = rn_row_argmax(z, k);
        if (labels) hits += best == y;
        else if (soft) hits += best == rn_row_argmax(soft + i * k, k);
        double li = rn_ce_row(z, k, best, y, soft ? soft + i * k : NULL, ls,
                              g ? g + i * k : NULL, (double)n);
        if (isnan(li) && !soft) bad++;
        else total += li;
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
