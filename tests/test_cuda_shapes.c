/* The CUDA backend sees every convolution and max pooling as the CPU path does: for the layers of
 * the zoo (mnist_cnn, ResNet-8/20, torchvision's ResNet-18 with both stems) and strided, dilated,
 * grouped and depthwise cases, the output shape cuDNN's descriptors give
 * (cudnnGetConvolution2dForwardOutputDim, cudnnGetPooling2dForwardOutputDim) equals the CPU
 * layer's setup(), exactly. Descriptor calls need no GPU, so this runs on any machine that built
 * the backend. The backend's probe answers without a GPU too (one line, no crash). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "../runner/cuda/backend.h"
#include "layer.h"
#include "rn_test.h"

typedef struct conv_case {
    const char *what;
    int n, c, h, w, out_ch, k, stride, pad, dil, groups;
} conv_case;

static const conv_case convs[] = {
    {"mnist_cnn conv1", 128, 1, 28, 28, 32, 3, 1, 0, 1, 1},
    {"mnist_cnn conv2", 128, 32, 26, 26, 64, 3, 1, 0, 1, 1},
    {"resnet8 stem", 128, 1, 28, 28, 16, 3, 1, 1, 1, 1},
    {"resnet8 layer2 conv1 (stride 2)", 128, 16, 28, 28, 32, 3, 2, 1, 1, 1},
    {"resnet8 layer2 shortcut 1x1/2", 128, 16, 28, 28, 32, 1, 2, 0, 1, 1},
    {"resnet8 layer3 on an odd size", 128, 32, 14, 14, 64, 3, 2, 1, 1, 1},
    {"resnet18 ImageNet stem 7x7/2", 32, 3, 224, 224, 64, 7, 2, 3, 1, 1},
    {"resnet18 CIFAR stem", 128, 3, 32, 32, 64, 3, 1, 1, 1, 1},
    {"resnet18 layer4 conv1", 32, 256, 14, 14, 512, 3, 2, 1, 1, 1},
    {"resnet18 layer4 shortcut", 32, 256, 14, 14, 512, 1, 2, 0, 1, 1},
    {"resnet18 layer4 on 7x7", 32, 512, 7, 7, 512, 3, 1, 1, 1, 1},
    {"dilated 3x3 d2", 4, 8, 17, 13, 8, 3, 1, 2, 2, 1},
    {"grouped 4", 4, 16, 9, 9, 32, 3, 2, 1, 1, 4},
    {"depthwise", 4, 24, 15, 15, 24, 5, 2, 2, 1, 24},
};

typedef struct pool_case {
    const char *what;
    int n, c, h, w, k, stride, pad;
} pool_case;

static const pool_case pools[] = {
    {"mnist_cnn pool 2x2/2", 128, 64, 24, 24, 2, 2, 0},
    {"resnet18 ImageNet pool 3x3/2 pad 1", 32, 64, 112, 112, 3, 2, 1},
    {"odd input 3x3/2", 8, 4, 15, 11, 3, 2, 1},
};

int main(void)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", RN_BACKEND_DIR, RN_CUDA_BACKEND_FILE);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    CHECK(h != NULL);
    if (!h) return rn_test_report("test_cuda_shapes");
    rn_cuda_backend_entry_fn entry = (rn_cuda_backend_entry_fn)dlsym(h, "rn_cuda_backend_entry");
    const rn_cuda_backend *b = entry ? entry() : NULL;
    CHECK(b && b->abi == RN_CUDA_BACKEND_ABI && b->struct_size >= sizeof *b);
    if (!b) return rn_test_report("test_cuda_shapes");
    printf("backend: %s\n", b->build);

    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        const conv_case *t = &convs[i];
        rn_conv2d_args a = {t->c, t->out_ch, t->k, t->stride, t->pad, t->dil, t->groups, false};
        rn_layer *l = rn_conv2d_create2("conv", &a, 1, err, sizeof err);
        CHECK(l != NULL);
        if (!l) continue;
        rn_shape in = rn_shape_make(4, (int64_t[]){t->n, t->c, t->h, t->w}), out;
        CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
        rn_cuda_conv_shape s = {t->n, t->c, t->h, t->w, t->out_ch, t->k, t->k, t->pad, t->pad,
                                t->stride, t->stride, t->dil, t->dil, t->groups};
        int dims[4] = {0};
        int rc = b->conv2d_output(&s, dims, err, sizeof err);
        if (rc) fprintf(stderr, "%s: %s\n", t->what, err);
        CHECK(rc == 0);
        int same = out.ndim == 4;
        for (int d = 0; same && d < 4; d++) same = out.d[d] == dims[d];
        if (!same)
            fprintf(stderr, "%s: CPU %ldx%ldx%ldx%ld, cuDNN %dx%dx%dx%d\n", t->what,
                    (long)out.d[0], (long)out.d[1], (long)out.d[2], (long)out.d[3], dims[0],
                    dims[1], dims[2], dims[3]);
        CHECK(same);
        rn_layer_destroy(l);
    }
    for (size_t i = 0; i < sizeof pools / sizeof *pools; i++) {
        const pool_case *t = &pools[i];
        rn_layer *l = rn_maxpool2d_create2(t->k, t->stride, t->pad, err, sizeof err);
        CHECK(l != NULL);
        if (!l) continue;
        rn_shape in = rn_shape_make(4, (int64_t[]){t->n, t->c, t->h, t->w}), out;
        CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
        rn_cuda_conv_shape s = {t->n, t->c, t->h, t->w, t->c, t->k, t->k, t->pad, t->pad,
                                t->stride, t->stride, 1, 1, 1};
        int dims[4] = {0};
        CHECK(b->maxpool2d_output(&s, dims, err, sizeof err) == 0);
        int same = out.ndim == 4;
        for (int d = 0; same && d < 4; d++) same = out.d[d] == dims[d];
        if (!same) fprintf(stderr, "%s: shapes differ\n", t->what);
        CHECK(same);
        rn_layer_destroy(l);
    }
    /* cuDNN refuses what the CPU layer refuses too: a filter larger than the padded input. */
    rn_cuda_conv_shape bad = {1, 1, 4, 4, 1, 7, 7, 0, 0, 1, 1, 1, 1, 1};
    int dims[4];
    int rc = b->conv2d_output(&bad, dims, err, sizeof err);
    CHECK(rc != 0 || dims[2] <= 0);

    /* Without a GPU the probe says why in one line; with one it names it. */
    rn_cuda_info info;
    char why[512] = "";
    if (b->probe(&info, why, sizeof why) == 0) {
        printf("probe: %s, sm_%d%d\n", info.name, info.cc_major, info.cc_minor);
        CHECK(info.devices > 0 && info.name[0]);
    } else {
        printf("probe: %s\n", why);
        CHECK(why[0] && !strchr(why, '\n'));
    }
    CHECK(info.runtime_version > 0 && info.cudnn_version > 0);
    return rn_test_report("test_cuda_shapes");
}
