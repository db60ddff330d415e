/* Element math of the losses and of dropout, shared by the CPU layers (runner/nn/cross_entropy.c,
 * multi_margin.c, dropout.c) and the CUDA kernels (kernels/nn_kernels.cu): one row of softmax
 * cross-entropy with hard or soft targets and label smoothing (F.cross_entropy), one row of the
 * multi-class hinge loss (nn.MultiMarginLoss), and one element of dropout's counter-based mask. */
#ifndef RN_NN_ELEM_H
#define RN_NN_ELEM_H

#include <math.h>
#include <stdint.h>

#include <runner/plugin.h>

#include "rn_hd.h"

/* The first index of the row's largest value (torch.argmax's tie rule). */
RN_HD int64_t rn_row_argmax(const float *z, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

/* One row of logits z[0..k) whose largest entry is z[best] (rn_row_argmax, which the caller
 * also needs for the accuracy): its loss (NaN for a label outside [0, k) without soft targets),
 * and, when g is not NULL, its gradient divided by n (the batch mean's). Soft targets t replace
 * the label when given; either way t' = (1 - ls) t + ls / k:
 *   loss = -sum t' log softmax(z),   dz = (softmax(z) sum(t') - t') / n.
 * log-softmax is shifted by the max, so exp never overflows. */
RN_HD double rn_ce_row(const float *z, int64_t k, int64_t best, int32_t label, const float *t,
                       double ls, float *g, double n)
{
    const double off = ls / (double)k, on = 1.0 - ls;
    double mx = z[best], sum = 0.0;
    for (int64_t j = 0; j < k; j++) sum += exp((double)z[j] - mx);
    double lse = mx + log(sum);
    if (t) {
        double tsum = 0.0, li = 0.0;
        for (int64_t j = 0; j < k; j++) {
            double tj = on * t[j] + off;
            tsum += tj;
            li += tj * (lse - (double)z[j]);
        }
        if (g)
            for (int64_t j = 0; j < k; j++)
                g[j] = (float)((exp((double)z[j] - lse) * tsum - (on * t[j] + off)) / n);
        return li;
    }
    if (label < 0 || label >= k) {
        if (g)
            for (int64_t j = 0; j < k; j++) g[j] = 0.0f;
        return NAN;
    }
    /* (1 - ls) (-log p_y) + ls / K sum_j (-log p_j) */
    double li = on * (lse - (double)z[label]);
    if (ls > 0.0) {
        double all = 0.0;
        for (int64_t j = 0; j < k; j++) all += lse - (double)z[j];
        li += off * all;
    }
    if (g)
        for (int64_t j = 0; j < k; j++)
            g[j] = (float)((exp((double)z[j] - lse) - (j == label ? on : 0.0) - off) / n);
    return li;
}

/* One row of logits z[0..k) with label y in [0, k) (the caller checks it) of the multi-class hinge
 * loss with p = 1 or 2 (the caller checks it): the row's loss
 *   sum_{j != y} max(0, margin - z_y + z_j)^p / k
 * and, when g is not NULL, its gradient divided by n (the batch mean's): for each active hinge
 * (p == 1 ? 1 : 2 d) / k on z_j and minus the same on z_y; 0 elsewhere. Sums in double. */
RN_HD double rn_mm_row(const float *z, int64_t k, int32_t y, double margin, int p, float *g,
                       double n)
{
    double li = 0.0, gy = 0.0;
    for (int64_t j = 0; j < k; j++) {
        double d = j == y ? 0.0 : margin - (double)z[y] + (double)z[j];
        double gj = 0.0;
        if (d > 0.0) {
            li += p == 1 ? d : d * d;
            gj = (p == 1 ? 1.0 : 2.0 * d) / (double)k;
            gy -= gj;
        }
        if (g) g[j] = (float)(gj / n);
    }
    if (g) g[y] = (float)(gy / n);
    return li / (double)k;
}

/* Dropout's element i under `key` (one key per layer and train call): kept with probability
 * 1 - p, scaled by `scale` = 1/(1 - p). Returns whether it was kept. */
RN_HD int rn_dropout_elem(uint64_t key, int64_t i, double p, float scale, float x, float *y)
{
    int keep = rn_uniform(key, (uint64_t)i) >= p;
    *y = keep ? x * scale : 0.0f;
    return keep;
}

#endif
