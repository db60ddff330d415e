/* model: the MNIST CNN stack chains 1x28x28 -> 10 with PyTorch's parameter names and count;
 * shape mismatches name the layer index, type and both shapes; a tiny model's forward/backward
 * (conv, relu, max_pool2d, dropout, flatten, linear, cross-entropy) agrees with central finite
 * differences of the loss; a partial batch matches the full one. */
#include <string.h>

#include "model.h"
#include "nn_gradcheck.h"

static rn_layer **mnist_layers(int *n, int64_t conv2_in, bool with_flatten)
{
    char err[256];
    rn_layer **ls = malloc(12 * sizeof *ls);
    int k = 0;
    ls[k++] = rn_conv2d_create("conv1", 1, 32, 3, 1, 0, true, 1, err, sizeof err);
    ls[k++] = rn_relu_create();
    ls[k++] = rn_conv2d_create("conv2", conv2_in, 64, 3, 1, 0, true, 2, err, sizeof err);
    ls[k++] = rn_relu_create();
    ls[k++] = rn_maxpool2d_create(2, 2, err, sizeof err);
    ls[k++] = rn_dropout_create(0.25, 3, err, sizeof err);
    if (with_flatten) ls[k++] = rn_flatten_create();
    ls[k++] = rn_linear_create("fc1", 9216, 128, true, 4, err, sizeof err);
    ls[k++] = rn_relu_create();
    ls[k++] = rn_dropout_create(0.5, 5, err, sizeof err);
    ls[k++] = rn_linear_create("fc2", 128, 10, true, 6, err, sizeof err);
    *n = k;
    return ls;
}

