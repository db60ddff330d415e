/* fastai's learning-rate suggestions (fastai/callback/schedule.py: valley, steep, minimum) on a
 * smoothed loss curve; see lr_find.h. */
#include "lr_find.h"

#include <math.h>
#include <stdlib.h>

const char *const rn_suggestion_names[RN_SUGGESTIONS] = {"valley", "steep", "minimum"};

/* fastai's valley: lds[i] is the length of the longest strictly decreasing subsequence ending at
 * i; max_end the first index with the longest, max_start = max_end - lds[max_end]; the
 * suggestion is at max_start + int(len / 3) + int(len / 6). lds is found in O(n log n) (patience
 * sorting on -loss) rather than fastai's O(n^2) loop; the values are the same. */
static int64_t valley(const double *loss, int64_t n)
{
    double *tails = malloc((size_t)n * sizeof *tails); /* tails[k]: smallest -loss ending a run
                                                          of length k + 1 */
    if (!tails) return -1;
    int64_t len = 0, best = 1, max_end = 0, max_start = 0; /* fastai starts at (0, 0) */
    for (int64_t i = 0; i < n; i++) {
        double a = -loss[i];
        int64_t lo = 0, hi = len; /* first k with tails[k] >= a */
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (tails[mid] < a) lo = mid + 1;
            else hi = mid;
        }
        tails[lo] = a;
        if (lo == len) len++;
        if (lo + 1 > best) {
            best = lo + 1;
            max_end = i;
            max_start = i - best;
        }
    }
    free(tails);
    double sections = (double)(max_end - max_start) / 3.0;
    return max_start + (int64_t)sections + (int64_t)(sections / 2.0);
}

double rn_lr_suggest(int which, const double *lr, const double *loss, int64_t n, int64_t steps,
                     double *at_lr, double *at_loss)
{
    *at_lr = *at_loss = NAN;
    /* fastai: lrs[num_it // 10 : -5], cut at the first NaN loss */
    int64_t begin = steps / 10, end = n - 5;
    for (int64_t i = begin; i < end; i++)
        if (isnan(loss[i])) {
            end = i;
            break;
        }
    int64_t m = end - begin;
    if (m < 2) return NAN;
    const double *l = loss + begin, *x = lr + begin;
    int64_t idx = 0;
    switch (which) {
    case RN_SUGGEST_VALLEY:
        idx = valley(l, m);
        if (idx < 0) return NAN;
        break;
    case RN_SUGGEST_STEEP: {
        double best = INFINITY;
        for (int64_t i = 0; i + 1 < m; i++) {
            double g = (l[i + 1] - l[i]) / (log(x[i + 1]) - log(x[i]));
            if (g < best) { /* torch.argmin: the first of equal minima */
                best = g;
                idx = i;
            }
        }
        break;
    }
    case RN_SUGGEST_MINIMUM:
        for (int64_t i = 1; i < m; i++)
            if (l[i] < l[idx]) idx = i;
        *at_lr = x[idx];
        *at_loss = l[idx];
        return x[idx] / 10;
    default:
        return NAN;
    }
    *at_lr = x[idx];
    *at_loss = l[idx];
    return x[idx];
}
