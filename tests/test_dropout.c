/* dropout: the kept fraction and scale, identity in eval mode, masks that depend only on the
 * seed and the call count, and the input gradient against central finite differences with the
 * mask held fixed (the call counter is reset before each forward). */
#include <string.h>

#include "nn_gradcheck.h"

int main(void)
{
    char err[128];
    rn_layer *l = rn_dropout_create(0.25, 1234, err, sizeof err);
    rn_shape in = rn_shape_make(2, (int64_t[]){64, 1000}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    CHECK(rn_shape_equal(&in, &out));
    rn_tensor x, y, y2;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    rn_tensor_alloc(&y2, out);
    int64_t n = rn_tensor_numel(&x);
    gc_fill(x.data, n, 3, 0.5, 1.5);

    /* train: each kept element is x / (1 - p); the kept fraction is within 5 sigma of 0.75 */
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->calls == 1);
    int64_t kept = 0, wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        if (y.data[i] != 0.0f) {
            kept++;
            wrong += fabsf(y.data[i] - x.data[i] / 0.75f) > 1e-6f * fabsf(y.data[i]);
        }
    }
    double frac = (double)kept / (double)n, sigma = sqrt(0.25 * 0.75 / (double)n);
    CHECK(fabs(frac - 0.75) < 5 * sigma);
    CHECK(wrong == 0);

    /* the next call draws a different mask; the same (seed, call) the same one */
    CHECK(l->ops->forward(l, &x, &y2, true) == 0);
    CHECK(memcmp(y.data, y2.data, (size_t)n * sizeof(float)) != 0);
    l->calls = 0;
    CHECK(l->ops->forward(l, &x, &y2, true) == 0);
    CHECK(memcmp(y.data, y2.data, (size_t)n * sizeof(float)) == 0);

    /* the backward of the last train forward uses its mask: dx = dy * mask / (1 - p) */
    rn_tensor dy = y2, dx = y2;
    rn_tensor_alloc(&dy, out);
    rn_tensor_alloc(&dx, out);
    for (int64_t i = 0; i < n; i++) dy.data[i] = 1.0f;
    CHECK(l->ops->backward(l, &x, &y2, &dy, &dx) == 0);
    wrong = 0;
    for (int64_t i = 0; i < n; i++)
        wrong += dx.data[i] != (y.data[i] != 0.0f ? 1.0f / 0.75f : 0.0f);
    CHECK(wrong == 0);

    /* eval: identity, and the counter does not move */
    uint64_t calls = l->calls;
    CHECK(l->ops->forward(l, &x, &y2, false) == 0);
    CHECK(memcmp(x.data, y2.data, (size_t)n * sizeof(float)) == 0);
    CHECK(l->calls == calls);
    CHECK(l->ops->backward(l, &x, &y2, &dy, &dx) == 0);
    CHECK(dx.data[0] == 1.0f && dx.data[n - 1] == 1.0f);
    rn_tensor_free(&dy);
    rn_tensor_free(&dx);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_tensor_free(&y2);
    rn_layer_destroy(l);

    /* finite differences, small shape, p = 0.5: |diff| <= 1e-4 + 1e-4 |numeric| */
    l = rn_dropout_create(0.5, 99, err, sizeof err);
    in = rn_shape_make(4, (int64_t[]){2, 3, 4, 4});
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 4, -1.0, 1.0);
    CHECK(gradcheck_layer("dropout p0.5", l, &x, &y, true, true, 1e-3, 1e-4, 1e-4) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);

    /* p = 1 drops everything (no inf scale), p = 0 is the identity */
    l = rn_dropout_create(1.0, 1, err, sizeof err);
    in = rn_shape_make(2, (int64_t[]){2, 8});
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, 16, 5, 1.0, 2.0);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    int zeros = 0;
    for (int i = 0; i < 16; i++) zeros += y.data[i] == 0.0f;
    CHECK(zeros == 16);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
    CHECK(rn_dropout_create(1.5, 1, err, sizeof err) == NULL);
    CHECK(strcmp(err, "dropout: expected p in [0, 1], got 1.5") == 0);
    CHECK(rn_dropout_create(NAN, 1, err, sizeof err) == NULL);
    return rn_test_report("test_dropout");
}
