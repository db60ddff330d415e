/* Row-major single-precision GEMM on the CPU (oneDNN's sgemm, OpenMP threads). */
#ifndef RN_CPU_GEMM_H
#define RN_CPU_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* C (m,n) = alpha * op(A) (m,k) * op(B) (k,n) + beta * C, all row-major with leading dimensions
 * lda/ldb/ldc; op(X) = X^T when the trans flag is set. Returns 0, or nonzero on bad arguments. */
int rn_cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);

#endif
