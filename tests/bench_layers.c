/* Not a test: where a training step of a zoo model spends its time, layer by layer (a residual
 * block is one layer), forward and backward, on the CPU. For issue 8's profiling: the whole
 * step through the model API as the trainer runs it, and each top-level layer timed alone.
 *
 *   bench_layers [MODEL] [C H W] [batch] [iters] [bf16] [plain] [eval]
 *   bench_layers 'models.mnist_cnn{ classes = 10 }' 1 28 28 128 30
 *   bench_layers 'models.resnet8{ in_channels = 1, classes = 10 }' 1 28 28 128 30 bf16
 *
 * MODEL is a recipe expression over recipes/lib (models, nn); the default is the MNIST CNN.
 * `plain` keeps every activation plain NCHW (rn_model_set_layouts(m, false)), to measure what
 * the blocked layouts between layers save. `eval`: forward passes in eval mode only, as
 * `runner --evaluate` runs them. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "model_from_lua.h"

int main(int argc, char **argv)
{
    const char *expr = argc > 1 ? argv[1] : "models.mnist_cnn{ classes = 10 }";
    int64_t c = argc > 4 ? atoll(argv[2]) : 1, h = argc > 4 ? atoll(argv[3]) : 28,
            w = argc > 4 ? atoll(argv[4]) : 28;
    int64_t batch = argc > 5 ? atoll(argv[5]) : 128;
    int iters = argc > 6 ? atoi(argv[6]) : 30;
    int bf16 = 0, plain = 0, eval = 0;
    for (int i = 7; i < argc; i++) {
        bf16 |= strcmp(argv[i], "bf16") == 0;
        plain |= strcmp(argv[i], "plain") == 0;
        eval |= strcmp(argv[i], "eval") == 0;
    }
    rn_model m;
    if (rn_test_model_from_lua(&m, "/tmp", expr, rn_shape_make(3, (int64_t[]){c, h, w}), batch))
        return 1;
    if (bf16) rn_model_set_bf16(&m, true);
    char err[256];
    if (plain && rn_model_set_layouts(&m, false, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    const int n = m.n_layers;
    rn_layer **ls = m.layers;
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    for (int64_t i = 0; i < rn_tensor_numel(&m.acts[0]); i++)
        m.acts[0].data[i] = (float)((i * 7919 % 1000) / 1000.0);
    int64_t classes = m.acts[n].shape.d[1];
    for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)(i % classes);

    double *tf = calloc((size_t)n, sizeof *tf), *tb = calloc((size_t)n, sizeof *tb);
    for (int it = -3; it < iters; it++) {
        for (int i = 0; i < n; i++) {
            double a = omp_get_wtime();
            rn_tensor x = m.acts[i], y = m.acts[i + 1];
            if (ls[i]->ops->forward(ls[i], &x, &y, !eval)) {
                fprintf(stderr, "bench: forward %d: %s\n", i, ls[i]->err);
                return 1;
            }
            if (it >= 0) tf[i] += omp_get_wtime() - a;
        }
        rn_cross_entropy(&m.acts[n], labels, &m.grads[n], NULL);
        for (int i = n - 1; i >= 0 && !eval; i--) {
            double a = omp_get_wtime();
            rn_tensor x = m.acts[i], y = m.acts[i + 1], dy = m.grads[i + 1], dx = m.grads[i];
            if (ls[i]->ops->backward(ls[i], &x, &y, &dy, i ? &dx : NULL)) {
                fprintf(stderr, "bench: backward %d: %s\n", i, ls[i]->err);
                return 1;
            }
            if (it >= 0) tb[i] += omp_get_wtime() - a;
        }
    }
    /* the same step through the model API, as the trainer calls it */
    double t0 = omp_get_wtime();
    for (int it = 0; it < iters; it++) {
        rn_tensor out;
        rn_model_forward(&m, batch, !eval, &out);
        rn_tensor g = m.grads[n];
        rn_cross_entropy(&out, labels, eval ? NULL : &g, NULL);
        if (!eval) rn_model_backward(&m, batch);
    }
    double tm = (omp_get_wtime() - t0) / iters, sum = 0;
    for (int i = 0; i < n; i++) sum += (tf[i] + tb[i]) / iters;
    printf("%s, batch %lld, %d threads%s%s%s: %.1f ms/step, %.0f images/s (layers alone: %.1f ms)\n",
           expr, (long long)batch, omp_get_max_threads(), bf16 ? ", bf16" : "",
           plain ? ", plain" : "", eval ? ", eval" : "", 1e3 * tm,
           batch / tm, 1e3 * sum);
    for (int i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s %s", ls[i]->ops->type, ls[i]->name);
        printf("  [%2d] %-28s fwd %7.2f ms  bwd %7.2f ms\n", i, name, 1e3 * tf[i] / iters,
               1e3 * tb[i] / iters);
    }
    free(tf);
    free(tb);
    free(labels);
    rn_model_free(&m);
    return 0;
}
