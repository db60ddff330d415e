/* rn_model_set_trainable: on a small model with conv, batch norm, relu, a residual block with a
 * downsample shortcut, max pool, flatten and linear,
 *   - the gradients of the trainable params equal the never-frozen model's (relative 1e-6) and
 *     the frozen params' grads keep a sentinel (train_bn false with partly frozen layers, and
 *     train_bn true with only the head in the mask);
 *   - a frozen batch norm after a trainable conv runs on its running stats in train mode, leaves
 *     them and num_batches_tracked alone, and its dx matches the closed form and central finite
 *     differences of the loss;
 *   - with only the head trainable, backward writes nothing before the head (sentinels in every
 *     earlier activation gradient, inside the residual block too);
 *   - rn_model_set_trainable(m, NULL, ...) gives back the never-frozen gradients. */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "nn_gradcheck.h"

enum { N = 4 };
static const float SENTINEL = 12345.0f;

static rn_layer **one(rn_layer *a)
{
    rn_layer **v = malloc(sizeof *v);
    v[0] = a;
    return v;
}

static rn_layer *bn(const char *name, int64_t c)
{
    char err[256];
    return rn_batchnorm2d_create(name, c, 1e-5, 0.1, err, sizeof err);
}

static rn_layer *conv(const char *name, int64_t in, int64_t out, int64_t k, int64_t stride,
                      int64_t pad, bool bias, uint64_t seed)
{
    char err[256];
    return rn_conv2d_create(name, in, out, k, stride, pad, bias, seed, err, sizeof err);
}

/* Batch norm weights 1 + U(+-0.1), biases and running means U(+-0.1), running vars U(0.5, 1.5):
 * away from the init so that eval and train mode differ and every gradient is non-trivial. */
static void perturb_bn(rn_model *m)
{
    for (int i = 0; i < m->n_params; i++) {
        rn_tensor *v = m->params[i].value;
        const char *name = m->params[i].name;
        int64_t n = rn_tensor_numel(v);
        bool bn_tensor = strstr(name, "bn") || strstr(name, "downsample.1");
        if (v->shape.ndim != 1 || !bn_tensor) continue;
        if (strstr(name, ".running_var")) gc_fill(v->data, n, 100 + i, 0.5, 1.5);
        else if (strstr(name, ".weight")) gc_fill(v->data, n, 100 + i, 0.9, 1.1);
        else gc_fill(v->data, n, 100 + i, -0.1, 0.1);
    }
}

/* 2x8x8 -> conv1 4x8x8 -> bn1 -> relu -> layer1.0 (body conv/2 bn relu conv bn, shortcut
 * conv1x1/2 bn) 6x4x4 -> max pool 6x2x2 -> 24 -> fc 5. */
static int small_model(rn_model *m)
{
    char err[384] = "";
    rn_layer **body = malloc(5 * sizeof *body);
    body[0] = conv("layer1.0.conv1", 4, 6, 3, 2, 1, false, 21);
    body[1] = bn("layer1.0.bn1", 6);
    body[2] = rn_relu_create();
    body[3] = conv("layer1.0.conv2", 6, 6, 3, 1, 1, false, 22);
    body[4] = bn("layer1.0.bn2", 6);
    rn_layer **sc_kids = malloc(2 * sizeof *sc_kids);
    sc_kids[0] = conv("layer1.0.downsample.0", 4, 6, 1, 2, 0, false, 23);
    sc_kids[1] = bn("layer1.0.downsample.1", 6);
    rn_layer **sc = one(rn_sequential_create("layer1.0.downsample", sc_kids, 2,
                                             "model.layers[4].shortcut[1].layers", err,
                                             sizeof err));
    rn_layer **ls = malloc(7 * sizeof *ls);
    ls[0] = conv("conv1", 2, 4, 3, 1, 1, true, 11);
    ls[1] = bn("bn1", 4);
    ls[2] = rn_relu_create();
    ls[3] = rn_residual_create("layer1.0", body, 5, sc, 1, true, "model.layers[4].body",
                               "model.layers[4].shortcut", err, sizeof err);
    ls[4] = rn_maxpool2d_create(2, 2, err, sizeof err);
    ls[5] = rn_flatten_create();
    ls[6] = rn_linear_create("fc", 24, 5, true, 31, err, sizeof err);
    if (rn_model_init(m, ls, 7, rn_shape_make(3, (int64_t[]){2, 8, 8}), N, err, sizeof err)) {
        fprintf(stderr, "small_model: %s\n", err);
        CHECK(0);
        return -1;
    }
    perturb_bn(m);
    gc_fill(m->acts[0].data, rn_tensor_numel(&m->acts[0]), 41, -1.0, 1.0);
    return 0;
}

