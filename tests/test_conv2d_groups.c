/* conv2d with dilation and groups (rn_conv2d_create2): forward against a direct loop in double;
 * input, weight and bias gradients against central finite differences; plain and blocked oneDNN
 * paths; the init bound from fan_in = in_ch / groups * k * k; rn_conv2d_create is create2 with
 * dilation 1 and groups 1; argument and shape errors. */
#include <string.h>

#include "nn_gradcheck.h"

typedef struct geom {
    int64_t n, ic, oc, hw, k, s, p, d, g;
    bool bias;
} geom;

/* y (n,oc,oh,ow) = sum over the group's ic/g channels and the dilated window of x * w + b */
static void conv_direct(const geom *c, const float *x, const float *w, const float *b, double *y,
                        int64_t o_hw)
{
    const int64_t icg = c->ic / c->g, ocg = c->oc / c->g, h = c->hw;
    for (int64_t in = 0; in < c->n; in++)
        for (int64_t o = 0; o < c->oc; o++)
            for (int64_t i = 0; i < o_hw; i++)
                for (int64_t j = 0; j < o_hw; j++) {
                    double acc = b ? b[o] : 0.0;
                    int64_t grp = o / ocg;
                    for (int64_t cc = 0; cc < icg; cc++)
                        for (int64_t a = 0; a < c->k; a++)
                            for (int64_t e = 0; e < c->k; e++) {
                                int64_t yi = i * c->s - c->p + a * c->d;
                                int64_t xj = j * c->s - c->p + e * c->d;
                                if (yi < 0 || yi >= h || xj < 0 || xj >= h) continue;
                                int64_t ch = grp * icg + cc;
                                acc += (double)x[((in * c->ic + ch) * h + yi) * h + xj] *
                                       w[((o * icg + cc) * c->k + a) * c->k + e];
                            }
                    y[((in * c->oc + o) * o_hw + i) * o_hw + j] = acc;
                }
}

static void check_case(geom c)
{
    char err[256], name[128];
    snprintf(name, sizeof name, "conv N%lld C%lld->%lld %lldx%lld k%lld s%lld p%lld d%lld g%lld%s",
             (long long)c.n, (long long)c.ic, (long long)c.oc, (long long)c.hw, (long long)c.hw,
             (long long)c.k, (long long)c.s, (long long)c.p, (long long)c.d, (long long)c.g,
             c.bias ? "" : " nobias");
    rn_conv2d_args a = {.in_ch = c.ic, .out_ch = c.oc, .kernel = c.k, .stride = c.s,
                        .padding = c.p, .dilation = c.d, .groups = c.g, .bias = c.bias};
    rn_layer *l = rn_conv2d_create2("conv", &a, 7, err, sizeof err);
    CHECK(l != NULL);
    if (!l) {
        fprintf(stderr, "%s: %s\n", name, err);
        return;
    }
    rn_shape in = rn_shape_make(4, (int64_t[]){c.n, c.ic, c.hw, c.hw}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    int64_t o = (c.hw + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
    CHECK(out.ndim == 4 && out.d[0] == c.n && out.d[1] == c.oc && out.d[2] == o && out.d[3] == o);
    rn_tensor *w = l->params[0].value;
    CHECK(w->shape.ndim == 4 && w->shape.d[0] == c.oc && w->shape.d[1] == c.ic / c.g &&
          w->shape.d[2] == c.k && w->shape.d[3] == c.k);
    CHECK(strcmp(l->params[0].name, "conv.weight") == 0);
    CHECK(l->n_params == (c.bias ? 2 : 1));

    /* init: U(+-1/sqrt(in_ch / groups * k * k)), spread over most of the range */
    double bound = 1.0 / sqrt((double)(c.ic / c.g * c.k * c.k)), mn = 1e9, mx = -1e9;
    for (int64_t i = 0; i < rn_tensor_numel(w); i++) {
        mn = w->data[i] < mn ? w->data[i] : mn;
        mx = w->data[i] > mx ? w->data[i] : mx;
    }
    CHECK(mn >= -bound && mx <= bound && mx - mn > bound);

    rn_tensor x, y;
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 11, -1.0, 1.0);

    /* forward vs the direct loop: |diff| <= 1e-5 + 1e-5 |ref| */
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    double *ref = malloc((size_t)rn_tensor_numel(&y) * sizeof *ref);
    conv_direct(&c, x.data, w->data, c.bias ? l->params[1].value->data : NULL, ref, o);
    int bad = 0;
    for (int64_t i = 0; i < rn_tensor_numel(&y); i++)
        if (!(fabs(y.data[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i])))
            if (bad++ < 3)
                fprintf(stderr, "%s forward[%lld]: %.9g vs direct %.9g\n", name, (long long)i,
                        y.data[i], ref[i]);
    CHECK(bad == 0);
    free(ref);

    /* gradients: eps 1e-2 (linear in x and w), |diff| <= 1e-3 + 1e-3 |numeric| */
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-2, 1e-3, 1e-3) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_destroy(l);
}

