/* Not a test: the machine's measured peak for scripts/bench. Times rn_cpu_sgemm (oneDNN's sgemm
 * on the OpenMP team, as the layers use it) on square float32 matrices and prints one JSON line,
 * {"n": N, "gflops": best of the repeats}. Usage: bench_gemm [N] [repeats] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cpu_gemm.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 2048;
    int repeats = argc > 2 ? atoi(argv[2]) : 10;
    float *a = malloc((size_t)(n * n) * sizeof *a), *b = malloc((size_t)(n * n) * sizeof *b);
    float *c = malloc((size_t)(n * n) * sizeof *c);
    if (!a || !b || !c || n < 1 || repeats < 1) {
        fprintf(stderr, "bench_gemm: bad size or out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < n * n; i++) {
        a[i] = (float)(i % 7) * 0.25f;
        b[i] = (float)(i % 5) * 0.5f;
    }
    double best = 0.0;
    rn_cpu_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm-up */
    for (int r = 0; r < repeats; r++) {
        double t0 = now_s();
        if (rn_cpu_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n)) return 1;
        double g = 2.0 * (double)n * (double)n * (double)n / (now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    printf("{\"n\": %lld, \"gflops\": %.1f, \"check\": %g}\n", (long long)n, best,
           (double)c[n * n - 1]);
    free(a);
    free(b);
    free(c);
    return 0;
}
