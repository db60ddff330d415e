/* The LR finder's files: lr_find.csv (every point) and lr_find.svg (the curve). */
#include "lr_find.h"

#include <math.h>
#include <stdio.h>

#include "atomic_file.h"

static int write_csv(const rn_lr_find_result *res, const char *dir, const char *name, char *err,
                     size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.csv", dir, name);
    rn_atomic_file a;
    if (rn_atomic_open(&a, path, err, errlen)) return -1;
    fprintf(a.f, "sweep,step,lr,loss,smooth_loss\n");
    for (int64_t q = 0; q < res->repeats; q++) {
        const rn_lr_sweep *s = &res->sweeps[q];
        for (int64_t i = 0; i < s->n; i++)
            fprintf(a.f, "%ld,%ld,%.9g,%.9g,%.9g\n", (long)q, (long)i, s->lr[i], s->loss[i],
                    s->smooth[i]);
    }
    return rn_atomic_commit(&a, err, errlen);
}

typedef struct frame {
    double L, T, pw, ph;       /* plot box */
    double x0, x1, y0, y1;     /* log10 lr range, loss range */
} frame;

static double fx(const frame *f, double lr) { return f->L + f->pw * (log10(lr) - f->x0) / (f->x1 - f->x0); }

static double fy(const frame *f, double loss)
{
    double v = loss < f->y0 ? f->y0 : loss > f->y1 ? f->y1 : loss; /* clip into the box */
    return f->T + f->ph - f->ph * (v - f->y0) / (f->y1 - f->y0);
}

static void polyline(FILE *o, const frame *f, const double *lr, const double *v, int64_t n,
                     const char *style)
{
    fprintf(o, "<polyline fill=\"none\" %s points=\"", style);
    for (int64_t i = 0; i < n; i++)
        if (isfinite(v[i])) fprintf(o, "%.1f,%.1f ", fx(f, lr[i]), fy(f, v[i]));
    fprintf(o, "\"/>\n");
}

/* Loss against lr on a log axis, as fastai's plot_lr_find: the (median) smoothed curve, the band
 * between the lowest and highest sweep, and a marker per suggestion. The loss axis ends a little
 * above where the curve started, so a divergence does not flatten the interesting part. */
static int write_svg(const rn_lr_find_result *res, const char *dir, const char *name, char *err,
                     size_t errlen)
{
    static const char *const colors[RN_SUGGESTIONS] = {"#d62728", "#2ca02c", "#9467bd"};
    const double W = 900, H = 480, L = 80, R = 190, T = 40, B = 50;
    frame f = {.L = L, .T = T, .pw = W - L - R, .ph = H - T - B};
    int64_t n = res->n;
    double lmin = INFINITY, lmax = -INFINITY, first = NAN;
    for (int64_t i = 0; i < n; i++) {
        double lo = res->lo[i], hi = res->hi[i];
        if (!isfinite(lo) || !isfinite(hi)) continue;
        if (isnan(first)) first = res->loss[i];
        if (lo < lmin) lmin = lo;
        if (hi > lmax) lmax = hi;
    }
    if (!(lmax > lmin)) {
        lmin = isfinite(lmin) ? lmin - 1 : 0;
        lmax = lmin + 2;
    }
    double cap = first + 0.25 * (first - lmin);
    f.y0 = lmin - 0.05 * (lmax - lmin);
    f.y1 = isfinite(cap) && cap > lmin && cap < lmax ? cap : lmax;
    f.x0 = n ? log10(res->lr[0]) : -7;
    f.x1 = n > 1 ? log10(res->lr[n - 1]) : f.x0 + 1;
    if (!(f.x1 > f.x0)) f.x1 = f.x0 + 1;

    char path[4096];
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    rn_atomic_file a;
    if (rn_atomic_open(&a, path, err, errlen)) return -1;
    FILE *o = a.f;
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(o, "<text x=\"%g\" y=\"20\" font-size=\"14\">LR finder: smoothed training loss "
            "against learning rate%s</text>\n", L,
            res->repeats > 1 ? " (median of the sweeps, band: lowest to highest)" : "");
    fprintf(o, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
            "stroke=\"#888\"/>\n", L, T, f.pw, f.ph);
    for (int d = (int)ceil(f.x0); d <= (int)floor(f.x1); d++) { /* a tick per decade */
        double x = fx(&f, pow(10, d));
        fprintf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"#eee\"/>\n"
                "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">1e%d</text>\n", x, x, T,
                T + f.ph, x, T + f.ph + 16, d);
    }
    for (int k = 0; k <= 4; k++) {
        double v = f.y0 + (f.y1 - f.y0) * k / 4, y = fy(&f, v);
        fprintf(o, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", L - 6, y + 4, v);
    }
    fprintf(o, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">learning rate (log scale)</text>\n",
            L + f.pw / 2, H - 10);
    if (res->repeats > 1 && n > 1) { /* the band: up along hi, back along lo */
        fprintf(o, "<polygon fill=\"#1f77b4\" fill-opacity=\"0.18\" stroke=\"none\" points=\"");
        for (int64_t i = 0; i < n; i++)
            if (isfinite(res->hi[i])) fprintf(o, "%.1f,%.1f ", fx(&f, res->lr[i]), fy(&f, res->hi[i]));
        for (int64_t i = n - 1; i >= 0; i--)
            if (isfinite(res->lo[i])) fprintf(o, "%.1f,%.1f ", fx(&f, res->lr[i]), fy(&f, res->lo[i]));
        fprintf(o, "\"/>\n");
    }
    polyline(o, &f, res->lr, res->loss, n, "stroke=\"#1f77b4\" stroke-width=\"2\"");
    for (int w = 0; w < RN_SUGGESTIONS; w++) {
        double lr = res->suggest[w], at = w == RN_SUGGEST_MINIMUM ? lr * 10 : lr;
        if (!isfinite(lr) || at <= 0) continue;
        double x = fx(&f, at), y = fy(&f, res->suggest_loss[w]);
        fprintf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"%s\" "
                "stroke-dasharray=\"4 3\"/>\n<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>\n"
                "<text x=\"%g\" y=\"%g\" fill=\"%s\">%s: %.3g</text>\n", x, x, T, T + f.ph,
                colors[w], x, y, colors[w], L + f.pw + 12, T + 16 + 18 * w, colors[w],
                rn_suggestion_names[w], lr);
    }
    fprintf(o, "</svg>\n");
    return rn_atomic_commit(&a, err, errlen);
}

int rn_lr_find_write(const rn_lr_find_result *res, const char *dir, const char *name, char *err,
                     size_t errlen)
{
    return write_csv(res, dir, name, err, errlen) || write_svg(res, dir, name, err, errlen) ? -1
                                                                                          : 0;
}
