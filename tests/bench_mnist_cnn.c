/* Times forward+backward (train mode) of the PyTorch MNIST example CNN at a given batch size and
 * prints images/s and a per-layer breakdown. Not a test: `bench_mnist_cnn [batch] [iters] [bf16]`
 * (bf16: precision = "bf16", rn_model_set_bf16). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define CHECK_LAYER(x)                                                                    \
    do {                                                                                  \
        if (!(x)) {                                                                       \
            fprintf(stderr, "bench: %s\n", err);                                          \
            return 1;                                                                     \
        }                                                                                 \
    } while (0)

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoll(argv[1]) : 128;
    int iters = argc > 2 ? atoi(argv[2]) : 30;
    char err[400];
    rn_layer **ls = malloc(12 * sizeof *ls);
    int n = 0;
    CHECK_LAYER(ls[n++] = rn_conv2d_create("conv1", 1, 32, 3, 1, 0, true, 1, err, sizeof err));
    CHECK_LAYER(ls[n++] = rn_relu_create());
    CHECK_LAYER(ls[n++] = rn_conv2d_create("conv2", 32, 64, 3, 1, 0, true, 2, err, sizeof err));
    CHECK_LAYER(ls[n++] = rn_relu_create());
    CHECK_LAYER(ls[n++] = rn_maxpool2d_create(2, 2, err, sizeof err));
    CHECK_LAYER(ls[n++] = rn_dropout_create(0.25, 3, err, sizeof err));
    CHECK_LAYER(ls[n++] = rn_flatten_create());
    CHECK_LAYER(ls[n++] = rn_linear_create("fc1", 9216, 128, true, 4, err, sizeof err));
    CHECK_LAYER(ls[n++] = rn_relu_create());
    CHECK_LAYER(ls[n++] = rn_dropout_create(0.5, 5, err, sizeof err));
    CHECK_LAYER(ls[n++] = rn_linear_create("fc2", 128, 10, true, 6, err, sizeof err));
    rn_model m;
    if (rn_model_init(&m, ls, n, rn_shape_make(3, (int64_t[]){1, 28, 28}), batch, err,
                      sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    if (argc > 3 && strcmp(argv[3], "bf16") == 0) rn_model_set_bf16(&m, true);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    for (int64_t i = 0; i < rn_tensor_numel(&m.acts[0]); i++)
        m.acts[0].data[i] = (float)((i * 7919 % 1000) / 1000.0);
    for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)(i % 10);

    double tf[16] = {0}, tb[16] = {0}, total = 0;
    for (int it = -3; it < iters; it++) {
        double t0 = omp_get_wtime();
        for (int i = 0; i < n; i++) {
            double a = omp_get_wtime();
            rn_tensor x = m.acts[i], y = m.acts[i + 1];
            if (ls[i]->ops->forward(ls[i], &x, &y, true)) {
                fprintf(stderr, "bench: forward %d: %s\n", i, ls[i]->err);
                return 1;
            }
            if (it >= 0) tf[i] += omp_get_wtime() - a;
        }
        rn_cross_entropy(&m.acts[n], labels, &m.grads[n], NULL);
        for (int i = n - 1; i >= 0; i--) {
            double a = omp_get_wtime();
            rn_tensor x = m.acts[i], y = m.acts[i + 1], dy = m.grads[i + 1], dx = m.grads[i];
            if (ls[i]->ops->backward(ls[i], &x, &y, &dy, i ? &dx : NULL)) {
                fprintf(stderr, "bench: backward %d: %s\n", i, ls[i]->err);
                return 1;
            }
            if (it >= 0) tb[i] += omp_get_wtime() - a;
        }
        if (it >= 0) total += omp_get_wtime() - t0;
    }
    /* the same step through the model API, as the trainer calls it */
    double t0 = omp_get_wtime();
    for (int it = 0; it < iters; it++) {
        rn_tensor out;
        rn_model_forward(&m, batch, true, &out);
        rn_tensor g = m.grads[n];
        rn_cross_entropy(&out, labels, &g, NULL);
        rn_model_backward(&m, batch);
    }
    double tm = omp_get_wtime() - t0;
    printf("MNIST CNN batch %lld, %d threads: %.1f ms/step, %.0f images/s (model API: %.0f)\n",
           (long long)batch, omp_get_max_threads(), 1e3 * total / iters,
           batch * iters / total, batch * iters / tm);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s %s", ls[i]->ops->type, ls[i]->name);
        printf("  [%2d] %-16s fwd %7.2f ms  bwd %7.2f ms\n", i, name, 1e3 * tf[i] / iters,
               1e3 * tb[i] / iters);
    }
    free(labels);
    rn_model_free(&m);
    return 0;
}
