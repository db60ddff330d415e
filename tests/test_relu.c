/* relu: values, and the input gradient against central finite differences at points at least
 * 0.05 away from the kink (eps 1e-3, so no difference straddles 0). */
#include "nn_gradcheck.h"

int main(void)
{
    rn_layer *l = rn_relu_create();
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 4, 5}), out;
    char err[128];
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(rn_shape_equal(&in, &out));
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    int64_t n = rn_tensor_numel(&x);
    gc_fill(x.data, n, 9, -1.0, 1.0);
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x.data[i]) < 0.05f) x.data[i] = x.data[i] < 0 ? -0.05f : 0.05f;
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += y.data[i] != (x.data[i] > 0 ? x.data[i] : 0.0f);
    CHECK(bad == 0);
    /* |diff| <= 1e-4 + 1e-4 |numeric| */
    CHECK(gradcheck_layer("relu", l, &x, &y, true, true, 1e-3, 1e-4, 1e-4) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    return rn_test_report("test_relu");
}
