/* global_avg_pool2d: each plane's mean against a double sum, the input gradient (dy / HW over
 * the plane) against central finite differences, the shape error. */
#include <string.h>

#include "nn_gradcheck.h"

int main(void)
{
    rn_layer *l = rn_global_avgpool2d_create();
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 5, 7}), out;
    char err[128];
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(out.ndim == 4 && out.d[0] == 2 && out.d[1] == 3 && out.d[2] == 1 && out.d[3] == 1);
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 13, -2.0, 2.0);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    /* |diff| <= 1e-7 + 1e-6 |ref| */
    for (int pl = 0; pl < 6; pl++) {
        double s = 0.0;
        for (int j = 0; j < 35; j++) s += x.data[pl * 35 + j];
        CHECK_NEAR(y.data[pl], s / 35.0, 1e-7, 1e-6);
    }
    /* linear: eps 1e-2, |diff| <= 1e-4 + 1e-4 |numeric| */
    CHECK(gradcheck_layer("global_avg_pool2d", l, &x, &y, true, true, 1e-2, 1e-4, 1e-4) == 0);
    rn_shape flat = rn_shape_make(2, (int64_t[]){2, 10});
    CHECK(l->ops->setup(l, &flat, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "global_avg_pool2d: expected input CxHxW, got 10") == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    return rn_test_report("test_global_avgpool2d");
}