static const int32_t labels[N] = {0, 3, 4, 1};

/* forward (train selects the mode asked of the model), then between(m), then cross-entropy and
 * backward */
static double step_between(rn_model *m, bool train, void (*between)(rn_model *m))
{
    rn_tensor out;
    if (rn_model_forward(m, N, train, &out)) {
        fprintf(stderr, "forward: %s\n", m->err);
        CHECK(0);
        return NAN;
    }
    if (between) between(m);
    rn_tensor g = m->grads[m->n_layers];
    double loss = rn_cross_entropy(&out, labels, &g, NULL);
    if (rn_model_backward(m, N)) {
        fprintf(stderr, "backward: %s\n", m->err);
        CHECK(0);
    }
    return loss;
}

static double step(rn_model *m, bool train) { return step_between(m, train, NULL); }

static bool starts_with_any(const char *s, const char *const *prefixes)
{
    for (int i = 0; prefixes[i]; i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

/* trainable[i]: params[i] starts with one of the prefixes (NULL-terminated list). */
static bool *mask_of(const rn_model *m, const char *const *prefixes)
{
    bool *t = calloc((size_t)m->n_params, sizeof *t);
    for (int i = 0; i < m->n_params; i++) t[i] = starts_with_any(m->params[i].name, prefixes);
    return t;
}

static void fill(float *p, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++) p[i] = v;
}

static void fill_param_grads(rn_model *m)
{
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].grad) fill(m->params[i].grad->data, rn_tensor_numel(m->params[i].grad),
                                    SENTINEL);
}

static bool all_sentinel(const float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (p[i] != SENTINEL) return false;
    return true;
}

/* max |a - b| over the tensor against max |b|: the check is |a - b| <= 1e-6 max |b|. */
static void check_same_grad(const char *name, const rn_tensor *a, const rn_tensor *b)
{
    double worst = 0.0, scale = 0.0;
    for (int64_t i = 0; i < rn_tensor_numel(b); i++) {
        worst = fmax(worst, fabs((double)a->data[i] - b->data[i]));
        scale = fmax(scale, fabs((double)b->data[i]));
    }
    rn_test_checks++;
    if (!(worst <= 1e-6 * scale) || !(scale > 0.0)) {
        rn_test_failures++;
        fprintf(stderr, "%s: grad differs from the never-frozen model's by %.3g (max |ref| %.3g)\n",
                name, worst, scale);
    }
}

/* One mask: trainable params' grads equal the never-frozen model's, frozen ones keep the
 * sentinel; `frozen_want` lists the params expected frozen afterwards. */
static void check_mask(const char *const *trainable, bool train_bn, const char *const *frozen_want)
{
    rn_model ref, m;
    if (small_model(&ref) || small_model(&m)) return;
    char err[256] = "";
    bool *mask = mask_of(&m, trainable);
    CHECK(rn_model_set_trainable(&m, mask, train_bn, err, sizeof err) == 0);
    free(mask);
    step(&ref, true);
    fill_param_grads(&m);
    step(&m, true);
    int frozen = 0;
    for (int i = 0; i < m.n_params; i++) {
        const rn_param_ref *p = &m.params[i];
        if (!p->grad) {
            CHECK(!p->frozen);
            continue;
        }
        CHECK(p->frozen == starts_with_any(p->name, frozen_want));
        if (p->frozen) {
            frozen++;
            if (!all_sentinel(p->grad->data, rn_tensor_numel(p->grad))) {
                fprintf(stderr, "frozen %s: its grad was written\n", p->name);
                CHECK(0);
            }
        } else {
            check_same_grad(p->name, p->grad, ref.params[i].grad);
        }
    }
    CHECK(frozen > 0);
    /* the running stats saw the same batches (no batch norm is frozen here) */
    for (int i = 0; i < m.n_params; i++)
        if (!m.params[i].grad) check_same_grad(m.params[i].name, m.params[i].value,
                                               ref.params[i].value);
    rn_model_free(&ref);
    rn_model_free(&m);
}

