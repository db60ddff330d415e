/* hflip — mirrors each sample left-right with probability p (torchvision RandomHorizontalFlip).
 * The coin and the settings are flip_common.h's. */
#include "flip_common.h"

static void mirror_rows(float *x, int64_t c, int64_t h, int64_t w)
{
    for (int64_t r = 0; r < c * h; r++, x += w) {
        for (int64_t lo = 0, hi = w - 1; lo < hi; lo++, hi--) {
            float t = x[lo];
            x[lo] = x[hi];
            x[hi] = t;
        }
    }
}

RN_FLIP_PLUGIN("hflip", "random horizontal flip with probability p, per sample", mirror_rows, 0)
