/* Not a test: `bench_freeze [batch] [iters]` times a train step of resnet8 (3x32x32, 10 classes,
 * recipes/lib/models.lua's layout) with every parameter trainable, with only the head ("fc.*")
 * trainable and batch norms frozen, and with the head plus batch norms (train_bn), and prints
 * forward and backward ms per step for each. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static char err[400];

static rn_layer **list(int n, ...)
{
    rn_layer **v = malloc((size_t)n * sizeof *v);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) v[i] = va_arg(ap, rn_layer *);
    va_end(ap);
    return v;
}

static rn_layer *conv(const char *prefix, const char *name, int64_t in, int64_t out, int64_t k,
                      int64_t stride, int64_t pad, uint64_t seed)
{
    char full[96];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return rn_conv2d_create(full, in, out, k, stride, pad, false, seed, err, sizeof err);
}

static rn_layer *bn(const char *prefix, const char *name, int64_t c)
{
    char full[96];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return rn_batchnorm2d_create(full, c, 1e-5, 0.1, err, sizeof err);
}

/* torchvision's BasicBlock as "<stage>.0", with a 1x1 conv + batch norm shortcut when the shape
 * changes */
static rn_layer *stage(const char *name, int64_t in, int64_t out, int64_t stride, uint64_t seed)
{
    char b0[64], p[64], ds[64];
    snprintf(b0, sizeof b0, "%s.0", name);
    snprintf(p, sizeof p, "%s.0.", name);
    snprintf(ds, sizeof ds, "%s.0.downsample", name);
    rn_layer **body = list(5, conv(p, "conv1", in, out, 3, stride, 1, seed), bn(p, "bn1", out),
                           rn_relu_create(), conv(p, "conv2", out, out, 3, 1, 1, seed + 1),
                           bn(p, "bn2", out));
    rn_layer **sc = NULL;
    if (stride != 1 || in != out)
        sc = list(1, rn_sequential_create(ds, list(2, conv(ds, ".0", in, out, 1, stride, 0,
                                                             seed + 2),
                                                    bn(ds, ".1", out)),
                                          2, "shortcut.layers", err, sizeof err));
    rn_layer *block = rn_residual_create(b0, body, 5, sc, sc ? 1 : 0, true, "body", "shortcut", err,
                                         sizeof err);
    return rn_sequential_create(name, list(1, block), 1, "stage", err, sizeof err);
}

static void timed_steps(rn_model *m, int64_t batch, int iters, const int32_t *labels,
                        const char *what)
{
    double tf = 0, tb = 0;
    for (int it = -3; it < iters; it++) {
        double t0 = omp_get_wtime();
        rn_tensor out;
        if (rn_model_forward(m, batch, true, &out)) {
            fprintf(stderr, "bench: %s\n", m->err);
            exit(1);
        }
        rn_tensor g = m->grads[m->n_layers];
        rn_cross_entropy(&out, labels, &g, NULL);
        double t1 = omp_get_wtime();
        if (rn_model_backward(m, batch)) {
            fprintf(stderr, "bench: %s\n", m->err);
            exit(1);
        }
        double t2 = omp_get_wtime();
        if (it >= 0) {
            tf += t1 - t0;
            tb += t2 - t1;
        }
    }
    printf("%-28s forward %7.2f ms  backward %7.2f ms  step %7.2f ms\n", what,
           1e3 * tf / iters, 1e3 * tb / iters, 1e3 * (tf + tb) / iters);
}

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoll(argv[1]) : 128;
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    rn_layer **ls = list(9, conv("", "conv1", 3, 16, 3, 1, 1, 1), bn("", "bn1", 16),
                         rn_relu_create(), stage("layer1", 16, 16, 1, 10),
                         stage("layer2", 16, 32, 2, 20), stage("layer3", 32, 64, 2, 30),
                         rn_global_avgpool2d_create(), rn_flatten_create(),
                         rn_linear_create("fc", 64, 10, true, 40, err, sizeof err));
    for (int i = 0; i < 9; i++)
        if (!ls[i]) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
    rn_model m;
    if (rn_model_init(&m, ls, 9, rn_shape_make(3, (int64_t[]){3, 32, 32}), batch, err,
                      sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    for (int64_t i = 0; i < rn_tensor_numel(&m.acts[0]); i++)
        m.acts[0].data[i] = (float)((i * 7919 % 1000) / 1000.0);
    for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)(i % 10);
    bool *head = calloc((size_t)m.n_params, sizeof *head);
    for (int i = 0; i < m.n_params; i++) head[i] = strncmp(m.params[i].name, "fc.", 3) == 0;

    printf("resnet8 3x32x32, batch %lld, %d threads, %lld params\n", (long long)batch,
           omp_get_max_threads(), (long long)rn_model_param_count(&m));
    timed_steps(&m, batch, iters, labels, "all trainable");
    rn_model_set_trainable(&m, head, false, err, sizeof err);
    timed_steps(&m, batch, iters, labels, "head only (frozen bn)");
    rn_model_set_trainable(&m, head, true, err, sizeof err);
    timed_steps(&m, batch, iters, labels, "head + bn (train_bn)");
    rn_model_set_trainable(&m, NULL, false, err, sizeof err);
    timed_steps(&m, batch, iters, labels, "all trainable again");
    free(head);
    free(labels);
    rn_model_free(&m);
    return 0;
}
