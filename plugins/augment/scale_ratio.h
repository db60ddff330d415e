/* The area and aspect-ratio ranges of torchvision's RandomResizedCrop and RandomErasing: both
 * plugins declare scale_min/scale_max/ratio_min/ratio_max (each range checked by the schema) and
 * refuse a range whose ends are swapped. Header-only: each plugin stays its own .so. */
#ifndef RN_SCALE_RATIO_H
#define RN_SCALE_RATIO_H

#include <runner/plugin.h>

/* Reads the four settings into r[0..4) = scale_min, scale_max, ratio_min, ratio_max. */
static inline int scale_ratio_get(const rn_host *host, rn_ctx *ctx, double r[4])
{
    static const char *const names[4] = {"scale_min", "scale_max", "ratio_min", "ratio_max"};
    for (int i = 0; i < 4; i++) r[i] = host->get_number(ctx, names[i]);
    for (int i = 0; i < 4; i += 2)
        if (r[i] > r[i + 1]) {
            host->set_error(ctx, "expected %s <= %s, got %s = %g > %s = %g", names[i],
                            names[i + 1], names[i], r[i], names[i + 1], r[i + 1]);
            return RN_ERR_CONFIG;
        }
    return RN_OK;
}

#endif
