/* ReLU, y = max(x, 0). */
#include "nn_internal.h"
#include "vector_clones.h"
#include "net.h"

static int relu_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    *out = *in;
    return 0;
}

RN_VECTOR_CLONES
static int relu_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    int64_t n = rn_tensor_numel(x);
    const float *xs = x->data;
    float *ys = y->data;
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; i++) ys[i] = xs[i] > 0.0f ? xs[i] : 0.0f;
    return 0;
}

/* dx = dy where the output was positive (y > 0 exactly when x > 0; 0 at x = 0, like PyTorch).
 * In place (dx == dy) when the chain folded the ReLU into the layer before. */
RN_VECTOR_CLONES
static int relu_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                         rn_tensor *dx)
{
    if (!dx) return 0;
    int64_t n = rn_tensor_numel(y);
    const float *ys = y->data, *g = dy->data;
    float *gx = dx->data;
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; i++) gx[i] = ys[i] > 0.0f ? g[i] : 0.0f;
    return 0;
}

static void relu_ops_describe(const rn_layer *l, rn_node *node)
{
    (void)l;
    node->kind = RN_NODE_RELU;
}

static const rn_layer_ops relu_ops = {
    .type = "relu",
    .setup = relu_setup,
    .forward = relu_forward,
    .backward = relu_backward,
    .describe = relu_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME, /* element-wise */
};

rn_layer *rn_relu_create(void) { return rn_nn_layer_new(&relu_ops, "", 0, 0); }

bool rn_nn_is_relu(const rn_layer *l) { return l && l->ops == &relu_ops; }