static void test_masks(void)
{
    /* Partly frozen layers (conv1's weight, fc's bias) and frozen convs in the middle of the
     * block and in the shortcut that must still pass dx to the trainable layers before them;
     * batch norms trainable, so the forward is the same as the reference's. */
    const char *t1[] = {"conv1.bias", "bn1.", "layer1.0.conv1.", "layer1.0.bn",
                        "layer1.0.downsample.1.", "fc.weight", NULL};
    const char *f1[] = {"conv1.weight", "layer1.0.conv2.", "layer1.0.downsample.0.", "fc.bias",
                        NULL};
    check_mask(t1, false, f1);
    /* train_bn: only the head in the mask, but every batch norm keeps training. */
    const char *t2[] = {"fc.", NULL};
    const char *f2[] = {"conv1.", "layer1.0.conv", "layer1.0.downsample.0.", NULL};
    check_mask(t2, true, f2);
}

/* --- a frozen batch norm after a trainable conv ----------------------------------------------- */

/* the loss from layer `from` on, acts[from] as it is (layers run as the model would) */
static double loss_from(rn_model *m, int from)
{
    for (int i = from; i < m->n_layers; i++)
        if (m->layers[i]->ops->forward(m->layers[i], &m->acts[i], &m->acts[i + 1], true))
            return NAN;
    return rn_cross_entropy(&m->acts[m->n_layers], labels, NULL, NULL);
}

static int bn_model(rn_model *m)
{
    char err[384] = "";
    rn_layer **ls = malloc(4 * sizeof *ls);
    ls[0] = conv("c", 2, 3, 3, 1, 1, true, 51);
    ls[1] = bn("bn", 3);
    ls[2] = rn_flatten_create();
    ls[3] = rn_linear_create("fc", 48, 5, true, 52, err, sizeof err);
    if (rn_model_init(m, ls, 4, rn_shape_make(3, (int64_t[]){2, 4, 4}), N, err, sizeof err)) {
        fprintf(stderr, "bn_model: %s\n", err);
        CHECK(0);
        return -1;
    }
    perturb_bn(m);
    gc_fill(m->acts[0].data, rn_tensor_numel(&m->acts[0]), 61, -1.0, 1.0);
    return 0;
}

