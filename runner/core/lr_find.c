/* The LR finder stage: the sweeps (see lr_find.h). */
#include "lr_find.h"
#include "train_device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_state.h"
#include "train_internal.h"

static int sweep_alloc(rn_lr_sweep *s, int64_t n)
{
    s->lr = calloc((size_t)n, sizeof *s->lr);
    s->loss = calloc((size_t)n, sizeof *s->loss);
    s->smooth = calloc((size_t)n, sizeof *s->smooth);
    return s->lr && s->loss && s->smooth ? 0 : -1;
}

static double sweep_lr(const rn_lr_find_spec *f, int64_t i)
{
    double pos = (double)i / (double)f->steps; /* fastai: train_iter / num_it */
    return f->linear ? f->start_lr + (f->end_lr - f->start_lr) * pos
                     : f->start_lr * pow(f->end_lr / f->start_lr, pos);
}

/* One sweep from the current state, on a loader of its own (so the run's data position is not
 * touched) starting at the epoch the run is at; sweep k > 0 shuffles with another seed. */
static int sweep(rn_run *r, const rn_lr_find_spec *f, int64_t k, rn_lr_sweep *out,
                 volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    rn_loader_config cfg;
    rn_run_loader_config(&cfg, r, &r->train, RN_LOADER_SWEEP);
    if (k > 0) cfg.seed = rn_key3(cfg.seed, 0x6c725f66696e64ull, (uint64_t)k);
    rn_loader *ld;
    if (rn_loader_open(&ld, &cfg, r->pos.loader_epoch, err, errlen)) return -1;
    double avg = 0, best = INFINITY, beta = f->beta;
    int64_t empty = 0;
    out->stopped = "end_lr reached";
    while (out->n < f->steps) {
        double lr = sweep_lr(f, out->n), loss;
        for (int g = 0; g < r->opt.n; g++) {
            r->opt.v[g].g.lr = lr;
            r->opt.v[g].g.momentum = r->opt.v[g].base_momentum;
        }
        int64_t samples;
        int ended;
        int got = rn_run_step(r, ld, &loss, &samples, &ended, err, errlen);
        if (got < 0) {
            rn_dev_forget(r, ld);
            rn_loader_close(ld);
            return -1;
        }
        if (got == RN_STEP_EPOCH_END) { /* the sweep goes on into the next epoch */
            if (++empty > 1) {
                snprintf(err, errlen, "lr_find: the training data gives no batch");
                rn_dev_forget(r, ld);
                rn_loader_close(ld);
                return -1;
            }
            continue;
        }
        empty = 0;
        int64_t i = out->n++;
        out->lr[i] = lr;
        if (got == RN_STEP_NONFINITE) {
            err[0] = 0;
            out->loss[i] = out->smooth[i] = NAN;
            out->stopped = "loss not finite";
            break;
        }
        /* fastai's AvgSmoothLoss: lerp towards the new loss, divided by 1 - beta^count */
        avg = beta * avg + (1 - beta) * loss;
        double smooth = avg / (1 - pow(beta, (double)(i + 1)));
        out->loss[i] = loss;
        out->smooth[i] = smooth;
        if (smooth < best) best = smooth;
        if (!isfinite(smooth)) {
            out->stopped = "loss not finite";
            break;
        }
        if (f->stop_div && smooth > f->div_factor * best) {
            out->stopped = "loss diverged";
            break;
        }
        if (stop && *stop) {
            out->stopped = "interrupted";
            break;
        }
    }
    rn_dev_forget(r, ld); /* a batch taken ahead belongs to this loader */
    rn_loader_close(ld);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median curve over the sweeps (while more than half of them have a point), the band, and
 * the suggestions on it and on each sweep. */
static int summarize(rn_lr_find_result *res, const rn_lr_find_spec *f)
{
    int64_t k = res->repeats, n = 0;
    for (int64_t q = 0; q < k; q++)
        if (res->sweeps[q].n > n) n = res->sweeps[q].n;
    res->lr = calloc((size_t)n + 1, sizeof *res->lr);
    res->loss = calloc((size_t)n + 1, sizeof *res->loss);
    res->lo = calloc((size_t)n + 1, sizeof *res->lo);
    res->hi = calloc((size_t)n + 1, sizeof *res->hi);
    double *col = calloc((size_t)k + 1, sizeof *col);
    if (!res->lr || !res->loss || !res->lo || !res->hi || !col) {
        free(col);
        return -1;
    }
    res->n = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t m = 0;
        for (int64_t q = 0; q < k; q++)
            if (i < res->sweeps[q].n) col[m++] = res->sweeps[q].smooth[i];
        if (2 * m <= k) break;
        qsort(col, (size_t)m, sizeof *col, cmp_double); /* with a NaN the order is moot */
        int nan = 0;
        for (int64_t j = 0; j < m; j++) nan |= isnan(col[j]);
        res->lr[i] = sweep_lr(f, i);
        res->loss[i] = nan ? NAN : m % 2 ? col[m / 2] : 0.5 * (col[m / 2 - 1] + col[m / 2]);
        res->lo[i] = nan ? NAN : col[0];
        res->hi[i] = nan ? NAN : col[m - 1];
        res->n = i + 1;
    }
    free(col);
    for (int w = 0; w < RN_SUGGESTIONS; w++) {
        res->suggest[w] = rn_lr_suggest(w, res->lr, res->loss, res->n, f->steps, &(double){0},
                                        &res->suggest_loss[w]);
        res->spread_lo[w] = INFINITY;
        res->spread_hi[w] = -INFINITY;
        for (int64_t q = 0; q < k; q++) {
            double at_lr, at_loss;
            const rn_lr_sweep *s = &res->sweeps[q];
            double v = rn_lr_suggest(w, s->lr, s->smooth, s->n, f->steps, &at_lr, &at_loss);
            if (isnan(v)) continue;
            if (v < res->spread_lo[w]) res->spread_lo[w] = v;
            if (v > res->spread_hi[w]) res->spread_hi[w] = v;
        }
        if (res->spread_lo[w] > res->spread_hi[w]) res->spread_lo[w] = res->spread_hi[w] = NAN;
    }
    return 0;
}