static void test_mnist_shapes(void)
{
    char err[384] = "";
    int n;
    rn_layer **ls = mnist_layers(&n, 32, true);
    rn_model m;
    rn_shape in = rn_shape_make(3, (int64_t[]){1, 28, 28});
    CHECK(rn_model_init(&m, ls, n, in, 4, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "%s\n", err);
    const char *want[] = {"4x1x28x28",  "4x32x26x26", "4x32x26x26", "4x64x24x24",
                          "4x64x24x24", "4x64x12x12", "4x64x12x12", "4x9216",
                          "4x128",      "4x128",      "4x128",      "4x10"};
    for (int i = 0; i <= n; i++) {
        char buf[64];
        rn_shape_str(&m.acts[i].shape, buf, sizeof buf);
        CHECK(strcmp(buf, want[i]) == 0);
        CHECK(rn_shape_equal(&m.acts[i].shape, &m.grads[i].shape));
    }
    /* flatten shares its input's buffers; the input gradient is never allocated */
    CHECK(m.acts[7].data == m.acts[6].data && m.grads[7].data == m.grads[6].data);
    CHECK(m.grads[0].data == NULL);
    /* torch: 320 + 18496 + 1179776 + 1290 */
    CHECK(rn_model_param_count(&m) == 1199882);
    const char *names[] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                           "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};
    CHECK(m.n_params == 8);
    for (int i = 0; i < m.n_params && i < 8; i++) CHECK(strcmp(m.params[i].name, names[i]) == 0);

    /* a full train step and an eval forward run; batch bounds are checked */
    gc_fill(m.acts[0].data, 4 * 784, 1, 0.0, 1.0);
    rn_tensor out;
    CHECK(rn_model_forward(&m, 4, true, &out) == 0);
    CHECK(out.shape.d[0] == 4 && out.shape.d[1] == 10);
    int32_t labels[4] = {1, 2, 3, 4};
    rn_tensor g = m.grads[n];
    g.shape.d[0] = 4;
    double loss = rn_cross_entropy(&out, labels, &g, NULL);
    CHECK(loss > 1.5 && loss < 3.5); /* near log 10 at init */
    CHECK(rn_model_backward(&m, 4) == 0);
    CHECK(rn_model_forward(&m, 3, false, &out) == 0);
    CHECK(out.shape.d[0] == 3);
    CHECK(rn_model_forward(&m, 5, false, &out) != 0);
    CHECK(strcmp(m.err, "model: batch of 5 samples, expected 1..4") == 0);
    rn_model_free(&m);
    rn_model_free(&m); /* a freed model is empty */
}

static void test_mismatch(void)
{
    char err[384];
    int n;
    rn_model m;
    rn_shape in = rn_shape_make(3, (int64_t[]){1, 28, 28});
    rn_layer **ls = mnist_layers(&n, 32, false);
    CHECK(rn_model_init(&m, ls, n, in, 8, err, sizeof err) != 0);
    CHECK(strcmp(err, "model.layers[7] (linear fc1): expected input with 9216 features, got "
                      "64x12x12 (9216); add a flatten before it") == 0);
    CHECK(m.layers == NULL && m.n_layers == 0);

    ls = mnist_layers(&n, 16, true);
    CHECK(rn_model_init(&m, ls, n, in, 8, err, sizeof err) != 0);
    CHECK(strcmp(err, "model.layers[3] (conv2d conv2): expected input 16xHxW, got 32x26x26") == 0);

    /* 1x28x28 -> conv 1->1 -> 1x26x26 -> pool -> 1x13x13 -> linear expecting 9216 */
    ls = malloc(3 * sizeof *ls);
    ls[0] = rn_conv2d_create("conv1", 1, 1, 3, 1, 0, true, 1, err, sizeof err);
    ls[1] = rn_maxpool2d_create(2, 2, err, sizeof err);
    ls[2] = rn_linear_create("fc1", 9216, 128, true, 1, err, sizeof err);
    CHECK(rn_model_init(&m, ls, 3, in, 8, err, sizeof err) != 0);
    CHECK(strcmp(err, "model.layers[3] (linear fc1): expected input with 9216 features, got "
                      "1x13x13 (169)") == 0);

    ls = malloc(1 * sizeof *ls);
    ls[0] = rn_maxpool2d_create(2, 2, err, sizeof err);
    CHECK(rn_model_init(&m, ls, 1, rn_shape_make(1, (int64_t[]){5}), 8, err, sizeof err) != 0);
    CHECK(strcmp(err, "model.layers[1] (max_pool2d): expected input CxHxW, got 5") == 0);
}

/* loss of the tiny model at its current parameters (dropout mask fixed by resetting counters) */
static double tiny_loss(rn_model *m, int64_t n, const int32_t *labels)
{
    for (int i = 0; i < m->n_layers; i++) m->layers[i]->calls = 0;
    rn_tensor out;
    if (rn_model_forward(m, n, true, &out)) return NAN;
    return rn_cross_entropy(&out, labels, NULL, NULL);
}

static void test_tiny_gradients(void)
{
    char err[384] = "";
    enum { N = 3 };
    rn_layer **ls = malloc(7 * sizeof *ls);
    ls[0] = rn_conv2d_create("c1", 2, 3, 3, 1, 1, true, 11, err, sizeof err);
    ls[1] = rn_relu_create();
    ls[2] = rn_conv2d_create("c2", 3, 4, 3, 2, 1, true, 12, err, sizeof err);
    ls[3] = rn_maxpool2d_create(2, 2, err, sizeof err);
    ls[4] = rn_dropout_create(0.3, 13, err, sizeof err);
    ls[5] = rn_flatten_create();
    ls[6] = rn_linear_create("fc", 16, 5, true, 14, err, sizeof err);
    rn_model m;
    /* 2x8x8 -> c1 3x8x8 -> c2 4x4x4 -> pool 4x2x2 -> 16 -> 5 */
    rn_shape in = rn_shape_make(3, (int64_t[]){2, 8, 8});
    CHECK(rn_model_init(&m, ls, 7, in, N, err, sizeof err) == 0);
    if (err[0]) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    gc_fill(m.acts[0].data, N * 128, 21, -1.0, 1.0);
    int32_t labels[N] = {0, 3, 4};

    double loss0 = tiny_loss(&m, N, labels);
    rn_tensor out = m.acts[7], g = m.grads[7];
    CHECK(rn_cross_entropy(&out, labels, &g, NULL) == loss0);
    CHECK(rn_model_backward(&m, N) == 0);

    /* every parameter: eps 1e-3, |diff| <= 2e-4 + 1e-2 |numeric| (float forward, relu and max
     * kinks are far from every point at this seed) */
    int bad = 0, total = 0;
    for (int p = 0; p < m.n_params; p++) {
        rn_tensor *v = m.params[p].value;
        float *an = malloc((size_t)rn_tensor_numel(v) * sizeof *an);
        memcpy(an, m.params[p].grad->data, (size_t)rn_tensor_numel(v) * sizeof *an);
        for (int64_t i = 0; i < rn_tensor_numel(v); i++) {
            float keep = v->data[i];
            v->data[i] = keep + 1e-3f;
            double lp = tiny_loss(&m, N, labels);
            v->data[i] = keep - 1e-3f;
            double lm = tiny_loss(&m, N, labels);
            v->data[i] = keep;
            double num = (lp - lm) / ((double)(keep + 1e-3f) - (double)(keep - 1e-3f));
            total++;
            if (!(fabs(an[i] - num) <= 2e-4 + 1e-2 * fabs(num))) {
                if (bad++ < 5)
                    fprintf(stderr, "model d%s[%lld] = %.9g, finite difference %.9g\n",
                            m.params[p].name, (long long)i, an[i], num);
            }
        }
        free(an);
    }
    CHECK(total == 2 * 9 * 3 + 3 + 3 * 9 * 4 + 4 + 16 * 5 + 5);
    CHECK(bad == 0);

    /* a partial batch (another conv plan) gives the first rows of the full batch, in eval mode */
    rn_tensor full;
    CHECK(rn_model_forward(&m, N, false, &full) == 0);
    float first[2 * 5];
    memcpy(first, full.data, sizeof first);
    CHECK(rn_model_forward(&m, 2, false, &out) == 0);
    CHECK(out.shape.d[0] == 2);
    for (int i = 0; i < 10; i++) CHECK_NEAR(out.data[i], first[i], 1e-6, 1e-5);
    rn_model_free(&m);
}

int main(void)
{
    test_mnist_shapes();
    test_mismatch();
    test_tiny_gradients();
    return rn_test_report("test_model");
}
