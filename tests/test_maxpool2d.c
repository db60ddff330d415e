/* max_pool2d: values against a direct loop; the input gradient against central finite
 * differences, on inputs whose window values are distinct and >= 0.01 apart (eps 1e-3, so no
 * difference changes the argmax); the 2x2/2 fast path, a 3x3/2 overlapping window and a
 * 3x3/3 window with floor-mode leftovers. */
#include <string.h>

#include "nn_gradcheck.h"

static void check_case(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s)
{
    char err[256], name[64];
    snprintf(name, sizeof name, "max_pool2d %lldx%lld k%lld s%lld", (long long)h, (long long)w,
             (long long)k, (long long)s);
    rn_layer *l = rn_maxpool2d_create(k, s, err, sizeof err);
    rn_shape in = rn_shape_make(4, (int64_t[]){n, c, h, w}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    int64_t oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    CHECK(out.d[0] == n && out.d[1] == c && out.d[2] == oh && out.d[3] == ow);
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    /* distinct values 0.01 apart, shuffled */
    int64_t total = rn_tensor_numel(&x);
    for (int64_t i = 0; i < total; i++) x.data[i] = 0.01f * (float)(i - total / 2);
    uint64_t st = 77;
    for (int64_t i = total - 1; i > 0; i--) {
        int64_t j = (int64_t)gc_uniform(&st, 0.0, (double)(i + 1));
        float t = x.data[i];
        x.data[i] = x.data[j];
        x.data[j] = t;
    }
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    int bad = 0;
    for (int64_t p = 0; p < n * c; p++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                float m = -1e30f;
                for (int64_t a = 0; a < k; a++)
                    for (int64_t b = 0; b < k; b++) {
                        float v = x.data[(p * h + i * s + a) * w + j * s + b];
                        m = v > m ? v : m;
                    }
                bad += y.data[(p * oh + i) * ow + j] != m;
            }
    CHECK(bad == 0);
    /* each dx is a sum of r values (exact): |diff| <= 1e-3 + 1e-3 |numeric| */
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-3, 1e-3, 1e-3) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
}

int main(void)
{
    check_case(2, 3, 6, 6, 2, 2);
    check_case(2, 3, 7, 5, 2, 2); /* odd height: the last row is dropped (floor) */
    check_case(2, 2, 7, 7, 3, 2); /* overlapping windows */
    check_case(1, 2, 8, 8, 3, 3);

    char err[256];
    rn_layer *l = rn_maxpool2d_create(2, 2, err, sizeof err);
    rn_shape in = rn_shape_make(2, (int64_t[]){4, 10}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "max_pool2d: expected input CxHxW, got 10") == 0);
    rn_layer_destroy(l);
    CHECK(rn_maxpool2d_create(0, 2, err, sizeof err) == NULL);
    return rn_test_report("test_maxpool2d");
}
