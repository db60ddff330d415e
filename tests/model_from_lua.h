/* For tests: a model built from a recipe expression over the library (recipes/lib/models.lua and
 * nn.lua: `models.resnet8{ ... }`, `nn.sequential{ ... }`), through the sandbox and
 * rn_model_build as a recipe's model is. The test defines RN_RECIPES_DIR and links rn_core. */
#ifndef RN_TESTS_MODEL_FROM_LUA_H
#define RN_TESTS_MODEL_FROM_LUA_H

#include <stdio.h>
#include <unistd.h>

#include "model_build.h"
#include "sandbox.h"

/* Writes the expression as a recipe into dir (an existing directory), builds the model for input
 * shape `in` (per sample) and max batch n with seed 7; 0, or -1 with the reason on stderr. */
static int rn_test_model_from_lua(rn_model *m, const char *dir, const char *expr, rn_shape in,
                                  int64_t n)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/r.lua", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "local models = import \"lib.models\"\nlocal nn = import \"lib.nn\"\n"
               "return { model = %s }\n", expr);
    fclose(f);
    rn_sandbox *sb = rn_sandbox_new(RN_RECIPES_DIR, NULL, err, sizeof err);
    rn_value *root = sb ? rn_sandbox_run_file(sb, path, err, sizeof err) : NULL;
    rn_sandbox_free(sb);
    unlink(path);
    const rn_value *spec = rn_value_field(root, "model");
    int rc = spec ? rn_model_build(m, spec, in, n, 7, err, sizeof err) : -1;
    if (rc) fprintf(stderr, "%s: %s\n", expr, err);
    rn_value_free(root);
    return rc;
}

/* A model with every layer type of lib.nn: dilated, grouped and strided convolutions, GELU,
 * LeakyReLU, a residual block without activation and one with a downsampling shortcut, batch
 * norm, padded max and average pools, identity, dropout, ReLU, global pooling, flatten, linear.
 * For an input of 3 x 17 x 15 (odd sizes, so a swapped height and width shows). */
#define RN_TEST_EVERY_LAYER \
    "nn.sequential{ " \
    "nn.conv2d{ name = 'a', in_channels = 3, out_channels = 8, kernel_size = 3, " \
    "padding = 2, dilation = 2 }, nn.gelu(), " \
    "nn.residual{ name = 'r1', relu = false, body = { nn.conv2d{ name = 'b', " \
    "in_channels = 8, out_channels = 8, kernel_size = 3, padding = 1, groups = 4 }, " \
    "nn.leaky_relu{ negative_slope = 0.1 } } }, " \
    "nn.residual{ name = 'r2', body = { nn.conv2d{ name = 'c', in_channels = 8, " \
    "out_channels = 16, kernel_size = 3, stride = 2, padding = 1, bias = false }, " \
    "nn.batch_norm2d{ name = 'bn', num_features = 16 } }, shortcut = { " \
    "nn.conv2d{ name = 'd', in_channels = 8, out_channels = 16, kernel_size = 1, " \
    "stride = 2, bias = false } } }, " \
    "nn.max_pool2d{ kernel_size = 3, stride = 2, padding = 1 }, nn.identity(), " \
    "nn.avg_pool2d{ kernel_size = 3, stride = 1, padding = 1 }, " \
    "nn.avg_pool2d{ kernel_size = 2 }, " \
    "nn.dropout{ p = 0.2 }, nn.relu(), " \
    "nn.global_avg_pool2d(), nn.flatten(), " \
    "nn.linear{ name = 'fc', in_features = 16, out_features = 7 } }"

/* Batch norms and residuals where a chain's bookkeeping meets its edge cases (chain.h): batch norm
 * as a chain's first layer and straight before a convolution; a sequential ending a residual's
 * body; a shortcut of batch norm, ReLU, convolution; a residual inside a shortcut; all blocked,
 * then 12-channel layers (plain) on odd planes. sep goes between each batch norm and what
 * follows it ("nn.identity(), " keeps them apart). For an input of 16 x 9 x 7. */
#define RN_TEST_UNUSUAL(sep) \
    "nn.sequential{ nn.batch_norm2d{ name = 'b0', num_features = 16 }, " sep \
    "nn.conv2d{ name = 'c0', in_channels = 16, out_channels = 16, kernel_size = 3, padding = 1 }, " \
    "nn.residual{ name = 'r1', body = { nn.sequential{ nn.batch_norm2d{ name = 'b1', " \
    "num_features = 16 }, " sep "nn.relu(), nn.conv2d{ name = 'c1', in_channels = 16, " \
    "out_channels = 16, kernel_size = 3, padding = 1 } } }, shortcut = { " \
    "nn.batch_norm2d{ name = 'b2', num_features = 16 }, " sep "nn.relu(), " \
    "nn.conv2d{ name = 'c2', in_channels = 16, out_channels = 16, kernel_size = 3, " \
    "padding = 1 } } }, " \
    "nn.residual{ name = 'r2', body = { nn.conv2d{ name = 'c3', in_channels = 16, " \
    "out_channels = 16, kernel_size = 3, padding = 1 }, nn.batch_norm2d{ name = 'b3', " \
    "num_features = 16 }, " sep "nn.relu(), nn.conv2d{ name = 'c4', in_channels = 16, " \
    "out_channels = 16, kernel_size = 3, padding = 1 }, nn.batch_norm2d{ name = 'b4', " \
    "num_features = 16 } }, shortcut = { nn.residual{ name = 'r3', body = { " \
    "nn.conv2d{ name = 'c5', in_channels = 16, out_channels = 16, kernel_size = 1 }, " \
    "nn.batch_norm2d{ name = 'b5', num_features = 16 } }, shortcut = { " \
    "nn.conv2d{ name = 'c6', in_channels = 16, out_channels = 16, kernel_size = 1 } } } } }, " \
    "nn.conv2d{ name = 'c7', in_channels = 16, out_channels = 12, kernel_size = 3, " \
    "padding = 1 }, nn.batch_norm2d{ name = 'b7', num_features = 12 }, " sep "nn.relu(), " \
    "nn.conv2d{ name = 'c8', in_channels = 12, out_channels = 12, kernel_size = 3, " \
    "padding = 1 }, nn.global_avg_pool2d(), nn.flatten(), " \
    "nn.linear{ name = 'fc', in_features = 12, out_features = 5 } }"

#endif
