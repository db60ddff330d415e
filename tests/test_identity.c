/* identity: y = x and dx = dy, copies when the buffers differ; the model may share them. */
#include <string.h>

#include "nn_gradcheck.h"

int main(void)
{
    rn_layer *l = rn_identity_create();
    CHECK(l->ops->output_is_input);
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 4, 5}), out;
    char err[128];
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(rn_shape_equal(&in, &out));
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    int64_t n = rn_tensor_numel(&x);
    gc_fill(x.data, n, 5, -1.0, 1.0);
    CHECK(l->ops->forward(l, &x, &y, false) == 0);
    CHECK(memcmp(x.data, y.data, (size_t)n * sizeof(float)) == 0);
    /* same pointer: nothing to do, nothing read out of bounds */
    CHECK(l->ops->forward(l, &x, &x, true) == 0);
    /* |diff| <= 1e-4 + 1e-4 |numeric| */
    CHECK(gradcheck_layer("identity", l, &x, &y, true, true, 1e-2, 1e-4, 1e-4) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    return rn_test_report("test_identity");
}
