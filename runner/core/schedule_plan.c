/* The run's schedule without training: per stage, per group, the lr (and momentum) at every
 * optimizer step, printed as a plan and drawn as schedule.svg. Schedulers are pure functions of
 * the step, so this is exactly what training will use. */
#include "schedule_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

int64_t rn_run_steps_per_epoch(const rn_run *r)
{
    int64_t bs = r->plan->data.batch_size, n = r->train.n;
    int64_t batches = r->plan->data.drop_last ? n / bs : (n + bs - 1) / bs;
    return (batches + r->plan->accumulate - 1) / r->plan->accumulate;
}

/* lr[g * total + t] and momentum likewise, for every step t of every stage in order. */
static int evaluate(rn_run *r, int64_t spe, double *lr, double *mom, int64_t total, char *err,
                    size_t errlen)
{
    int64_t at_step = 0;
    for (int s = 0; s < r->plan->n_stages; s++) {
        const rn_stage_spec *st = &r->plan->stages[s];
        int64_t steps = st->epochs * spe;
        for (int64_t t = 0; t < steps; t++, at_step++) {
            rn_sched_at at = {.struct_size = sizeof at, .step = t, .total_steps = steps,
                              .steps_per_epoch = spe, .epoch = t / spe};
            for (int g = 0; g < r->opt.n; g++) {
                rn_sched_values v;
                if (rn_run_group_values(r, s, g, &at, &v, err, errlen)) return -1;
                lr[g * total + at_step] = v.lr;
                mom[g * total + at_step] = v.momentum;
                /* An optimizer made with momentum 0 keeps no momentum buffer (as sgd and
                 * rmsprop do); a schedule that turns momentum on would fail mid-run. */
                double set;
                const rn_opt_group *og = &r->opt.v[g];
                if (v.momentum != 0 && og->base_momentum == 0 &&
                    rn_instance_number(&og->opt, "momentum", &set) && set == 0) {
                    char desc[256];
                    snprintf(err, errlen, "schedule (stage %s): %s sets momentum to %g, but the "
                             "optimizer %s was given momentum = 0 and keeps no momentum buffer; "
                             "give optimizer.momentum a value (e.g. 0.9) or keep the schedule "
                             "from cycling momentum", st->name,
                             rn_schedule_describe(&r->schedules[s], desc, sizeof desc), v.momentum,
                             og->opt.plugin->id);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static void range(const double *v, int64_t n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

static void print_plan(FILE *f, const rn_run *r, int64_t spe, const double *lr, const double *mom,
                       int64_t total)
{
    fprintf(f, "plan: %ld optimizer steps per epoch (%ld training images, batch %ld%s)\n",
            (long)spe, (long)r->train.n, (long)r->plan->data.batch_size,
            r->plan->accumulate > 1 ? ", accumulated" : "");
    int64_t start = 0;
    for (int s = 0; s < r->plan->n_stages; s++) {
        const rn_stage_spec *st = &r->plan->stages[s];
        int64_t steps = st->epochs * spe;
        char desc[256];
        if (st->kind == RN_STAGE_LR_FIND) {
            const rn_lr_find_spec *lf = &st->find;
            fprintf(f, "  stage %s: LR range test, lr %.3g -> %.3g (%s) over %ld steps, %ld "
                    "sweep%s; weights, optimizer and data position restored after it\n",
                    st->name, lf->start_lr, lf->end_lr, lf->linear ? "linear" : "exp",
                    (long)lf->steps, (long)lf->repeats, lf->repeats == 1 ? "" : "s");
            continue;
        }
        fprintf(f, "  stage %s: %ld epochs, %ld steps, schedule %s\n", st->name, (long)st->epochs,
                (long)steps, rn_schedule_describe(&r->schedules[s], desc, sizeof desc));
        if (st->lr_from == RN_LR_FOUND)
            fprintf(f, "    (base lr: lr_find.%s, known once the sweep ran; planned here at "
                    "the optimizer's own lr)\n", st->lr_found);
        for (int g = 0; g < r->opt.n && steps > 0; g++) {
            const double *l = lr + g * total + start, *m = mom + g * total + start;
            double llo, lhi, mlo, mhi;
            range(l, steps, &llo, &lhi);
            range(m, steps, &mlo, &mhi);
            fprintf(f, "    group %-12s lr %.4g -> %.4g (range %.4g..%.4g), momentum %.4g..%.4g, "
                    "weight_decay %g, %zu tensors\n", r->opt.v[g].name, l[0], l[steps - 1], llo,
                    lhi, mlo, mhi, r->opt.v[g].g.weight_decay, r->opt.v[g].g.n_params);
        }
        start += steps;
    }
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                     "#8c564b", "#e377c2", "#17becf"};

static void point(FILE *f, const double *lr, int g, int64_t t, int64_t total, int logy, double lo,
                  double hi, double L, double T, double pw, double ph)
{
    double v = lr[g * total + t];
    if (logy) v = log10(v > 0 ? v : pow(10, lo));
    fprintf(f, "%.1f,%.1f ", L + pw * (double)t / (double)(total > 1 ? total - 1 : 1),
            T + ph - ph * (v - lo) / (hi - lo));
}

/* An SVG line chart of every group's lr over the run's steps; a log y axis when the lr spans
 * more than two decades (an LR-range sweep). */
static int write_svg(const char *path, const rn_run *r, int64_t spe, const double *lr,
                     int64_t total, char *err, size_t errlen)
{
    const double W = 900, H = 420, L = 80, R = 160, T = 30, B = 50;
    double lo, hi;
    range(lr, total * r->opt.n, &lo, &hi);
    int logy = lo > 0 && hi / lo > 100;
    if (logy) {
        lo = log10(lo);
        hi = log10(hi);
    }
    if (!(hi > lo)) {
        hi = lo + (lo != 0 ? fabs(lo) * 0.1 : 1);
        lo -= (hi - lo);
    }
    rn_atomic_file a;
    if (rn_atomic_open(&a, path, err, errlen)) return -1;
    FILE *f = a.f;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"18\" font-size=\"14\">learning rate per group (%s scale)</text>\n",
            L, logy ? "log" : "linear");
    double pw = W - L - R, ph = H - T - B;
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#888\"/>\n",
            L, T, pw, ph);
    for (int k = 0; k <= 4; k++) { /* y ticks */
        double v = lo + (hi - lo) * k / 4, y = T + ph - ph * k / 4;
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">%.3g</text>\n", L - 6, y + 4,
                logy ? pow(10, v) : v);
        fprintf(f, "<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"#eee\"/>\n", L, L + pw,
                y, y);
    }
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">optimizer step (%ld per epoch)"
            "</text>\n", L + pw / 2, H - 12, (long)spe);
    int64_t start = 0;
    for (int s = 0; s < r->plan->n_stages; s++) { /* stage boundaries and names */
        double x = L + pw * (double)start / (double)(total > 1 ? total - 1 : 1);
        fprintf(f, "<line x1=\"%g\" x2=\"%g\" y1=\"%g\" y2=\"%g\" stroke=\"#aaa\" "
                "stroke-dasharray=\"4 3\"/>\n<text x=\"%g\" y=\"%g\">%s</text>\n", x, x, T,
                T + ph, x + 4, T + 14, r->plan->stages[s].name);
        start += r->plan->stages[s].epochs * spe;
    }
    int64_t stride = total > 2000 ? total / 2000 + 1 : 1; /* at most ~2000 points a line */
    for (int g = 0; g < r->opt.n; g++) {
        const char *c = colors[g % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", c);
        for (int64_t t = 0; t < total; t += stride) point(f, lr, g, t, total, logy, lo, hi, L, T,
                                                          pw, ph);
        if ((total - 1) % stride) point(f, lr, g, total - 1, total, logy, lo, hi, L, T, pw, ph);
        fprintf(f, "\"/>\n<text x=\"%g\" y=\"%g\" fill=\"%s\">%s</text>\n", L + pw + 10,
                T + 16 + 16 * g, c, r->opt.v[g].name);
    }
    fprintf(f, "</svg>\n");
    return rn_atomic_commit(&a, err, errlen);
}

int rn_schedule_plan(rn_run *r, FILE *print, const char *svg_path, char *err, size_t errlen)
{
    int64_t spe = rn_run_steps_per_epoch(r), total = 0;
    for (int s = 0; s < r->plan->n_stages; s++) total += r->plan->stages[s].epochs * spe;
    double *lr = calloc((size_t)(total * r->opt.n) + 1, sizeof *lr);
    double *mom = calloc((size_t)(total * r->opt.n) + 1, sizeof *mom);
    int rc = -1;
    if (!lr || !mom) {
        snprintf(err, errlen, "schedule: out of memory for %ld steps", (long)total);
    } else if (evaluate(r, spe, lr, mom, total, err, errlen) == 0) {
        if (print) print_plan(print, r, spe, lr, mom, total);
        rc = svg_path && total > 0 ? write_svg(svg_path, r, spe, lr, total, err, errlen) : 0;
    }
    free(lr);
    free(mom);
    return rc;
}
