/* A GEMM plan on oneDNN's matmul primitive: the shape, the transposes and the operands' type fixed
 * once, the primitive built once and run many times (dnnl_sgemm instead re-plans and re-packs on
 * every call: for the MNIST CNN's fc1 forward, 128x9216 times 9216x128 transposed, it took
 * 2.07 ms where this plan takes 0.70, measured side by side on this machine).
 *
 * Operands are float32, or bfloat16 for layers under precision = "bf16": the caller rounds A and
 * B to bf16 (round to nearest even, as PyTorch's .to(torch.bfloat16)) with rn_bf16_convert, once
 * per operand however many products read it; the product accumulates in float32 and C is float32.
 * So a bf16 C equals the float32 product of the bf16-rounded operands up to the order of the
 * float32 sums. */
#ifndef RN_CPU_MATMUL_H
#define RN_CPU_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rn_cpu_matmul rn_cpu_matmul;

/* C (m,n) = op(A) (m,k) op(B) (k,n) [+ bias (n), added to every row], all dense row-major:
 * A is stored (m,k), or (k,m) with trans_a; B is (k,n), or (n,k) with trans_b; A and B are
 * bfloat16 with bf16, float32 otherwise. Builds the primitive once. Returns 0, or nonzero with
 * one line in err. */
int rn_cpu_matmul_create(rn_cpu_matmul **out, bool bf16, bool trans_a, bool trans_b, int64_t m,
                         int64_t n, int64_t k, bool bias, char *err, size_t errlen);
void rn_cpu_matmul_destroy(rn_cpu_matmul *g);
/* Whether g was built for this call. */
bool rn_cpu_matmul_matches(const rn_cpu_matmul *g, bool bf16, bool trans_a, bool trans_b,
                           int64_t m, int64_t n, int64_t k, bool bias);
/* Overwrites c from the operands a and b (uint16_t bf16 or float, stored as create described A
 * and B); bias (float32) is read only when the plan has one. */
int rn_cpu_matmul_run(rn_cpu_matmul *g, const void *a, const void *b, const float *bias,
                      float *c, char *err, size_t errlen);

/* dst[i] = bf16(src[i]) for n values (OpenMP over large n), rounded by kernels/amp_elem.h's
 * rn_bf16_from_f32: the same bits the device network's bf16 narrows to. */
void rn_bf16_convert(uint16_t *dst, const float *src, int64_t n);

#endif
