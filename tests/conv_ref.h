/* Reference convolutions in double for tests of the oneDNN plans (cpu_conv.h): forward and
 * backward over the plan's own descriptor, with sum |terms| as the scale of rounding error. */
#ifndef RN_TEST_CONV_REF_H
#define RN_TEST_CONV_REF_H

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "../kernels/amp_elem.h"
#include "cpu_conv.h"

static inline double rnd(bool bf16, float x)
{
    return bf16 ? rn_bf16_to_f32(rn_bf16_from_f32(x)) : x;
}

/* the largest |got - ref| / (sum |terms| + 1e-30) over n outputs; NaN propagates */
static inline double conv_ref_worst(const float *got, const double *ref, const double *mag,
                                    int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]) / (mag[i] + 1e-30);
        if (!(e <= w)) w = e;
    }
    return w;
}

/* Direct convolution in double over x and w (rounded to bf16 first with bf16); mag gets
 * sum |terms|, the scale of float32 rounding error in any order of summation. */
static inline void conv_ref(const rn_cpu_conv_desc *d, bool bf16, const float *x, const float *w,
                            const float *b, double *y, double *mag)
{
    int64_t g = d->groups ? d->groups : 1, icg = d->ic / g, ocg = d->oc / g;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t o = 0; o < d->oc; o++)
            for (int64_t oy = 0; oy < d->oh; oy++)
                for (int64_t ox = 0; ox < d->ow; ox++) {
                    double s = d->bias ? b[o] : 0, m = d->bias ? fabs(b[o]) : 0;
                    int64_t grp = o / ocg;
                    for (int64_t c = 0; c < icg; c++)
                        for (int64_t ky = 0; ky < d->kh; ky++)
                            for (int64_t kx = 0; kx < d->kw; kx++) {
                                int64_t iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
                                if (iy < 0 || iy >= d->ih || ix < 0 || ix >= d->iw) continue;
                                int64_t xi =
                                    ((n * d->ic + grp * icg + c) * d->ih + iy) * d->iw + ix;
                                int64_t wi = ((o * icg + c) * d->kh + ky) * d->kw + kx;
                                double t = rnd(bf16, x[xi]) * rnd(bf16, w[wi]);
                                s += t;
                                m += fabs(t);
                            }
                    int64_t i = ((n * d->oc + o) * d->oh + oy) * d->ow + ox;
                    y[i] = s;
                    mag[i] = m;
                }
}

/* dw and dx of the same convolution in double, from x, w and dy (each rounded to bf16 first
 * with bf16) */
static inline void conv_ref_backward(const rn_cpu_conv_desc *d, bool bf16, const float *x,
                                     const float *w, const float *dy, double *dx, double *dxm,
                                     double *dw, double *dwm, double *db, double *dbm)
{
    int64_t g = d->groups ? d->groups : 1, icg = d->ic / g, ocg = d->oc / g;
    int64_t nx = d->n * d->ic * d->ih * d->iw, nw = d->oc * icg * d->kh * d->kw;
    memset(dx, 0, nx * sizeof *dx);
    memset(dxm, 0, nx * sizeof *dxm);
    memset(dw, 0, nw * sizeof *dw);
    memset(dwm, 0, nw * sizeof *dwm);
    memset(db, 0, d->oc * sizeof *db);
    memset(dbm, 0, d->oc * sizeof *dbm);
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t o = 0; o < d->oc; o++)
            for (int64_t oy = 0; oy < d->oh; oy++)
                for (int64_t ox = 0; ox < d->ow; ox++) {
                    double gy = rnd(bf16, dy[((n * d->oc + o) * d->oh + oy) * d->ow + ox]);
                    db[o] += gy; /* with bf16, the bias gradient sums bf16(dy) too */
                    dbm[o] += fabs(gy);
                    int64_t grp = o / ocg;
                    for (int64_t c = 0; c < icg; c++)
                        for (int64_t ky = 0; ky < d->kh; ky++)
                            for (int64_t kx = 0; kx < d->kw; kx++) {
                                int64_t iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
                                if (iy < 0 || iy >= d->ih || ix < 0 || ix >= d->iw) continue;
                                int64_t xi =
                                    ((n * d->ic + grp * icg + c) * d->ih + iy) * d->iw + ix;
                                int64_t wi = ((o * icg + c) * d->kh + ky) * d->kw + kx;
                                double tx = gy * rnd(bf16, w[wi]), tw = gy * rnd(bf16, x[xi]);
                                dx[xi] += tx;
                                dxm[xi] += fabs(tx);
                                dw[wi] += tw;
                                dwm[wi] += fabs(tw);
                            }
                }
}

#endif
