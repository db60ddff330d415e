/* Reference convolutions in double for tests of the oneDNN plans (cpu_conv.h): forward and
 * backward over the plan's own descriptor, with sum |terms| as the scale of rounding error, and
 * a plan run on random operands against it. */
#ifndef RN_TEST_CONV_REF_H
#define RN_TEST_CONV_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/amp_elem.h"
#include "cpu_conv.h"
#include "rn_test.h"

static inline double rnd(bool bf16, float x)
{
    return bf16 ? rn_bf16_to_f32(rn_bf16_from_f32(x)) : x;
}

/* the largest |got - ref| / (sum |terms| + 1e-30) over n outputs; NaN if any is */
static inline double conv_ref_worst(const float *got, const double *ref, const double *mag,
                                    int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]) / (mag[i] + 1e-30);
        if (isnan(e)) return e;
        if (e > w) w = e;
    }
    return w;
}

/* Direct convolution in double over x and w (each rounded to bf16 first with bf16): y, and with
 * dy (else NULL) the gradients dx, dw, db; each *m gets sum |terms|, the scale of float32
 * rounding error in any order of summation. With bf16, the bias gradient sums bf16(dy) too.
 * b may be NULL without d->bias. */
static inline void conv_ref(const rn_cpu_conv_desc *d, bool bf16, const float *x, const float *w,
                            const float *b, const float *dy, double *y, double *ym, double *dx,
                            double *dxm, double *dw, double *dwm, double *db, double *dbm)
{
    int64_t g = d->groups ? d->groups : 1, icg = d->ic / g, ocg = d->oc / g;
    int64_t nx = d->n * d->ic * d->ih * d->iw, nw = d->oc * icg * d->kh * d->kw;
    if (dy) {
        memset(dx, 0, nx * sizeof *dx);
        memset(dxm, 0, nx * sizeof *dxm);
        memset(dw, 0, nw * sizeof *dw);
        memset(dwm, 0, nw * sizeof *dwm);
        memset(db, 0, d->oc * sizeof *db);
        memset(dbm, 0, d->oc * sizeof *dbm);
    }
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t o = 0; o < d->oc; o++)
            for (int64_t oy = 0; oy < d->oh; oy++)
                for (int64_t ox = 0; ox < d->ow; ox++) {
                    int64_t yi = ((n * d->oc + o) * d->oh + oy) * d->ow + ox;
                    double s = d->bias ? b[o] : 0, m = d->bias ? fabs(b[o]) : 0;
                    double gy = dy ? rnd(bf16, dy[yi]) : 0;
                    if (dy) {
                        db[o] += gy;
                        dbm[o] += fabs(gy);
                    }
                    int64_t grp = o / ocg;
                    for (int64_t c = 0; c < icg; c++)
                        for (int64_t ky = 0; ky < d->kh; ky++)
                            for (int64_t kx = 0; kx < d->kw; kx++) {
                                int64_t iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
                                if (iy < 0 || iy >= d->ih || ix < 0 || ix >= d->iw) continue;
                                int64_t xi =
                                    ((n * d->ic + grp * icg + c) * d->ih + iy) * d->iw + ix;
                                int64_t wi = ((o * icg + c) * d->kh + ky) * d->kw + kx;
                                double xv = rnd(bf16, x[xi]), wv = rnd(bf16, w[wi]);
                                s += xv * wv;
                                m += fabs(xv * wv);
                                if (!dy) continue;
                                dx[xi] += gy * wv;
                                dxm[xi] += fabs(gy * wv);
                                dw[wi] += gy * xv;
                                dwm[wi] += fabs(gy * xv);
                            }
                    y[yi] = s;
                    ym[yi] = m;
                }
}

static inline void conv_ref_fill(float *p, int64_t n, unsigned seed)
{
    srand(seed);
    for (int64_t i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
}

/* One plan's run against the reference: the worst relative errors (conv_ref_worst) and which
 * implementation each direction ran. */
typedef struct conv_ref_errs {
    double y, dx, dw, db; /* db is 0 without bias; all INFINITY if the plan failed */
    char impl[3][64];     /* rn_cpu_conv_impl: forward, backward data, backward weights */
} conv_ref_errs;

/* Builds a plan for d, runs its forward and backward on uniform(-1, 1) operands (the same for
 * the same shape), and compares against conv_ref with bf16 rounding as ref_bf16 says; prints
 * one line under `what`. */
static inline conv_ref_errs conv_ref_run(const rn_cpu_conv_desc *d, bool ref_bf16,
                                         const char *what)
{
    conv_ref_errs e = {INFINITY, INFINITY, INFINITY, INFINITY, {"", "", ""}};
    int64_t g = d->groups ? d->groups : 1;
    int64_t nx = d->n * d->ic * d->ih * d->iw, nw = d->oc * (d->ic / g) * d->kh * d->kw;
    int64_t ny = d->n * d->oc * d->oh * d->ow;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(d->oc * 4), *y = malloc(ny * 4);
    float *dy = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc(d->oc * 4);
    double *ry = malloc(ny * 8), *my = malloc(ny * 8), *rdx = malloc(nx * 8), *mdx = malloc(nx * 8);
    double *rdw = malloc(nw * 8), *mdw = malloc(nw * 8), *rdb = malloc(d->oc * 8),
           *mdb = malloc(d->oc * 8);
    conv_ref_fill(x, nx, 1);
    conv_ref_fill(w, nw, 2);
    conv_ref_fill(b, d->oc, 3);
    conv_ref_fill(dy, ny, 4);
    rn_cpu_conv_plan *p = NULL;
    char err[256];
    int rc = rn_cpu_conv_plan_create(&p, d, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "%s: %s\n", what, err);
    } else {
        CHECK(rn_cpu_conv_forward(p, x, w, b, y, err, sizeof err) == 0);
        CHECK(rn_cpu_conv_backward(p, x, dy, w, dx, dw, db, err, sizeof err) == 0);
        conv_ref(d, ref_bf16, x, w, b, dy, ry, my, rdx, mdx, rdw, mdw, rdb, mdb);
        e.y = conv_ref_worst(y, ry, my, ny);
        e.dx = conv_ref_worst(dx, rdx, mdx, nx);
        e.dw = conv_ref_worst(dw, rdw, mdw, nw);
        e.db = d->bias ? conv_ref_worst(db, rdb, mdb, d->oc) : 0;
        for (int i = 0; i < 3; i++)
            snprintf(e.impl[i], sizeof e.impl[i], "%s", rn_cpu_conv_impl(p, i));
        printf("%-30s %-26s y %.1e dx %.1e dw %.1e db %.1e\n", what, e.impl[0], e.y, e.dx, e.dw,
               e.db);
    }
    rn_cpu_conv_plan_destroy(p);
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
    free(ry), free(my), free(rdx), free(mdx), free(rdw), free(mdw), free(rdb), free(mdb);
    return e;
}

#endif
