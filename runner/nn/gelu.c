/* GELU, exact form (PyTorch nn.GELU(approximate='none')): y = x Phi(x), Phi the standard normal
 * CDF, Phi(x) = (1 + erf(x / sqrt 2)) / 2. Evaluated in double. */
#include "nn_internal.h"
#include "net.h"

#include <math.h>

#define GELU_RSQRT2 0.70710678118654752440    /* 1 / sqrt(2) */
#define GELU_RSQRT2PI 0.39894228040143267794  /* 1 / sqrt(2 pi) */

static int gelu_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    *out = *in;
    return 0;
}

static int gelu_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    int64_t n = rn_tensor_numel(x);
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        double v = xs[i];
        ys[i] = (float)(0.5 * v * (1.0 + erf(v * GELU_RSQRT2)));
    }
    return 0;
}

/* dy/dx = Phi(x) + x phi(x), phi the standard normal density */
static int gelu_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                         rn_tensor *dx)
{
    if (!dx) return 0;
    int64_t n = rn_tensor_numel(x);
    const float *xs = x->data, *g = dy->data;
    float *gx = dx->data;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) {
        double v = xs[i];
        double d = 0.5 * (1.0 + erf(v * GELU_RSQRT2)) + v * GELU_RSQRT2PI * exp(-0.5 * v * v);
        gx[i] = (float)(g[i] * d);
    }
    return 0;
}

static void gelu_ops_describe(const rn_layer *l, rn_node *node)
{
    (void)l;
    node->kind = RN_NODE_GELU;
}

static const rn_layer_ops gelu_ops = {
    .type = "gelu",
    .setup = gelu_setup,
    .forward = gelu_forward,
    .backward = gelu_backward,
    .describe = gelu_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME, /* element-wise */
};

rn_layer *rn_gelu_create(void) { return rn_nn_layer_new(&gelu_ops, "", 0, 0); }
