/* Leaky ReLU, y = x for x > 0 and negative_slope x otherwise (PyTorch nn.LeakyReLU). */
#include "nn_internal.h"
#include "vector_clones.h"
#include "net.h"

#include <math.h>

typedef struct leaky_impl {
    float slope;
} leaky_impl;

static int leaky_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    *out = *in;
    return 0;
}

RN_VECTOR_CLONES
static int leaky_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    const float a = ((leaky_impl *)l->impl)->slope;
    int64_t n = rn_tensor_numel(x);
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; i++) ys[i] = xs[i] > 0.0f ? xs[i] : xs[i] * a;
    return 0;
}

/* dx = dy where x > 0, slope dy elsewhere (x = 0 included, like PyTorch); decided on x, since
 * the sign of y says nothing when the slope is negative */
RN_VECTOR_CLONES
static int leaky_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                          rn_tensor *dx)
{
    if (!dx) return 0;
    const float a = ((leaky_impl *)l->impl)->slope;
    int64_t n = rn_tensor_numel(x);
    const float *xs = x->data, *g = dy->data;
    float *gx = dx->data;
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; i++) gx[i] = xs[i] > 0.0f ? g[i] : g[i] * a;
    return 0;
}

static void leaky_ops_describe(const rn_layer *l, rn_node *node)
{
    const leaky_impl *k = l->impl;
    node->kind = RN_NODE_LEAKY_RELU;
    node->slope = k->slope;
}

static const rn_layer_ops leaky_ops = {
    .type = "leaky_relu",
    .setup = leaky_setup,
    .forward = leaky_forward,
    .backward = leaky_backward,
    .describe = leaky_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME, /* element-wise */
};

rn_layer *rn_leaky_relu_create(double negative_slope, char *err, size_t errlen)
{
    if (!isfinite(negative_slope)) {
        rn_nn_err(err, errlen, "leaky_relu: expected a finite negative_slope, got %g",
                  negative_slope);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&leaky_ops, "", sizeof(leaky_impl), 0);
    if (!l) {
        rn_nn_err(err, errlen, "leaky_relu: out of memory");
        return NULL;
    }
    ((leaky_impl *)l->impl)->slope = (float)negative_slope;
    return l;
}
