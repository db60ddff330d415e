/* Identity, y = x (PyTorch nn.Identity): a placeholder, e.g. for a removed classifier head. */
#include "nn_internal.h"
#include "net.h"

#include <string.h>

static int identity_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err,
                          size_t errlen)
{
    *out = *in;
    return 0;
}

/* A copy unless the model lets the output share the input's buffer. */
static int identity_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    if (y->data != x->data) memcpy(y->data, x->data, (size_t)rn_tensor_numel(x) * sizeof(float));
    return 0;
}

static int identity_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y,
                             const rn_tensor *dy, rn_tensor *dx)
{
    if (dx && dx->data != dy->data)
        memcpy(dx->data, dy->data, (size_t)rn_tensor_numel(dy) * sizeof(float));
    return 0;
}

static void identity_ops_describe(const rn_layer *l, rn_node *node)
{
    (void)l;
    node->kind = RN_NODE_IDENTITY;
}

static const rn_layer_ops identity_ops = {
    .type = "identity",
    .setup = identity_setup,
    .forward = identity_forward,
    .backward = identity_backward,
    .output_is_input = true,
    .describe = identity_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME, /* element-wise */
};

rn_layer *rn_identity_create(void) { return rn_nn_layer_new(&identity_ops, "", 0, 0); }
