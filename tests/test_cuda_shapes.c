/* The CUDA backend sees every convolution and max pooling as the CPU path does: for the layers of
 * the zoo (mnist_cnn, ResNet-8/20, torchvision's ResNet-18 with both stems) and strided, dilated,
 * grouped and depthwise cases, the output shape cuDNN's descriptors give
 * (cudnnGetConvolution2dForwardOutputDim, cudnnGetPooling2dForwardOutputDim) equals the CPU
 * layer's setup(), exactly. Descriptor calls need no GPU, so this runs on any machine that built
 * the backend. The backend's probe answers without a GPU too (one line, no crash).
 *
 * The device network's plan (net_plan_shapes, ABI 2): for the zoo's mnist_cnn (1x28x28),
 * resnet8 (1x28x28), resnet18 (3x32x32) and a model with every layer type, built from
 * recipes/lib/models.lua and described by rn_net_describe, every node's dims at the max batch and
 * at a smaller one equal the description's shape of the tensor it writes (2-d as (n, f, 1, 1)),
 * with no device; the plan also sets every convolution's descriptors as net_create does in fp32,
 * bf16 and fp16 (ABI 3) and fails unless all three give the same output dims. Without a GPU,
 * net_create fails with one line and leaves *out NULL in each precision (fp32, bf16, fp16); a
 * precision outside them is refused in one line on any machine. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner/cuda/backend.h"
#include "layer.h"
#include "model_from_lua.h"
#include "net.h"
#include "rn_test.h"

static char dir[] = "/tmp/rn-cuda-shapes-XXXXXX";

static int build(rn_model *m, const char *expr, rn_shape in, int64_t n)
{
    return rn_test_model_from_lua(m, dir, expr, in, n);
}

/* net_plan_shapes at batch n against the description's shapes. */
static int plan_matches(const rn_cuda_backend *b, const rn_net *net, int64_t n, const char *what)
{
    int (*dims)[4] = calloc((size_t)net->n_nodes, sizeof *dims);
    char err[512] = "";
    int rc = b->net_plan_shapes(net, n, dims, err, sizeof err);
    if (rc) fprintf(stderr, "%s: net_plan_shapes: %s\n", what, err);
    int bad = rc != 0;
    for (int k = 0; !rc && k < net->n_nodes; k++) {
        const rn_shape *s = &net->shapes[net->nodes[k].out];
        int64_t want[4] = {n, 1, 1, 1};
        for (int d = 1; d < s->ndim; d++) want[d] = s->d[d];
        int same = 1;
        for (int d = 0; d < 4; d++) same &= dims[k][d] == want[d];
        if (!same) {
            fprintf(stderr, "%s batch %lld: node %d %s: plan %dx%dx%dx%d, described "
                    "%lldx%lldx%lldx%lld\n", what, (long long)n, k, net->nodes[k].name,
                    dims[k][0], dims[k][1], dims[k][2], dims[k][3], (long long)want[0],
                    (long long)want[1], (long long)want[2], (long long)want[3]);
            bad = 1;
        }
    }
    free(dims);
    return !bad;
}

/* The plan for a zoo model; without a GPU, net_create's one-line refusal. */
static void check_model(const rn_cuda_backend *b, int have_gpu, const char *what,
                        const char *expr, rn_shape in, int64_t max_batch)
{
    rn_model m;
    if (build(&m, expr, in, max_batch)) {
        CHECK(!"model builds");
        return;
    }
    rn_net net;
    char err[512] = "";
    int rc = rn_net_describe(&m, &net, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", what, err);
    CHECK(rc == 0);
    if (rc) {
        rn_model_free(&m);
        return;
    }
    int full = plan_matches(b, &net, max_batch, what), part = plan_matches(b, &net, 3, what);
    CHECK(full && part);
    printf("%-9s %2d nodes: net_plan_shapes at batch %lld and 3 %s the described shapes\n", what,
           net.n_nodes, (long long)max_batch, full && part ? "equal" : "DIFFER from");
    /* every precision; and one net_create must refuse on any machine */
    static const int precisions[] = {RN_CUDA_FP32, RN_CUDA_BF16, RN_CUDA_FP16};
    static const char *const names[] = {"fp32", "bf16", "fp16"};
    for (int p = 0; p < 3; p++) {
        rn_cuda_net *dn = (rn_cuda_net *)&net; /* poisoned: create must set it */
        err[0] = '\0';
        rc = b->net_create(&dn, &net, m.params, m.n_params, max_batch, precisions[p], err,
                           sizeof err);
        if (have_gpu) {
            CHECK(rc == 0 && dn != NULL);
            if (rc) fprintf(stderr, "%s %s: net_create: %s\n", what, names[p], err);
            if (!rc) b->net_destroy(dn);
        } else {
            CHECK(rc != 0 && dn == NULL && err[0] && !strchr(err, '\n'));
            if (strcmp(what, "mnist_cnn") == 0)
                printf("net_create (%s) without a GPU: %s\n", names[p], err);
        }
    }
    rn_cuda_net *dn = (rn_cuda_net *)&net;
    err[0] = '\0';
    rc = b->net_create(&dn, &net, m.params, m.n_params, max_batch, 3, err, sizeof err);
    CHECK(rc != 0 && dn == NULL && strstr(err, "precision 3") && !strchr(err, '\n'));
    if (strcmp(what, "mnist_cnn") == 0) printf("net_create (precision 3): %s\n", err);
    rn_net_free(&net);
    rn_model_free(&m);
}

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
    const int have_gpu = why[0] == '\0';

    /* ABI 2 and 3: every field of the table is filled (the core checks struct_size >= sizeof). */
    CHECK(b->net_plan_shapes && b->net_create && b->net_destroy &&
          b->host_alloc && b->host_free && b->net_forward && b->net_loss && b->net_backward &&
          b->net_grad_sumsq && b->net_grad_scale && b->net_state_alloc && b->net_step &&
          b->net_augment && b->net_download && b->net_upload && b->net_put_batch &&
          b->net_logits && b->net_grad_clamp && b->net_grad_accumulate && b->net_grad_mean &&
          b->net_grad_unscale);
    if (!mkdtemp(dir)) return 2;
    check_model(b, have_gpu, "mnist_cnn", "models.mnist_cnn{ classes = 10 }",
                rn_shape_make(3, (int64_t[]){1, 28, 28}), 8);
    check_model(b, have_gpu, "resnet8", "models.resnet8{ in_channels = 1, classes = 10 }",
                rn_shape_make(3, (int64_t[]){1, 28, 28}), 6);
    check_model(b, have_gpu, "resnet18", "models.resnet18{ classes = 10 }",
                rn_shape_make(3, (int64_t[]){3, 32, 32}), 4);
    check_model(b, have_gpu, "every", RN_TEST_EVERY_LAYER,
                rn_shape_make(3, (int64_t[]){3, 17, 15}), 5);
    rmdir(dir);
    return rn_test_report("test_cuda_shapes");
}
