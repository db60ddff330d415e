/* avg_pool2d: forward against a direct loop over the zero-padded input in double, with and
 * without count_include_pad; the input gradient against central finite differences; argument
 * and shape errors. */
#include <string.h>

#include "nn_gradcheck.h"

/* y = the mean of each k x k window of x padded with p zeros; the divisor is k * k, or only the
 * window's in-bounds count without count_include_pad (floor mode never overhangs the padding) */
static void avg_direct(const float *x, double *y, int64_t planes, int64_t h, int64_t w, int64_t k,
                       int64_t s, int64_t p, bool cip, int64_t oh, int64_t ow)
{
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                double sum = 0.0;
                int64_t inside = 0;
                for (int64_t a = 0; a < k; a++)
                    for (int64_t b = 0; b < k; b++) {
                        int64_t r = i * s - p + a, c = j * s - p + b;
                        if (r < 0 || r >= h || c < 0 || c >= w) continue;
                        sum += x[(pl * h + r) * w + c];
                        inside++;
                    }
                y[(pl * oh + i) * ow + j] = sum / (double)(cip ? k * k : inside);
            }
}

static void check_case(int64_t hw, int64_t k, int64_t s, int64_t p, bool cip)
{
    char err[256], name[96];
    snprintf(name, sizeof name, "avg_pool2d %lldx%lld k%lld s%lld p%lld%s", (long long)hw,
             (long long)hw + 1, (long long)k, (long long)s, (long long)p,
             cip ? "" : " exclude_pad");
    rn_layer *l = rn_avgpool2d_create(k, s, p, cip, err, sizeof err);
    CHECK(l != NULL);
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, hw, hw + 1}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    int64_t oh = (hw + 2 * p - k) / s + 1, ow = (hw + 1 + 2 * p - k) / s + 1;
    CHECK(out.ndim == 4 && out.d[0] == 2 && out.d[1] == 3 && out.d[2] == oh && out.d[3] == ow);
    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 17, -1.0, 1.0);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    double *ref = malloc((size_t)rn_tensor_numel(&y) * sizeof *ref);
    avg_direct(x.data, ref, 6, hw, hw + 1, k, s, p, cip, oh, ow);
    /* |diff| <= 1e-6 + 1e-5 |ref| */
    int bad = 0;
    for (int64_t i = 0; i < rn_tensor_numel(&y); i++)
        bad += !(fabs(y.data[i] - ref[i]) <= 1e-6 + 1e-5 * fabs(ref[i]));
    CHECK(bad == 0);
    free(ref);
    /* linear: eps 1e-2, |diff| <= 1e-4 + 1e-4 |numeric| */
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-2, 1e-4, 1e-4) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
}

int main(void)
{
    check_case(6, 2, 2, 0, true);
    check_case(7, 3, 2, 1, true);  /* ResNet-D style downsampling window */
    check_case(7, 3, 2, 1, false);
    check_case(5, 3, 1, 1, false); /* every border window is clipped */
    check_case(6, 4, 3, 2, true);  /* padding = k / 2 */

    char err[256];
    CHECK(rn_avgpool2d_create(3, 1, 2, true, err, sizeof err) == NULL);
    CHECK(strcmp(err, "avg_pool2d: expected kernel, stride >= 1 and 0 <= padding <= kernel / 2, "
                      "got 3, 1, 2") == 0);
    CHECK(rn_avgpool2d_create(2, 0, 0, true, err, sizeof err) == NULL);
    rn_layer *l = rn_avgpool2d_create(5, 1, 1, true, err, sizeof err);
    rn_shape in = rn_shape_make(4, (int64_t[]){1, 3, 2, 8}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "avg_pool2d: input 3x2x8 is smaller than the 5x5 window (padding 1)") == 0);
    rn_layer_destroy(l);
    return rn_test_report("test_avgpool2d");
}