static void test_frozen_bn(void)
{
    rn_model m, plain;
    if (bn_model(&m) || bn_model(&plain)) return;
    char err[256] = "";
    /* fc's weight frozen too: fc runs for its dx and its bias only */
    const char *t[] = {"c.", "fc.bias", NULL};
    bool *mask = mask_of(&m, t);
    CHECK(rn_model_set_trainable(&m, mask, false, err, sizeof err) == 0);
    free(mask);
    rn_layer *b = m.layers[1];
    CHECK(b->params[0].frozen && b->params[1].frozen && !b->params[2].frozen);
    const int64_t C = 3;
    float rm[3], rv[3], w[3];
    memcpy(rm, b->params[2].value->data, sizeof rm);
    memcpy(rv, b->params[3].value->data, sizeof rv);
    memcpy(w, b->params[0].value->data, sizeof w);

    /* train = true gives exactly the eval forward and moves no statistic (the eval forward
     * with each layer's own forward: folded into the convolution, the batch norm would round
     * differently) */
    rn_tensor out;
    enum { K = N * 5 };
    float eval[K], train[K];
    rn_model_fold_bn(&m, false);
    CHECK(rn_model_forward(&m, N, false, &out) == 0);
    rn_model_fold_bn(&m, true);
    memcpy(eval, out.data, sizeof eval);
    CHECK(rn_model_forward(&m, N, true, &out) == 0);
    memcpy(train, out.data, sizeof train);
    for (int i = 0; i < K; i++) CHECK(train[i] == eval[i]);
    CHECK(memcmp(rm, b->params[2].value->data, sizeof rm) == 0);
    CHECK(memcmp(rv, b->params[3].value->data, sizeof rv) == 0);
    CHECK(rn_batchnorm2d_num_batches_tracked(b) == 0);
    /* ...while the same model unfrozen normalises with the batch's statistics */
    CHECK(rn_model_forward(&plain, N, true, &out) == 0);
    double moved = 0.0;
    for (int i = 0; i < K; i++) moved = fmax(moved, fabs(out.data[i] - train[i]));
    CHECK(moved > 1e-2);
    CHECK(rn_batchnorm2d_num_batches_tracked(plain.layers[1]) == 1);

    fill_param_grads(&m);
    fill(m.grads[1].data, rn_tensor_numel(&m.grads[1]), SENTINEL);
    double loss = step(&m, true);
    CHECK(isfinite(loss));
    CHECK(all_sentinel(b->params[0].grad->data, C) && all_sentinel(b->params[1].grad->data, C));
    rn_tensor *fw = m.layers[3]->params[0].grad, *fb = m.layers[3]->params[1].grad;
    CHECK(m.layers[3]->params[0].frozen && all_sentinel(fw->data, rn_tensor_numel(fw)));
    CHECK(!m.layers[3]->params[1].frozen && !all_sentinel(fb->data, rn_tensor_numel(fb)));
    CHECK(rn_batchnorm2d_num_batches_tracked(b) == 0);

    /* dx of the batch norm: dy weight / sqrt(running_var + eps), per channel */
    const rn_tensor *dx = &m.grads[1], *dy = &m.grads[2];
    const int64_t hw = 16;
    for (int64_t i = 0; i < rn_tensor_numel(dx); i++) {
        int64_t ch = i / hw % C;
        double want = dy->data[i] * w[ch] / sqrt((double)rv[ch] + 1e-5);
        CHECK_NEAR(dx->data[i], want, 1e-9, 1e-6);
    }
    /* ...and central finite differences of the loss in the conv's output */
    float *an = malloc((size_t)rn_tensor_numel(dx) * sizeof *an);
    memcpy(an, dx->data, (size_t)rn_tensor_numel(dx) * sizeof *an);
    int bad = 0;
    float *a1 = m.acts[1].data;
    for (int64_t i = 0; i < rn_tensor_numel(dx); i++) {
        float keep = a1[i];
        a1[i] = keep + 1e-2f;
        double lp = loss_from(&m, 1);
        a1[i] = keep - 1e-2f;
        double lm = loss_from(&m, 1);
        a1[i] = keep;
        double num = (lp - lm) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
        if (!(fabs(an[i] - num) <= 1e-5 + 1e-3 * fabs(num)) && bad++ < 5)
            fprintf(stderr, "frozen bn dx[%lld] = %.9g, finite difference %.9g\n", (long long)i,
                    an[i], num);
    }
    CHECK(bad == 0);
    free(an);
    /* the conv's weight gradient, through that dx, against finite differences of the model */
    rn_tensor *cw = m.params[0].value, *cg = m.params[0].grad;
    float *keep_g = malloc((size_t)rn_tensor_numel(cg) * sizeof *keep_g);
    memcpy(keep_g, cg->data, (size_t)rn_tensor_numel(cg) * sizeof *keep_g);
    bad = 0;
    for (int64_t i = 0; i < rn_tensor_numel(cw); i++) {
        float keep = cw->data[i];
        cw->data[i] = keep + 1e-2f;
        double lp = loss_from(&m, 0);
        cw->data[i] = keep - 1e-2f;
        double lm = loss_from(&m, 0);
        cw->data[i] = keep;
        double num = (lp - lm) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
        if (!(fabs(keep_g[i] - num) <= 1e-5 + 1e-3 * fabs(num)) && bad++ < 5)
            fprintf(stderr, "dc.weight[%lld] = %.9g, finite difference %.9g\n", (long long)i,
                    keep_g[i], num);
    }
    CHECK(bad == 0);
    free(keep_g);
    /* none of those forwards moved the statistics either */
    CHECK(memcmp(rm, b->params[2].value->data, sizeof rm) == 0);
    CHECK(memcmp(rv, b->params[3].value->data, sizeof rv) == 0);
    CHECK(rn_batchnorm2d_num_batches_tracked(b) == 0);
    rn_model_free(&m);
    rn_model_free(&plain);
}

