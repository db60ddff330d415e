/* Every CPU layer and the cross-entropy against PyTorch 1.13 (tests/fixtures/layers, written by
 * scripts/make_fixtures.py): forward output, input gradient, parameter gradients and, for batch
 * norm, the running stats and num_batches_tracked after a forward, in train and eval mode.
 * Tolerance everywhere: |ours - PyTorch| <= 1e-5 + 1e-4 |PyTorch|. */
#include <string.h>

#include "fixture_io.h"
#include "layer.h"

#define ATOL 1e-5
#define RTOL 1e-4

typedef rn_layer *(*make_fn)(const fx_file *f, char *err, size_t errlen);

static int64_t cfg_i(const fx_file *f, const char *key, int64_t dflt)
{
    return (int64_t)llround(fx_cfg(f, key, (double)dflt));
}

static rn_layer *make_conv(const fx_file *f, char *err, size_t errlen)
{
    rn_conv2d_args a = {
        .in_ch = cfg_i(f, "in_ch", 0), .out_ch = cfg_i(f, "out_ch", 0),
        .kernel = cfg_i(f, "kernel", 0), .stride = cfg_i(f, "stride", 1),
        .padding = cfg_i(f, "padding", 0), .dilation = cfg_i(f, "dilation", 1),
        .groups = cfg_i(f, "groups", 1), .bias = cfg_i(f, "bias", 1) != 0,
    };
    return rn_conv2d_create2("m", &a, 1, err, errlen);
}

static rn_layer *make_bn(const fx_file *f, char *err, size_t errlen)
{
    return rn_batchnorm2d_create("m", cfg_i(f, "channels", 0), fx_cfg(f, "eps", 1e-5),
                                 fx_cfg(f, "momentum", 0.1), err, errlen);
}

static rn_layer *make_leaky(const fx_file *f, char *err, size_t errlen)
{
    return rn_leaky_relu_create(fx_cfg(f, "negative_slope", 0.01), err, errlen);
}

static rn_layer *make_gelu(const fx_file *f, char *err, size_t errlen) { return rn_gelu_create(); }

static rn_layer *make_identity(const fx_file *f, char *err, size_t errlen)
{
    return rn_identity_create();
}

static rn_layer *make_avg(const fx_file *f, char *err, size_t errlen)
{
    return rn_avgpool2d_create(cfg_i(f, "kernel", 0), cfg_i(f, "stride", 0),
                               cfg_i(f, "padding", 0), cfg_i(f, "count_include_pad", 1) != 0, err,
                               errlen);
}

static rn_layer *make_gap(const fx_file *f, char *err, size_t errlen)
{
    return rn_global_avgpool2d_create();
}

static rn_layer *make_max(const fx_file *f, char *err, size_t errlen)
{
    int64_t pad = cfg_i(f, "padding", 0);
    if (pad) return rn_maxpool2d_create2(cfg_i(f, "kernel", 0), cfg_i(f, "stride", 0), pad, err,
                                         errlen);
    return rn_maxpool2d_create(cfg_i(f, "kernel", 0), cfg_i(f, "stride", 0), err, errlen);
}

static rn_layer *make_linear(const fx_file *f, char *err, size_t errlen)
{
    return rn_linear_create("m", cfg_i(f, "in_features", 0), cfg_i(f, "out_features", 0),
                            cfg_i(f, "bias", 1) != 0, 1, err, errlen);
}

static int alloc_like(rn_tensor *t, const fx_array *a)
{
    if (!a || a->ndim < 1 || a->ndim > RN_MAX_DIMS) return -1;
    if (rn_tensor_alloc(t, rn_shape_make(a->ndim, a->dims))) return -1;
    memcpy(t->data, a->data, (size_t)a->numel * sizeof(float));
    return 0;
}

/* The parameter's name without the "m." prefix, as the fixture names it. */
static const char *suffix(const rn_layer *l, int i)
{
    const char *s = strchr(l->params[i].name, '.');
    return s ? s + 1 : l->params[i].name;
}