int main(void)
{
    /* plain NCHW kernels */
    check_case((geom){2, 3, 4, 7, 3, 1, 2, 2, 1, true});   /* dilation 2, "same" padding */
    check_case((geom){2, 4, 6, 6, 3, 1, 1, 1, 2, true});   /* 2 groups */
    check_case((geom){2, 4, 4, 7, 3, 2, 1, 1, 4, false});  /* depthwise, stride 2 */
    check_case((geom){2, 6, 3, 9, 3, 2, 0, 3, 3, true});   /* groups and dilation 3 */
    /* blocked layouts (16+ channels) with 5-D grouped weights */
    check_case((geom){2, 16, 32, 6, 3, 1, 2, 2, 4, true});
    check_case((geom){2, 16, 16, 5, 3, 1, 1, 1, 16, true}); /* depthwise */

    char err[256];
    /* groups must divide both channel counts */
    rn_conv2d_args a = {.in_ch = 6, .out_ch = 4, .kernel = 3, .stride = 1, .padding = 0,
                        .dilation = 1, .groups = 4, .bias = true};
    CHECK(rn_conv2d_create2("c3", &a, 1, err, sizeof err) == NULL);
    CHECK(strcmp(err, "conv2d c3: in_ch 6 and out_ch 4 must both be divisible by groups 4") == 0);
    a.groups = 0;
    CHECK(rn_conv2d_create2("c3", &a, 1, err, sizeof err) == NULL);
    CHECK(strstr(err, "conv2d c3: expected") == err);
    a.groups = 2;
    a.dilation = 0;
    CHECK(rn_conv2d_create2("c3", &a, 1, err, sizeof err) == NULL);

    /* a dilated kernel larger than the padded input names its extent */
    a.dilation = 3; /* 3x3 kernel spans 7x7 */
    rn_layer *l = rn_conv2d_create2("c3", &a, 1, err, sizeof err);
    CHECK(l != NULL);
    rn_shape in = rn_shape_make(4, (int64_t[]){1, 6, 6, 6}), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) != 0);
    CHECK(strcmp(err, "conv2d c3: input 6x6x6 is smaller than the 3x3 kernel (padding 0, "
                      "dilation 3: 7x7)") == 0);
    rn_layer_destroy(l);

    /* rn_conv2d_create is create2 with dilation 1 and groups 1: same init, same output */
    rn_layer *old = rn_conv2d_create("c", 3, 4, 3, 2, 1, true, 42, err, sizeof err);
    rn_conv2d_args b = {.in_ch = 3, .out_ch = 4, .kernel = 3, .stride = 2, .padding = 1,
                        .dilation = 1, .groups = 1, .bias = true};
    rn_layer *neu = rn_conv2d_create2("c", &b, 42, err, sizeof err);
    CHECK(memcmp(old->params[0].value->data, neu->params[0].value->data, 108 * sizeof(float)) ==
          0);
    CHECK(memcmp(old->params[1].value->data, neu->params[1].value->data, 4 * sizeof(float)) == 0);
    rn_layer_destroy(old);
    rn_layer_destroy(neu);
    return rn_test_report("test_conv2d_groups");
}
