/* gelu (exact erf form): values against known constants and the closed form in double, the
 * input gradient against central finite differences, and the far tails. */
#include "nn_gradcheck.h"

int main(void)
{
    rn_layer *l = rn_gelu_create();
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 4, 5}), out;
    char err[128];
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(rn_shape_equal(&in, &out));
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    int64_t n = rn_tensor_numel(&x);
    gc_fill(x.data, n, 19, -4.0, 4.0);
    /* known values: gelu(1) = Phi(1) = 0.841344746..., gelu(-1) = -(1 - Phi(1)),
     * gelu(0) = 0, gelu(-10) ~ -7.6e-23 (rounds to -0), gelu(10) = 10 */
    const float pts[5] = {1.0f, -1.0f, 0.0f, -10.0f, 10.0f};
    const double want[5] = {0.8413447460685429, -0.15865525393145707, 0.0, 0.0, 10.0};
    for (int i = 0; i < 5; i++) x.data[i] = pts[i];
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    for (int i = 0; i < 5; i++) CHECK_NEAR(y.data[i], want[i], 1e-7, 1e-7);
    /* everywhere: |diff| <= 1e-7 + 1e-6 |ref| against x Phi(x) in double */
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x.data[i], ref = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        bad += !(fabs(y.data[i] - ref) <= 1e-7 + 1e-6 * fabs(ref));
    }
    CHECK(bad == 0);
    /* gradient: eps 1e-3, |diff| <= 1e-4 + 1e-3 |numeric| */
    CHECK(gradcheck_layer("gelu", l, &x, &y, true, true, 1e-3, 1e-4, 1e-3) == 0);
    /* d/dx gelu at 0 is 1/2 */
    rn_tensor dy = y, dx;
    rn_tensor_alloc(&dx, in);
    dy.data = calloc((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++) dy.data[i] = 1.0f;
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    CHECK_NEAR(dx.data[2], 0.5, 1e-7, 0.0);
    CHECK_NEAR(dx.data[3], 0.0, 1e-7, 0.0);
    CHECK_NEAR(dx.data[4], 1.0, 1e-7, 0.0);
    free(dy.data);
    rn_tensor_free(&dx);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    return rn_test_report("test_gelu");
}
