/* max_pool2d: values against a direct loop; the input gradient against central finite
 * differences, on inputs whose window values are distinct and >= 0.01 apart (eps 1e-3, so no
 * difference changes the argmax); the 2x2/2 fast path, a 3x3/2 overlapping window and a
 * 3x3/3 window with floor-mode leftovers; padding (ResNet's 3x3/2 pad 1 stem pool). */
#include <string.h>

#include "nn_gradcheck.h"

static void check_case(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                       int64_t pd)
{
    char err[256], name[80];
    snprintf(name, sizeof name, "max_pool2d %lldx%lld k%lld s%lld p%lld", (long long)h,
             (long long)w, (long long)k, (long long)s, (long long)pd);
    rn_layer *l = rn_maxpool2d_create2(k, s, pd, err, sizeof err);
    rn_shape in = rn_shape_make(4, (int64_t[]){n, c, h, w}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    int64_t oh = (h + 2 * pd - k) / s + 1, ow = (w + 2 * pd - k) / s + 1;
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
                        int64_t r = i * s - pd + a, q = j * s - pd + b;
                        if (r < 0 || r >= h || q < 0 || q >= w) continue; /* -inf padding */
                        float v = x.data[(p * h + r) * w + q];
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
    check_case(2, 3, 6, 6, 2, 2, 0);
    check_case(2, 3, 7, 5, 2, 2, 0); /* odd height: the last row is dropped (floor) */
    check_case(2, 2, 7, 7, 3, 2, 0); /* overlapping windows */
    check_case(1, 2, 8, 8, 3, 3, 0);
    check_case(2, 2, 8, 8, 3, 2, 1); /* ResNet's stem pool: 8x8 -> 4x4 */
    check_case(1, 2, 7, 6, 2, 2, 1); /* padded 2x2/2: the fast path must not take it */

    char err[256];
    rn_layer *l = rn_maxpool2d_create(2, 2, err, sizeof err);
    rn_shape in = rn_shape_make(2, (int64_t[]){4, 10}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "max_pool2d: expected input CxHxW, got 10") == 0);
    rn_layer_destroy(l);
    CHECK(rn_maxpool2d_create(0, 2, err, sizeof err) == NULL);
    CHECK(rn_maxpool2d_create2(3, 2, 2, err, sizeof err) == NULL);
    CHECK(strstr(err, "padding should be at most half the kernel") != NULL);
    return rn_test_report("test_maxpool2d");
}
