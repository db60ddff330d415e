/* A GEMM computed in bfloat16 on the CPU (oneDNN's matmul primitive), for layers running under
 * precision = "bf16". A plan fixes the shape and the transposes; running it rounds A and B to bf16
 * (round to nearest even, as PyTorch's .to(torch.bfloat16); the caller converts them with
 * rn_bf16_convert, once per operand however many products read it), multiplies with float32
 * accumulation and writes C in float32. So C equals the float32 product of the bf16-rounded
 * operands up to the order of the float32 sums. */
#ifndef RN_CPU_GEMM_BF16_H
#define RN_CPU_GEMM_BF16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rn_cpu_gemm_bf16 rn_cpu_gemm_bf16;

/* C (m,n) = op(A) (m,k) op(B) (k,n) [+ bias (n), added to every row], all dense row-major:
 * A is stored (m,k), or (k,m) with trans_a; B is (k,n), or (n,k) with trans_b. Builds the
 * primitive once. Returns 0, or nonzero with one line in err. */
int rn_cpu_gemm_bf16_create(rn_cpu_gemm_bf16 **out, bool trans_a, bool trans_b, int64_t m,
                            int64_t n, int64_t k, bool bias, char *err, size_t errlen);
void rn_cpu_gemm_bf16_destroy(rn_cpu_gemm_bf16 *g);
/* Whether g was built for this call shape. */
bool rn_cpu_gemm_bf16_matches(const rn_cpu_gemm_bf16 *g, bool trans_a, bool trans_b, int64_t m,
                              int64_t n, int64_t k, bool bias);
/* Overwrites c from the bf16 operands a16 and b16 (stored as create described A and B); bias
 * (float32) is read only when the plan has one. */
int rn_cpu_gemm_bf16_run(rn_cpu_gemm_bf16 *g, const uint16_t *a16, const uint16_t *b16,
                         const float *bias, float *c, char *err, size_t errlen);

/* The bf16 nearest to f, ties to even (NaN stays NaN), as its upper 16 bits. */
static inline uint16_t rn_bf16_from_float(float f)
{
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}

static inline float rn_bf16_to_float(uint16_t h)
{
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

/* dst[i] = bf16(src[i]) for n values (OpenMP over large n). */
void rn_bf16_convert(uint16_t *dst, const float *src, int64_t n);

#endif
