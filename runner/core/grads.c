/* Gradient accumulation, norm and clipping (see grads.h). */
#include "grads.h"
#include "lanes.h"
#include "vector_clones.h"

#include "../../kernels/net_elem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CHUNK 65536

static int trainable(const rn_param_ref *p) { return p->grad != NULL; }

/* Trains in this stage: a parameter (not a buffer) that is not frozen. */
static int active(const rn_grads *g, int i)
{
    return g->m->params[i].grad != NULL && (!g->trainable || g->trainable[i]);
}

int rn_grads_init(rn_grads *g, const rn_model *m, int64_t accumulate, char *err, size_t errlen)
{
    g->m = m;
    g->acc = NULL;
    g->max_chunks = 1;
    for (int i = 0; i < m->n_params; i++) {
        int64_t chunks = (rn_tensor_numel(m->params[i].value) + CHUNK - 1) / CHUNK;
        if (chunks > g->max_chunks) g->max_chunks = chunks;
    }
    g->partial = calloc((size_t)g->max_chunks, sizeof *g->partial);
    if (accumulate > 1) {
        g->acc = calloc((size_t)m->n_params + 1, sizeof *g->acc);
        for (int i = 0; g->acc && i < m->n_params; i++) {
            if (!trainable(&m->params[i])) continue;
            if (!(g->acc[i] = rn_falloc(rn_tensor_numel(m->params[i].value)))) {
                rn_grads_free(g);
                snprintf(err, errlen, "accumulate: out of memory for the gradient sums");
                return -1;
            }
        }
    }
    if (!g->partial || (accumulate > 1 && !g->acc)) {
        rn_grads_free(g);
        snprintf(err, errlen, "accumulate: out of memory for the gradient sums");
        return -1;
    }
    return 0;
}

void rn_grads_free(rn_grads *g)
{
    if (g->acc && g->m)
        for (int i = 0; i < g->m->n_params; i++) rn_ffree(g->acc[i]);
    free(g->acc);
    free(g->partial);
    g->acc = NULL;
    g->partial = NULL;
}

void rn_grads_accumulate(rn_grads *g, int64_t n, int first)
{
    const float w = (float)n;
    for (int i = 0; i < g->m->n_params; i++) {
        if (!active(g, i)) continue;
        const float *gr = g->m->params[i].grad->data;
        float *a = g->acc[i];
        int64_t k = rn_tensor_numel(g->m->params[i].value);
#pragma omp parallel for simd schedule(static) if (k > CHUNK)
        for (int64_t j = 0; j < k; j++) a[j] = rn_acc_elem(a[j], gr[j], w, first);
    }
}

void rn_grads_finish(rn_grads *g, int64_t total)
{
    const float inv = 1.0f / (float)total;
    for (int i = 0; i < g->m->n_params; i++) {
        if (!active(g, i)) continue;
        float *gr = g->m->params[i].grad->data;
        const float *a = g->acc[i];
        int64_t k = rn_tensor_numel(g->m->params[i].value);
#pragma omp parallel for simd schedule(static) if (k > CHUNK)
        for (int64_t j = 0; j < k; j++) gr[j] = rn_scale_elem(a[j], inv);
    }
}

RN_VECTOR_CLONES
double rn_grads_norm(rn_grads *g)
{
    double total = 0;
    for (int i = 0; i < g->m->n_params; i++) {
        if (!active(g, i)) continue;
        const float *gr = g->m->params[i].grad->data;
        int64_t k = rn_tensor_numel(g->m->params[i].value), chunks = (k + CHUNK - 1) / CHUNK;
        double *part = g->partial;
#pragma omp parallel for schedule(static) if (chunks > 1)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t j = c * CHUNK, end = (c + 1) * CHUNK < k ? (c + 1) * CHUNK : k;
            double s[LANES] = {0}; /* lanes.h: vectorized, in a fixed order */
            lanes_add_sq(s, gr + j, end - j, 0.0);
            part[c] = lanes_total(s);
        }
        for (int64_t c = 0; c < chunks; c++) total += part[c]; /* in order: deterministic */
    }
    return sqrt(total);
}

void rn_grads_scale(rn_grads *g, float s)
{
    for (int i = 0; i < g->m->n_params; i++) {
        if (!active(g, i)) continue;
        float *gr = g->m->params[i].grad->data;
        int64_t k = rn_tensor_numel(g->m->params[i].value);
#pragma omp parallel for simd schedule(static) if (k > CHUNK)
        for (int64_t j = 0; j < k; j++) gr[j] = rn_scale_elem(gr[j], s);
    }
}

void rn_grads_clamp(rn_grads *g, float v)
{
    for (int i = 0; i < g->m->n_params; i++) {
        if (!active(g, i)) continue;
        float *gr = g->m->params[i].grad->data;
        int64_t k = rn_tensor_numel(g->m->params[i].value);
#pragma omp parallel for simd schedule(static) if (k > CHUNK)
        for (int64_t j = 0; j < k; j++) gr[j] = rn_clamp_elem(gr[j], v);
    }
}
