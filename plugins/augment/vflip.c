/* vflip — mirrors each sample top-bottom with probability p (torchvision RandomVerticalFlip).
 * The coin and the settings are flip_common.h's. */
#include "flip_common.h"

static void swap_rows(float *x, int64_t c, int64_t h, int64_t w)
{
    for (int64_t ch = 0; ch < c; ch++) {
        float *plane = x + ch * h * w;
        for (int64_t lo = 0, hi = h - 1; lo < hi; lo++, hi--) {
            float *top = plane + lo * w, *bottom = plane + hi * w;
            for (int64_t k = 0; k < w; k++) {
                float t = top[k];
                top[k] = bottom[k];
                bottom[k] = t;
            }
        }
    }
}

RN_FLIP_PLUGIN("vflip", "random vertical flip with probability p, per sample", swap_rows, 1)
