/* flatten: shape (N,C,H,W) -> (N,C*H*W), same bytes forward, same bytes backward (the gradient
 * of a reshape is the identity, so the finite-difference check is exact up to rounding). */
#include <string.h>

#include "nn_gradcheck.h"

int main(void)
{
    char err[128];
    rn_layer *l = rn_flatten_create();
    CHECK(l->ops->output_is_input);
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 4, 5}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(out.ndim == 2 && out.d[0] == 2 && out.d[1] == 60);
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, 120, 1, -1.0, 1.0);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(memcmp(x.data, y.data, 120 * sizeof(float)) == 0);
    /* in place (the model shares the buffer): nothing to do, nothing broken */
    rn_tensor alias = x;
    alias.shape = out;
    CHECK(l->ops->forward(l, &x, &alias, true) == 0);
    CHECK(memcmp(x.data, y.data, 120 * sizeof(float)) == 0);
    /* |diff| <= 1e-4 + 1e-4 |numeric| */
    CHECK(gradcheck_layer("flatten", l, &x, &y, true, true, 1e-2, 1e-4, 1e-4) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    return rn_test_report("test_flatten");
}
