/* Containers: residual blocks and nested sequences, by finite differences and against their parts
 * run by hand. */
#include <stdlib.h>
#include <string.h>
#include "layer.h"
#include "nn_gradcheck.h"
#include "rn_test.h"

static rn_layer **one(rn_layer *a)
{
    rn_layer **v = malloc(sizeof *v);
    v[0] = a;
    return v;
}

static rn_layer *conv(const char *name, int64_t in, int64_t out, int64_t k, int64_t stride,
                      int64_t pad, uint64_t seed)
{
    char err[256];
    rn_layer *l = rn_conv2d_create(name, in, out, k, stride, pad, true, seed, err, sizeof err);
    if (!l) fprintf(stderr, "conv: %s\n", err);
    return l;
}

/* A block like torchvision's BasicBlock with a downsample, but one conv in the body. */
static rn_layer *block(bool relu, bool downsample, int64_t in, int64_t out, int64_t stride)
{
    char err[256];
    rn_layer **body = one(conv("layer1.0.conv1", in, out, 3, stride, 1, 11));
    rn_layer **sc = downsample ? one(rn_sequential_create(
                                     "layer1.0.downsample",
                                     one(conv("layer1.0.downsample.0", in, out, 1, stride, 0, 12)),
                                     1, "shortcut[1].layers", err, sizeof err))
                               : NULL;
    rn_layer *l = rn_residual_create("layer1.0", body, 1, sc, downsample ? 1 : 0, relu,
                                     "model.layers[1].body", "model.layers[1].shortcut", err,
                                     sizeof err);
    if (!l) fprintf(stderr, "residual: %s\n", err);
    return l;
}

static void check_grad(const char *name, rn_layer *l, rn_shape in)
{
    char err[256] = "";
    rn_shape out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    rn_tensor x = {0}, y = {0};
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&y, out);
    gc_fill(x.data, rn_tensor_numel(&x), 7, -1, 1);
    CHECK(gradcheck_layer(name, l, &x, &y, true, true, 1e-2, 1e-3, 1e-3) == 0);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
}

int main(void)
{
    rn_shape in = rn_shape_make(4, (int64_t[]){2, 3, 6, 6});

    /* Without the final ReLU the block is smooth, so finite differences check every gradient:
     * body only, identity shortcut, and a strided conv shortcut inside a nested sequence. */
    rn_layer *b = block(false, false, 3, 3, 1);
    check_grad("residual identity", b, in);
    rn_layer_destroy(b);
    b = block(false, true, 3, 4, 2);
    check_grad("residual downsample", b, in);
    CHECK(b->n_params == 4);
    const char *names[] = {"layer1.0.conv1.weight", "layer1.0.conv1.bias",
                           "layer1.0.downsample.0.weight", "layer1.0.downsample.0.bias"};
    for (int i = 0; i < 4 && i < b->n_params; i++) CHECK(strcmp(b->params[i].name, names[i]) == 0);

    /* With the ReLU: y = max(0, z) where z is the same block without it, and dx is the plain
     * block's dx given dy masked by y > 0. */
    rn_layer *r = block(true, true, 3, 4, 2);
    char err[256];
    rn_shape out;
    CHECK(r->ops->setup(r, &in, &out, err, sizeof err) == 0);
    CHECK(out.ndim == 4 && out.d[1] == 4 && out.d[2] == 3 && out.d[3] == 3);
    rn_tensor x = {0}, y1 = {0}, y2 = {0}, dy = {0}, dz = {0}, dx1 = {0}, dx2 = {0};
    rn_tensor_alloc(&x, in);
    rn_tensor_alloc(&dx1, in);
    rn_tensor_alloc(&dx2, in);
    rn_tensor_alloc(&y1, out);
    rn_tensor_alloc(&y2, out);
    rn_tensor_alloc(&dy, out);
    rn_tensor_alloc(&dz, out);
    gc_fill(x.data, rn_tensor_numel(&x), 3, -1, 1);
    gc_fill(dy.data, rn_tensor_numel(&dy), 4, -1, 1);
    CHECK(r->ops->forward(r, &x, &y1, true) == 0 && b->ops->forward(b, &x, &y2, true) == 0);
    int64_t ny = rn_tensor_numel(&y1), zeros = 0;
    for (int64_t i = 0; i < ny; i++) {
        CHECK(y1.data[i] == (y2.data[i] > 0 ? y2.data[i] : 0.0f));
        dz.data[i] = y2.data[i] > 0 ? dy.data[i] : 0.0f;
        zeros += y1.data[i] == 0;
    }
    CHECK(zeros > 0 && zeros < ny); /* the mask is exercised both ways */
    CHECK(r->ops->backward(r, &x, &y1, &dy, &dx1) == 0 &&
          b->ops->backward(b, &x, &y2, &dz, &dx2) == 0);
    for (int64_t i = 0; i < rn_tensor_numel(&x); i++) CHECK_NEAR(dx1.data[i], dx2.data[i], 1e-6, 1e-5);
    for (int p = 0; p < r->n_params; p++)
        for (int64_t i = 0; i < rn_tensor_numel(r->params[p].grad); i++)
            CHECK_NEAR(r->params[p].grad->data[i], b->params[p].grad->data[i], 1e-6, 1e-5);
    rn_layer_destroy(r);
    rn_layer_destroy(b);
    rn_tensor *ts[] = {&x, &y1, &y2, &dy, &dz, &dx1, &dx2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) rn_tensor_free(ts[i]);

    /* A nested sequence: conv -> flatten -> linear, checked as one layer. */
    rn_layer **kids = malloc(3 * sizeof *kids);
    kids[0] = conv("head.0", 3, 2, 3, 1, 0, 21);
    kids[1] = rn_flatten_create();
    kids[2] = rn_linear_create("head.2", 32, 5, true, 22, err, sizeof err);
    rn_layer *s = rn_sequential_create("head", kids, 3, "model.layers[2].layers", err, sizeof err);
    check_grad("sequential", s, in);
    CHECK(s->n_params == 4 && strcmp(s->params[2].name, "head.2.weight") == 0);
    rn_layer_destroy(s);

    /* Shapes that do not add up name the block and both shapes. */
    b = block(false, false, 3, 4, 1);
    CHECK(b->ops->setup(b, &in, &out, err, sizeof err) != 0);
    CHECK(strstr(err, "body gives 4x6x6") && strstr(err, "identity shortcut gives 3x6x6"));
    rn_layer_destroy(b);
    /* A child's error names its path inside the block. */
    rn_layer **bad = one(conv("layer1.0.conv1", 5, 4, 3, 1, 1, 1));
    b = rn_residual_create("layer1.0", bad, 1, NULL, 0, true, "model.layers[4].body",
                           "model.layers[4].shortcut", err, sizeof err);
    CHECK(b->ops->setup(b, &in, &out, err, sizeof err) != 0);
    CHECK(strstr(err, "model.layers[4].body[1] (conv2d layer1.0.conv1)") != NULL);
    rn_layer_destroy(b);
    return rn_test_report("test_container");
}