static void layer_case(const char *name, make_fn make)
{
    fx_file *f = fx_load(name);
    CHECK(f != NULL);
    if (!f) return;
    char err[256] = "", what[160];
    rn_layer *l = make(f, err, sizeof err);
    if (!l) fprintf(stderr, "%s: %s\n", name, err);
    CHECK(l != NULL);
    const fx_array *xa = fx_get(f, "x"), *ya = fx_get(f, "y"), *dya = fx_get(f, "dy"),
                   *dxa = fx_get(f, "dx");
    rn_tensor x = {0}, y = {0}, dy = {0}, dx = {0};
    if (!l || !xa || !ya || !dya || !dxa || alloc_like(&x, xa) || alloc_like(&dy, dya) ||
        alloc_like(&dx, xa)) {
        CHECK(0);
        goto done;
    }
    rn_shape out;
    if (l->ops->setup(l, &x.shape, &out, err, sizeof err)) fprintf(stderr, "%s: %s\n", name, err);
    CHECK(out.ndim == ya->ndim && memcmp(out.d, ya->dims, (size_t)out.ndim * 8) == 0);
    if (rn_shape_numel(&out) != ya->numel || rn_tensor_alloc(&y, out)) {
        CHECK(0);
        goto done;
    }
    for (int i = 0; i < l->n_params; i++) {
        const fx_array *pa = fx_get(f, suffix(l, i));
        rn_tensor *v = l->params[i].value;
        CHECK(pa && pa->numel == rn_tensor_numel(v));
        if (pa && pa->numel == rn_tensor_numel(v))
            memcpy(v->data, pa->data, (size_t)pa->numel * sizeof(float));
    }
    const fx_array *nbt = fx_find(f, "num_batches_tracked");
    if (nbt) CHECK(rn_batchnorm2d_set_num_batches_tracked(l, (int64_t)nbt->data[0]) == 0);

    bool train = cfg_i(f, "train", 1) != 0;
    l->err[0] = '\0';
    CHECK(l->ops->forward(l, &x, &y, train) == 0);
    snprintf(what, sizeof what, "%s y", name);
    fx_compare(what, y.data, rn_tensor_numel(&y), ya, ATOL, RTOL);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    if (l->err[0]) fprintf(stderr, "%s: %s\n", name, l->err);
    snprintf(what, sizeof what, "%s dx", name);
    fx_compare(what, dx.data, rn_tensor_numel(&dx), dxa, ATOL, RTOL);
    for (int i = 0; i < l->n_params; i++) {
        char key[96];
        if (l->params[i].grad) {
            snprintf(key, sizeof key, "grad.%s", suffix(l, i));
            snprintf(what, sizeof what, "%s %s", name, key);
            fx_compare(what, l->params[i].grad->data, rn_tensor_numel(l->params[i].grad),
                       fx_get(f, key), ATOL, RTOL);
        } else { /* a buffer: compare what forward left in it */
            snprintf(key, sizeof key, "after.%s", suffix(l, i));
            snprintf(what, sizeof what, "%s %s", name, key);
            fx_compare(what, l->params[i].value->data, rn_tensor_numel(l->params[i].value),
                       fx_get(f, key), ATOL, RTOL);
        }
    }
    const fx_array *nbt_after = fx_find(f, "after.num_batches_tracked");
    if (nbt_after)
        CHECK(rn_batchnorm2d_num_batches_tracked(l) == (int64_t)nbt_after->data[0]);
done:
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_tensor_free(&dy);
    rn_tensor_free(&dx);
    rn_layer_destroy(l);
    fx_free(f);
}

static void xent_case(const char *name)
{
    fx_file *f = fx_load(name);
    CHECK(f != NULL);
    if (!f) return;
    const fx_array *za = fx_get(f, "logits"), *la = fx_get(f, "labels"), *lossa = fx_get(f, "loss"),
                   *ga = fx_get(f, "dlogits"), *ca = fx_get(f, "correct");
    const fx_array *soft = fx_cfg(f, "soft", 0) != 0 ? fx_get(f, "soft") : NULL;
    rn_tensor z = {0}, g = {0};
    int32_t *labels = NULL;
    if (!za || !la || !lossa || !ga || !ca || za->ndim != 2 || alloc_like(&z, za) ||
        alloc_like(&g, za)) {
        CHECK(0);
        goto done;
    }
    labels = malloc((size_t)la->numel * sizeof *labels);
    for (int64_t i = 0; i < la->numel; i++) labels[i] = (int32_t)la->data[i];
    double ls = fx_cfg(f, "label_smoothing", 0.0);
    int64_t correct = -1;
    /* soft targets: no labels, so correct counts argmax hits on the soft target */
    double loss = rn_cross_entropy2(&z, soft ? NULL : labels, soft ? soft->data : NULL, ls, &g,
                                    &correct);
    char what[128];
    snprintf(what, sizeof what, "%s loss", name);
    float lossf = (float)loss;
    fx_compare(what, &lossf, 1, lossa, ATOL, RTOL);
    snprintf(what, sizeof what, "%s dlogits", name);
    fx_compare(what, g.data, rn_tensor_numel(&g), ga, ATOL, RTOL);
    CHECK(correct == (int64_t)ca->data[0]);
    if (!soft && ls == 0.0) { /* the old entry point is the same function */
        CHECK_NEAR(rn_cross_entropy(&z, labels, NULL, NULL), loss, 0.0, 0.0);
    }
done:
    free(labels);
    rn_tensor_free(&z);
    rn_tensor_free(&g);
    fx_free(f);
}

int main(void)
{
    static const struct {
        const char *name;
        make_fn make;
    } cases[] = {
        {"conv2d_basic", make_conv},
        {"conv2d_stride2_pad1", make_conv},
        {"conv2d_dilation2", make_conv},
        {"conv2d_groups2", make_conv},
        {"conv2d_depthwise_nobias", make_conv},
        {"conv2d_nobias_k1", make_conv},
        {"conv2d_blocked_groups_dilation", make_conv},
        {"batchnorm2d_train", make_bn},
        {"batchnorm2d_eval", make_bn},
        {"batchnorm2d_train_offset", make_bn},
        {"leaky_relu_default", make_leaky},
        {"leaky_relu_slope02", make_leaky},
        {"gelu", make_gelu},
        {"identity", make_identity},
        {"avg_pool2d_k2s2", make_avg},
        {"avg_pool2d_k3s2p1", make_avg},
        {"avg_pool2d_k3s1p1_nopad", make_avg},
        {"global_avg_pool2d", make_gap},
        {"max_pool2d_k2s2", make_max},
        {"max_pool2d_k3s2", make_max},
        {"max_pool2d_k3s2p1", make_max},
        {"linear_bias", make_linear},
        {"linear_nobias", make_linear},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        layer_case(cases[i].name, cases[i].make);
    xent_case("cross_entropy_plain");
    xent_case("cross_entropy_smoothing");
    xent_case("cross_entropy_soft");
    xent_case("cross_entropy_soft_smoothing");
    return rn_test_report("test_layer_parity");
}
