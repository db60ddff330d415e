/* leaky_relu: values for the default, a larger and a negative slope; the input gradient against
 * central finite differences at points at least 0.05 away from the kink (eps 1e-3, so no
 * difference straddles 0); x = 0 takes the slope, like PyTorch; a non-finite slope is refused. */
#include <string.h>

#include "nn_gradcheck.h"

static void check_slope(double slope)
{
    char err[128], name[64];
    snprintf(name, sizeof name, "leaky_relu %g", slope);
    rn_layer *l = rn_leaky_relu_create(slope, err, sizeof err);
    CHECK(l != NULL);
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 4, 5}), out;
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
    for (int64_t i = 0; i < n; i++)
        bad += y.data[i] != (x.data[i] > 0 ? x.data[i] : x.data[i] * (float)slope);
    CHECK(bad == 0);
    /* |diff| <= 1e-4 + 1e-4 |numeric| */
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-3, 1e-4, 1e-4) == 0);

    /* at x = 0 the gradient is the slope's (PyTorch: x > 0 ? dy : dy * slope) */
    x.data[0] = 0.0f;
    rn_tensor dy = y, dx;
    rn_tensor_alloc(&dx, in);
    dy.data = calloc((size_t)n, sizeof(float));
    dy.data[0] = 1.0f;
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(y.data[0] == 0.0f);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    CHECK(dx.data[0] == (float)slope);
    free(dy.data);
    rn_tensor_free(&dx);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
}

int main(void)
{
    check_slope(0.01); /* PyTorch's default */
    check_slope(0.2);
    check_slope(-0.5); /* the output's sign no longer tells the side: backward reads x */
    char err[128];
    CHECK(rn_leaky_relu_create(NAN, err, sizeof err) == NULL);
    CHECK(strcmp(err, "leaky_relu: expected a finite negative_slope, got nan") == 0);
    return rn_test_report("test_leaky_relu");
}
