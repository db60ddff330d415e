/* conv2d: forward against a direct loop in double; input, weight and bias gradients against
 * central finite differences; oneDNN's plain path (few channels) and its blocked path (16+
 * channels on either side); a partial batch reuses the right plan. */
#include <string.h>

#include "nn_gradcheck.h"

/* y (n,oc,oh,ow) = sum over ic,kh,kw of x (n,ic,h,w) * w (oc,ic,k,k) + b, zero padding */
static void conv_direct(const float *x, const float *w, const float *b, double *y, int64_t n,
                        int64_t ic, int64_t h, int64_t wd, int64_t oc, int64_t k, int64_t s,
                        int64_t p, int64_t oh, int64_t ow)
{
    for (int64_t in = 0; in < n; in++)
        for (int64_t o = 0; o < oc; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t c = 0; c < ic; c++)
                        for (int64_t a = 0; a < k; a++)
                            for (int64_t e = 0; e < k; e++) {
                                int64_t yi = i * s - p + a, xj = j * s - p + e;
                                if (yi < 0 || yi >= h || xj < 0 || xj >= wd) continue;
                                acc += (double)x[((in * ic + c) * h + yi) * wd + xj] *
                                       w[((o * ic + c) * k + a) * k + e];
                            }
                    y[((in * oc + o) * oh + i) * ow + j] = acc;
                }
}

static void check_case(int64_t n, int64_t ic, int64_t oc, int64_t hw, int64_t k, int64_t s,
                       int64_t p, bool bias)
{
    char err[256], name[96];
    snprintf(name, sizeof name, "conv N%lld C%lld->%lld %lldx%lld k%lld s%lld p%lld%s",
             (long long)n, (long long)ic, (long long)oc, (long long)hw, (long long)hw,
             (long long)k, (long long)s, (long long)p, bias ? "" : " nobias");
    rn_layer *l = rn_conv2d_create("conv", ic, oc, k, s, p, bias, 7, err, sizeof err);
    CHECK(l != NULL);
    if (!l) return;
    rn_shape in = rn_shape_make(4, (int64_t[]){n, ic, hw, hw}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    int64_t o = (hw + 2 * p - k) / s + 1;
    CHECK(out.ndim == 4 && out.d[0] == n && out.d[1] == oc && out.d[2] == o && out.d[3] == o);
    CHECK(l->n_params == (bias ? 2 : 1));
    CHECK(strcmp(l->params[0].name, "conv.weight") == 0);
    if (bias) CHECK(strcmp(l->params[1].name, "conv.bias") == 0);

    /* init: U(+-1/sqrt(fan_in)), not all equal */
    double bound = 1.0 / sqrt((double)(ic * k * k)), mn = 1e9, mx = -1e9;
    for (int64_t i = 0; i < rn_tensor_numel(l->params[0].value); i++) {
        double v = l->params[0].value->data[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    CHECK(mn >= -bound && mx <= bound && mx - mn > bound);

    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 11, -1.0, 1.0);

    /* forward vs the direct loop: |diff| <= 1e-5 + 1e-5 |ref| */
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    double *ref = malloc((size_t)rn_tensor_numel(&y) * sizeof *ref);
    conv_direct(x.data, l->params[0].value->data, bias ? l->params[1].value->data : NULL, ref, n,
                ic, hw, hw, oc, k, s, p, o, o);
    int bad = 0;
    for (int64_t i = 0; i < rn_tensor_numel(&y); i++)
        if (!(fabs(y.data[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i]))) {
            if (bad++ < 3)
                fprintf(stderr, "%s forward[%lld]: %.9g vs direct %.9g\n", name, (long long)i,
                        y.data[i], ref[i]);
        }
    CHECK(bad == 0);

    /* a batch of 1 (another plan) gives the first sample of the batch-n result */
    if (n > 1) {
        rn_tensor x1 = x, y1;
        x1.shape.d[0] = 1;
        rn_shape o1 = out;
        o1.d[0] = 1;
        rn_tensor_alloc(&y1, o1);
        CHECK(l->ops->forward(l, &x1, &y1, true) == 0);
        int same = 1;
        for (int64_t i = 0; i < rn_tensor_numel(&y1); i++)
            same &= fabs(y1.data[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i]);
        CHECK(same);
        rn_tensor_free(&y1);
    }
    free(ref);

    /* gradients: eps 1e-2 (conv is linear in x and w, so only rounding limits the difference),
     * |diff| <= 1e-3 + 1e-3 |numeric| */
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-2, 1e-3, 1e-3) == 0);

    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
}

int main(void)
{
    /* few channels: oneDNN's plain NCHW kernels */
    check_case(2, 3, 4, 5, 3, 1, 1, true);
    check_case(2, 3, 4, 5, 3, 2, 1, true);
    check_case(2, 3, 4, 5, 3, 1, 0, false);
    check_case(2, 3, 4, 6, 3, 2, 0, true); /* floor: (6 - 3) / 2 + 1 = 2 */
    /* >= 16 channels on either side: blocked layouts with reorders inside the plan */
    check_case(2, 16, 8, 5, 3, 1, 1, true);
    check_case(2, 1, 16, 6, 3, 1, 0, true); /* like MNIST conv1: plain input, blocked output */
    check_case(2, 16, 16, 5, 3, 2, 1, true);

    /* errors name the layer and both shapes */
    char err[256];
    rn_layer *l = rn_conv2d_create("conv2", 32, 64, 3, 1, 0, true, 1, err, sizeof err);
    rn_shape in = rn_shape_make(4, (int64_t[]){8, 16, 26, 26}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "conv2d conv2: expected input 32xHxW, got 16x26x26") == 0);
    in = rn_shape_make(4, (int64_t[]){8, 32, 2, 2});
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strstr(err, "smaller than the 3x3 kernel") != NULL);
    rn_layer_destroy(l);
    CHECK(rn_conv2d_create("bad", 0, 4, 3, 1, 0, true, 1, err, sizeof err) == NULL);
    CHECK(strstr(err, "conv2d bad: expected") == err);

    /* init is a pure function of the seed */
    rn_layer *a = rn_conv2d_create("c", 3, 4, 3, 1, 0, true, 42, err, sizeof err);
    rn_layer *b = rn_conv2d_create("c", 3, 4, 3, 1, 0, true, 42, err, sizeof err);
    rn_layer *c = rn_conv2d_create("c", 3, 4, 3, 1, 0, true, 43, err, sizeof err);
    CHECK(memcmp(a->params[0].value->data, b->params[0].value->data, 108 * sizeof(float)) == 0);
    CHECK(memcmp(a->params[0].value->data, c->params[0].value->data, 108 * sizeof(float)) != 0);
    rn_layer_destroy(a);
    rn_layer_destroy(b);
    rn_layer_destroy(c);
    return rn_test_report("test_conv2d");
}
