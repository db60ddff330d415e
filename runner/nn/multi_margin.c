/* Multi-class hinge loss over logits (N, K), mean over the batch (torch.nn.MultiMarginLoss with
 * p = 1 or 2, no weights): a loss on class indices only, which cannot take soft targets. */
#include "nn_internal.h"

#include "../../kernels/nn_elem.h"

#include <math.h>

double rn_multi_margin(const rn_tensor *logits, const int32_t *labels, double margin, int p,
                       rn_tensor *dlogits, int64_t *correct)
{
    const int64_t n = logits->shape.d[0];
    const int64_t k = logits->shape.ndim > 1 ? rn_tensor_numel(logits) / (n ? n : 1) : 1;
    double total = 0.0;
    int64_t hits = 0;
    int bad = (p != 1 && p != 2) || !labels;
    float *g = dlogits ? dlogits->data : NULL;
    for (int64_t i = 0; i < n && !bad; i++) {
        const float *z = logits->data + i * k;
        float *gi = g ? g + i * k : NULL;
        int32_t y = labels[i];
        if (y < 0 || y >= k) {
            bad = 1;
            break;
        }
        hits += rn_row_argmax(z, k) == y;
        /* the row math is kernels/nn_elem.h's, which the GPU runs too */
        total += rn_mm_row(z, k, y, margin, p, gi, (double)n);
    }
    if (correct) *correct = hits;
    if (bad || n == 0) return NAN;
    return total / (double)n;
}
