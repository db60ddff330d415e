/* Flatten, (N, C, H, W) -> (N, C*H*W): the same bytes under another shape. */
#include "nn_internal.h"
#include "net.h"

#include <string.h>

static int flatten_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    if (in->ndim < 2)
        return rn_nn_err(err, errlen, "flatten: expected (N, ...) input, got a 1-d shape");
    int64_t per = 1;
    for (int i = 1; i < in->ndim; i++) per *= in->d[i];
    *out = rn_shape_make(2, (int64_t[]){in->d[0], per});
    return 0;
}

/* A copy unless the model lets the output share the input's buffer. */
static int flatten_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    if (y->data != x->data) memcpy(y->data, x->data, (size_t)rn_tensor_numel(x) * sizeof(float));
    return 0;
}

static int flatten_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y,
                            const rn_tensor *dy, rn_tensor *dx)
{
    if (dx && dx->data != dy->data)
        memcpy(dx->data, dy->data, (size_t)rn_tensor_numel(dy) * sizeof(float));
    return 0;
}

static void flatten_ops_describe(const rn_layer *l, rn_node *node)
{
    (void)l;
    node->kind = RN_NODE_FLATTEN;
}

static const rn_layer_ops flatten_ops = {
    .type = "flatten",
    .setup = flatten_setup,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .output_is_input = true,
    .describe = flatten_ops_describe,
};

rn_layer *rn_flatten_create(void) { return rn_nn_layer_new(&flatten_ops, "", 0, 0); }
