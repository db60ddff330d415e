/* Dropout: in train mode zero each element with probability p and scale the rest by 1/(1-p);
 * identity in eval mode. The mask of train call c is rn_uniform(rn_key3(seed, c, ...), element)
 * >= p, so it depends only on the seed, the call count and the element, not on threads. */
#include "nn_internal.h"
#include "vector_clones.h"
#include "net.h"

#include <runner/plugin.h>
#include <stdlib.h>

#include "../../kernels/nn_elem.h"
#include <string.h>

typedef struct dropout_impl {
    double p;
    uint8_t *mask;    /* (max_batch, ...) of the last train forward: 1 kept, 0 dropped */
    int64_t cap;      /* mask bytes allocated */
    bool last_train;  /* whether the last forward was in train mode */
} dropout_impl;

static int dropout_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err,
                         size_t errlen)
{
    dropout_impl *d = l->impl;
    int64_t need = rn_shape_numel(in);
    if (need > d->cap) {
        free(d->mask);
        d->mask = malloc((size_t)need);
        d->cap = d->mask ? need : 0;
        if (!d->mask)
            return rn_nn_err(err, errlen, "dropout: out of memory for a %lld-byte mask",
                             (long long)need);
    }
    *out = *in;
    return 0;
}

RN_VECTOR_CLONES
static int dropout_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    dropout_impl *d = l->impl;
    int64_t n = rn_tensor_numel(x);
    const float *xs = x->data;
    float *ys = y->data;
    d->last_train = train && d->p > 0.0;
    if (!d->last_train) {
        if (ys != xs) memcpy(ys, xs, (size_t)n * sizeof *ys);
        return 0;
    }
    if (n > d->cap)
        return rn_nn_err(l->err, sizeof l->err, "batch %lld exceeds the max batch given to setup",
                         (long long)x->shape.d[0]);
    const uint64_t key = rn_key3(l->seed, l->calls, 0x64726f70ull /* "drop" */);
    const double p = d->p;
    const float scale = p < 1.0 ? (float)(1.0 / (1.0 - p)) : 0.0f;
    uint8_t *mask = d->mask;
    l->calls++;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++)
        mask[i] = (uint8_t)rn_dropout_elem(key, i, p, scale, xs[i], &ys[i]);
    return 0;
}

RN_VECTOR_CLONES
static int dropout_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y,
                            const rn_tensor *dy, rn_tensor *dx)
{
    if (!dx) return 0;
    dropout_impl *d = l->impl;
    int64_t n = rn_tensor_numel(dy);
    const float *g = dy->data;
    float *gx = dx->data;
    if (!d->last_train) {
        if (gx != g) memcpy(gx, g, (size_t)n * sizeof *gx);
        return 0;
    }
    const float scale = d->p < 1.0 ? (float)(1.0 / (1.0 - d->p)) : 0.0f;
    const uint8_t *mask = d->mask;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) gx[i] = mask[i] ? g[i] * scale : 0.0f;
    return 0;
}

static void dropout_destroy(rn_layer *l)
{
    dropout_impl *d = l->impl;
    free(d->mask);
}

static void dropout_ops_describe(const rn_layer *l, rn_node *node)
{
    const dropout_impl *d = l->impl;
    node->kind = RN_NODE_DROPOUT;
    node->p = d->p;
}

static const rn_layer_ops dropout_ops = {
    .type = "dropout",
    .setup = dropout_setup,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .destroy = dropout_destroy,
    .describe = dropout_ops_describe,
};

/* seed: the run seed mixed with the layer index (the caller's choice); stored in l->seed. */
rn_layer *rn_dropout_create(double p, uint64_t seed, char *err, size_t errlen)
{
    if (!(p >= 0.0 && p <= 1.0)) {
        rn_nn_err(err, errlen, "dropout: expected p in [0, 1], got %g", p);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&dropout_ops, "", sizeof(dropout_impl), 0);
    if (!l) {
        rn_nn_err(err, errlen, "dropout: out of memory");
        return NULL;
    }
    ((dropout_impl *)l->impl)->p = p;
    l->seed = seed;
    return l;
}
