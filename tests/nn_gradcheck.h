/* Finite-difference gradient checks for runner/nn layers (tests only).
 *
 * The scalar checked is L = sum_i y_i * r_i for a fixed random r, accumulated in double, so
 * dL/dy = r. Each input element and parameter is moved by +-eps in place and the central
 * difference (L+ - L-) / 2eps is compared with the layer's backward. */
#ifndef RN_NN_GRADCHECK_H
#define RN_NN_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "layer.h"
#include "rn_test.h"

/* splitmix64 in [lo, hi): the tests' own generator, independent of the one under test */
static inline double gc_uniform(uint64_t *state, double lo, double hi)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static inline void gc_fill(float *p, int64_t n, uint64_t seed, double lo, double hi)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) p[i] = (float)gc_uniform(&s, lo, hi);
}

static inline double gc_dot(const rn_tensor *y, const float *r)
{
    double s = 0.0;
    for (int64_t i = 0; i < rn_tensor_numel(y); i++) s += (double)y->data[i] * r[i];
    return s;
}

/* L at the current x and parameters; the dropout call counter is reset first, so every forward
 * of one check draws the same mask. */
static inline double gc_loss(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train,
                             uint64_t calls, const float *r)
{
    l->calls = calls;
    if (l->ops->forward(l, x, y, train)) {
        fprintf(stderr, "gradcheck: forward failed: %s\n", l->err);
        return NAN;
    }
    return gc_dot(y, r);
}

/* Compares analytic and numeric gradients of one buffer; returns the number of mismatches. */
static inline int gc_compare(const char *what, rn_layer *l, const rn_tensor *x, rn_tensor *y,
                             bool train, uint64_t calls, const float *r, float *v,
                             const float *analytic, int64_t n, double eps, double atol,
                             double rtol)
{
    int bad = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + (float)eps;
        double lp = gc_loss(l, x, y, train, calls, r);
        v[i] = keep - (float)eps;
        double lm = gc_loss(l, x, y, train, calls, r);
        v[i] = keep;
        /* the step actually taken, after rounding to float */
        double h = (double)(keep + (float)eps) - (double)(keep - (float)eps);
        double num = (lp - lm) / h;
        double diff = fabs(analytic[i] - num);
        if (diff > worst) worst = diff;
        if (!(diff <= atol + rtol * fabs(num))) {
            if (bad < 5)
                fprintf(stderr, "gradcheck %s[%lld]: backward %.9g, finite difference %.9g\n",
                        what, (long long)i, analytic[i], num);
            bad++;
        }
    }
    rn_test_checks++;
    if (bad) {
        rn_test_failures++;
        fprintf(stderr, "gradcheck %s: %d of %lld differ (worst |diff| %.3g)\n", what, bad,
                (long long)n, worst);
    }
    return bad;
}

/* Checks dx (when check_dx) and every parameter gradient of l at input x (y preallocated with
 * the output shape). Returns the total number of mismatching elements. */
static inline int gradcheck_layer(const char *name, rn_layer *l, rn_tensor *x, rn_tensor *y,
                                  bool train, bool check_dx, double eps, double atol, double rtol)
{
    int64_t ny = rn_tensor_numel(y), nx = rn_tensor_numel(x);
    float *r = malloc((size_t)ny * sizeof *r);
    gc_fill(r, ny, 0x5eed, -1.0, 1.0);
    rn_tensor dy = *y, dx = *x;
    dy.data = r;
    dx.data = calloc((size_t)nx, sizeof(float));
    uint64_t calls = l->calls;
    int bad = 0;
    l->err[0] = '\0';
    if (l->ops->forward(l, x, y, train) ||
        l->ops->backward(l, x, y, &dy, check_dx ? &dx : NULL)) {
        fprintf(stderr, "gradcheck %s: forward/backward failed: %s\n", name, l->err);
        CHECK(0);
        bad = 1;
        goto done;
    }
    /* keep the analytic grads: later forwards may not touch them, but be safe */
    float **saved = calloc((size_t)l->n_params + 1, sizeof *saved);
    for (int p = 0; p < l->n_params; p++) {
        rn_tensor *g = l->params[p].grad;
        if (!g) continue; /* a buffer (batch norm's running stats): no gradient */
        int64_t n = rn_tensor_numel(g);
        saved[p] = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) saved[p][i] = g->data[i];
    }
    char what[160];
    if (check_dx) {
        snprintf(what, sizeof what, "%s dx", name);
        bad += gc_compare(what, l, x, y, train, calls, r, x->data, dx.data, nx, eps, atol, rtol);
    }
    for (int p = 0; p < l->n_params; p++) {
        if (!l->params[p].grad) continue;
        snprintf(what, sizeof what, "%s d%s", name, l->params[p].name);
        bad += gc_compare(what, l, x, y, train, calls, r, l->params[p].value->data, saved[p],
                          rn_tensor_numel(l->params[p].value), eps, atol, rtol);
        free(saved[p]);
    }
    free(saved);
done:
    l->calls = calls + 1;
    free(r);
    free(dx.data);
    return bad;
}

#endif