/* --- only the head trains ------------------------------------------------------------------- */

/* Every activation gradient a chain owns (grads[1..n-1]), recursively into its containers. */
static void chain_grads(const rn_chain *c, bool set, int *untouched, int *total)
{
    for (int i = 1; i < c->n; i++) {
        int64_t n = rn_tensor_numel(&c->grads[i]);
        if (set) fill(c->grads[i].data, n, SENTINEL);
        else *untouched += all_sentinel(c->grads[i].data, n);
        (*total)++;
    }
    for (int i = 0; i < c->n; i++) {
        const rn_chain *inner;
        for (int k = 0; (inner = rn_container_chain(c->layers[i], k)); k++)
            chain_grads(inner, set, untouched, total);
    }
}

/* After forward (which may use gradient buffers for activations it recomputes in backward or
 * for a residual's shortcut output; chain.h): a sentinel in every activation gradient. */
static void fill_chain_grads(rn_model *m)
{
    int untouched = 0, total = 0;
    chain_grads(&m->chain, true, &untouched, &total);
}

static void test_head_only(void)
{
    rn_model ref, m;
    if (small_model(&ref) || small_model(&m)) return;
    char err[256] = "";
    const char *t[] = {"fc.", NULL};
    bool *mask = mask_of(&m, t);
    CHECK(rn_model_set_trainable(&m, mask, false, err, sizeof err) == 0);
    free(mask);
    /* the frozen batch norms run in eval mode: the reference runs in eval mode too */
    step(&ref, false);
    fill_param_grads(&m);
    step_between(&m, true, fill_chain_grads);
    int untouched = 0, total = 0;
    chain_grads(&m.chain, false, &untouched, &total);
    /* model grads[1..6], body grads[1..4], shortcut grads: none, downsample grads[1]: backward
     * wrote none of them */
    CHECK(total == 6 + 4 + 0 + 1);
    CHECK(untouched == total);
    for (int i = 0; i < m.n_params; i++) {
        const rn_param_ref *p = &m.params[i];
        if (!p->grad) continue;
        CHECK(p->frozen == (strncmp(p->name, "fc.", 3) != 0));
        if (p->frozen) CHECK(all_sentinel(p->grad->data, rn_tensor_numel(p->grad)));
        else check_same_grad(p->name, p->grad, ref.params[i].grad);
        if (!p->frozen) CHECK(!all_sentinel(p->grad->data, rn_tensor_numel(p->grad)));
    }
    /* no batch norm moved: they all ran on running stats */
    CHECK(rn_batchnorm2d_num_batches_tracked(m.layers[1]) == 0);
    for (int i = 0; i < m.n_params; i++)
        if (!m.params[i].grad) check_same_grad(m.params[i].name, m.params[i].value,
                                               ref.params[i].value);

    /* unfreezing gives back the never-frozen model's gradients and statistics */
    rn_model fresh;
    if (small_model(&fresh) == 0) {
        CHECK(rn_model_set_trainable(&m, NULL, false, err, sizeof err) == 0);
        step(&fresh, true);
        fill_param_grads(&m);
        step(&m, true);
        for (int i = 0; i < m.n_params; i++) {
            CHECK(!m.params[i].frozen);
            if (m.params[i].grad)
                check_same_grad(m.params[i].name, m.params[i].grad, fresh.params[i].grad);
            else
                check_same_grad(m.params[i].name, m.params[i].value, fresh.params[i].value);
        }
        CHECK(rn_batchnorm2d_num_batches_tracked(m.layers[1]) == 1);
        rn_model_free(&fresh);
    }
    rn_model_free(&ref);
    rn_model_free(&m);

    rn_model empty = {0};
    CHECK(rn_model_set_trainable(&empty, NULL, false, err, sizeof err) != 0);
    CHECK(strstr(err, "not initialised") != NULL);
}

int main(void)
{
    test_masks();
    test_frozen_bn();
    test_head_only();
    return rn_test_report("test_freeze");
}
