/* Mixed precision's per-element pieces, shared by the CPU and the GPU: unscaling a gradient
 * before the optimizer step, as torch._amp_foreach_non_finite_check_and_unscale_ does (the
 * non-finite check is on the scaled value; the product is a float multiply by inv_scale, itself
 * 1/scale computed in double and rounded to float, as GradScaler.unscale_). */
#ifndef RN_AMP_ELEM_H
#define RN_AMP_ELEM_H

#include "rn_hd.h"

/* g = g * inv_scale; returns 1 when g was inf or NaN (the step must then be skipped). */
RN_HD int rn_unscale_elem(float *g, float inv_scale)
{
    float v = *g;
    int bad = !(v - v == 0.0f); /* inf - inf and NaN - NaN are NaN */
    *g = v * inv_scale;
    return bad;
}

#endif
