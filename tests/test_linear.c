/* linear: forward against a double loop; input, weight and bias gradients against central
 * finite differences; shape errors. */
#include <string.h>

#include "nn_gradcheck.h"

static void check_case(int64_t n, int64_t in_f, int64_t out_f, bool bias)
{
    char err[256], name[64];
    snprintf(name, sizeof name, "linear N%lld %lld->%lld%s", (long long)n, (long long)in_f,
             (long long)out_f, bias ? "" : " nobias");
    rn_layer *l = rn_linear_create("fc", in_f, out_f, bias, 3, err, sizeof err);
    CHECK(l != NULL);
    if (!l) return;
    rn_shape in = rn_shape_make(2, (int64_t[]){n, in_f}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(out.ndim == 2 && out.d[0] == n && out.d[1] == out_f);
    CHECK(strcmp(l->params[0].name, "fc.weight") == 0);
    CHECK(l->params[0].value->shape.d[0] == out_f && l->params[0].value->shape.d[1] == in_f);
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, n * in_f, 5, -1.0, 1.0);

    /* forward: |diff| <= 1e-5 + 1e-5 |ref| against sum_k x[i,k] w[j,k] + b[j] in double */
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    const float *w = l->params[0].value->data, *b = bias ? l->params[1].value->data : NULL;
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < out_f; j++) {
            double acc = b ? b[j] : 0.0;
            for (int64_t k = 0; k < in_f; k++)
                acc += (double)x.data[i * in_f + k] * w[j * in_f + k];
            bad += !(fabs(y.data[i * out_f + j] - acc) <= 1e-5 + 1e-5 * fabs(acc));
        }
    CHECK(bad == 0);

    /* gradients: eps 1e-2 (linear in x, W, b), |diff| <= 1e-3 + 1e-3 |numeric| */
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-2, 1e-3, 1e-3) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
}

int main(void)
{
    check_case(3, 7, 5, true);
    check_case(4, 33, 10, false);
    check_case(1, 16, 3, true);

    char err[256];
    rn_layer *l = rn_linear_create("fc1", 9216, 128, true, 1, err, sizeof err);
    rn_shape in = rn_shape_make(4, (int64_t[]){128, 12, 12, 12}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "linear fc1: expected input with 9216 features, got 12x12x12 (1728)") == 0);
    in = rn_shape_make(4, (int64_t[]){128, 64, 12, 12});
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "linear fc1: expected input with 9216 features, got 64x12x12 (9216); add "
                      "a flatten before it") == 0);
    /* U(+-1/sqrt(9216)) */
    double bound = 1.0 / 96.0, mx = 0.0;
    for (int64_t i = 0; i < 9216 * 128; i++) {
        double v = fabs(l->params[0].value->data[i]);
        mx = v > mx ? v : mx;
    }
    CHECK(mx <= bound && mx > 0.99 * bound);
    rn_layer_destroy(l);
    CHECK(rn_linear_create("x", 0, 3, true, 1, err, sizeof err) == NULL);
    return rn_test_report("test_linear");
}
