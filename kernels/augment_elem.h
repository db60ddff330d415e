/* Element math of the augmentations, shared by the CPU plugins (plugins/augment/) and the CUDA
 * kernels (kernels/augment_kernels.cu). The random draws stay with each plugin's host code (the
 * counter RNG of plugin.h), which turns them into per-sample parameters; these functions apply
 * the parameters to one pixel, identically on both devices. */
#ifndef RN_AUGMENT_ELEM_H
#define RN_AUGMENT_ELEM_H

#include <math.h>
#include <stdint.h>

#include <runner/plugin.h>

#include "rn_hd.h"

/* ---- CutMix / Mixup (timm's Mixup; plugins/augment/mix_common.h draws the parameters) ---- */
/* rn_mix_sample and RN_MIX_* are plugin.h's (ABI 1.2: the plugins' device_plan writes them). */

/* a * wa + b * wb rounded as torch's x.mul_(lam).add_(x.flip(0).mul_(1 - lam)): two float
 * products, one float sum. */
RN_HD float rn_mix_blend(float a, float b, float wa, float wb)
{
    return a * wa + b * wb;
}

/* Pixel (y, x) of a sample whose own value is `self` and whose partner's is `other`. */
RN_HD float rn_mix_pixel(const rn_mix_sample *s, float self, float other, int64_t y, int64_t x)
{
    if (s->mode == RN_MIX_BLEND) return rn_mix_blend(self, other, s->wa, s->wb);
    if (s->mode == RN_MIX_PASTE && y >= s->yl && y < s->yh && x >= s->xl && x < s->xh)
        return other;
    return self;
}

/* A soft-target entry: mixed with the same weights in either mode (timm's mixup_target). */
RN_HD float rn_mix_target(const rn_mix_sample *s, float self, float other)
{
    return s->mode == RN_MIX_KEEP ? self : rn_mix_blend(self, other, s->wa, s->wb);
}

/* ---- random_crop (plugins/augment/random_crop.c draws the offsets) ---- */

/* The source of output index i of n when the image moves by `shift` (out(i) = in(i + shift)):
 * mirrored about the edge without repeating it (np.pad "reflect"; |shift| < n) or -1 outside
 * the image (zero padding: the pixel is black). */
RN_HD int64_t rn_crop_src(int64_t i, int64_t n, int64_t shift, int reflect)
{
    int64_t t = i + shift;
    if (t >= 0 && t < n) return t;
    if (!reflect) return -1;
    return t < 0 ? -t : 2 * (n - 1) - t;
}

/* ---- random_resized_crop (plugins/augment/random_resized_crop.c draws the box) ---- */

/* PyTorch's linear tap for output index o of `out` reading an axis of `in` values
 * (F.interpolate, mode='bilinear', align_corners=False, float index math on the CPU): o reads
 * *lo and *lo + *step with weights 1 - *lam and *lam. */
RN_HD void rn_resize_tap(int64_t in, int64_t out, int64_t o, int64_t *lo, int64_t *step,
                         float *lam)
{
    float scale = (float)in / (float)out;
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int64_t i0 = (int64_t)src;
    *lo = i0;
    *step = i0 < in - 1 ? 1 : 0;
    *lam = src - (float)i0;
}

/* The bilinear blend of the crop at rows [i, ...), columns [j, ...) of plane p (row stride W)
 * at the taps rn_resize_tap gave for an output row (y0, ys, l1) and column (x0, xs, m1). */
RN_HD float rn_resized_crop_blend(const float *p, int64_t W, int64_t i, int64_t j, int64_t y0,
                                  int64_t ys, float l1, int64_t x0, int64_t xs, float m1)
{
    const float *r0 = p + (i + y0) * W + j, *r1 = r0 + ys * W;
    const int64_t x1 = x0 + xs;
    const float l0 = 1.0f - l1, m0 = 1.0f - m1;
    return l0 * (m0 * r0[x0] + m1 * r0[x1]) + l1 * (m0 * r1[x0] + m1 * r1[x1]);
}

/* Output pixel (y, x) of an H x W plane p (row stride W) whose crop rows [i, i + h), columns
 * [j, j + w) is resized to H x W bilinearly: the taps for (y, x), then the blend. A loop over
 * a whole plane works the taps out once per row and column and calls the blend. */
RN_HD float rn_resized_crop_pixel(const float *p, int64_t H, int64_t W, int64_t i, int64_t j,
                                  int64_t h, int64_t w, int64_t y, int64_t x)
{
    int64_t y0, ys, x0, xs;
    float l1, m1;
    rn_resize_tap(h, H, y, &y0, &ys, &l1);
    rn_resize_tap(w, W, x, &x0, &xs, &m1);
    return rn_resized_crop_blend(p, W, i, j, y0, ys, l1, x0, xs, m1);
}

/* ---- random_erasing (plugins/augment/random_erasing.c draws the coin and the box) ---- */
#define RN_ERASE_NOISE_COUNTER 64

/* The t-th normal(0, 1) of a sample's key, the "random" fill of its box's pixel t (counted over
 * (channel, row, column) of the box): Box-Muller on uniforms 64 + 2*(t/2) and 65 + 2*(t/2),
 * 1 - u avoiding log 0. On the GPU, CUDA's log/sin/cos may round the last bit differently. */
RN_HD float rn_erase_normal(uint64_t key, uint64_t t)
{
    uint64_t pair = RN_ERASE_NOISE_COUNTER + 2 * (t / 2);
    double radius = sqrt(-2.0 * log(1.0 - rn_uniform(key, pair)));
    double angle = 6.283185307179586 * rn_uniform(key, pair + 1);
    return (float)(radius * (t % 2 ? sin(angle) : cos(angle)));
}

/* ---- flips (plugins/augment/flip_common.h draws the coin) ---- */

/* The source column (hflip) or row (vflip) of index i of n when flipped. */
RN_HD int64_t rn_flip_src(int64_t i, int64_t n, int flipped)
{
    return flipped ? n - 1 - i : i;
}

#endif