static void print_result(const rn_lr_find_result *res, const rn_lr_find_spec *f,
                         const char *dir, const char *name)
{
    const rn_lr_sweep *s0 = &res->sweeps[0];
    printf("%s: %ld of %ld steps, lr %.3g -> %.3g (%s)", name, (long)s0->n, (long)f->steps,
           f->start_lr, s0->n ? s0->lr[s0->n - 1] : f->start_lr, s0->stopped);
    if (res->repeats > 1) printf(", median of %ld sweeps", (long)res->repeats);
    printf(", %.1f s\n", res->seconds);
    for (int w = 0; w < RN_SUGGESTIONS; w++) {
        printf("  %-8s %.3g", rn_suggestion_names[w], res->suggest[w]);
        if (res->repeats > 1 && !isnan(res->spread_lo[w]))
            printf("   (single sweeps: %.3g .. %.3g)", res->spread_lo[w], res->spread_hi[w]);
        printf("\n");
    }
    if (dir) printf("  plot: %s/%s.svg, points: %s/%s.csv\n", dir, name, dir, name);
}

int rn_lr_find_run(rn_run *r, int stage, const char *run_dir, volatile sig_atomic_t *stop,
                   char *err, size_t errlen)
{
    const rn_lr_find_spec *f = &r->plan->stages[stage].find;
    double t0 = rn_now_s();
    rn_lr_find_result *res = calloc(1, sizeof *res);
    rn_run_state *start = NULL;
    int rc = -1;
    if (!res || !(res->sweeps = calloc((size_t)f->repeats, sizeof *res->sweeps))) {
        snprintf(err, errlen, "lr_find: out of memory");
        goto out;
    }
    res->stage = stage;
    res->repeats = f->repeats;
    if (rn_run_state_save(r, &start, err, errlen)) goto out;
    int64_t global = r->global_step;
    for (int64_t q = 0; q < f->repeats; q++) {
        if (sweep_alloc(&res->sweeps[q], f->steps)) {
            snprintf(err, errlen, "lr_find: out of memory");
            goto out;
        }
        int bad = sweep(r, f, q, &res->sweeps[q], stop, err, errlen);
        /* after every sweep, and after an error too */
        char why[400] = "";
        int lost = rn_run_state_restore(r, start, why, sizeof why);
        r->global_step = global;
        if (lost && !bad) snprintf(err, errlen, "lr_find: restoring the state: %s", why);
        if (bad || lost) goto out;
        if (stop && *stop) break;
    }
    res->seconds = rn_now_s() - t0;
    res->points = res->sweeps[0].n;
    snprintf(res->stopped, sizeof res->stopped, "%s", res->sweeps[0].stopped);
    if (summarize(res, f)) {
        snprintf(err, errlen, "lr_find: out of memory");
        goto out;
    }
    const char *name = r->plan->stages[stage].name;
    if (run_dir && rn_lr_find_write(res, run_dir, name, err, errlen)) goto out;
    print_result(res, f, run_dir, name);
    rn_lr_find_free(r->lr_find);
    r->lr_find = res;
    res = NULL;
    rc = 0;
out:
    rn_run_state_free(start);
    rn_lr_find_free(res);
    return rc;
}

void rn_lr_find_free(rn_lr_find_result *res)
{
    if (!res) return;
    for (int64_t q = 0; res->sweeps && q < res->repeats; q++) {
        free(res->sweeps[q].lr);
        free(res->sweeps[q].loss);
        free(res->sweeps[q].smooth);
    }
    free(res->sweeps);
    free(res->lr);
    free(res->loss);
    free(res->lo);
    free(res->hi);
    free(res);
}
