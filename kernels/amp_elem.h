/* Mixed precision's per-element pieces, shared by the CPU and the GPU: unscaling a gradient
 * before the optimizer step, as torch._amp_foreach_non_finite_check_and_unscale_ does (the
 * non-finite check is on the scaled value; the product is a float multiply by inv_scale, itself
 * 1/scale computed in double and rounded to float, as GradScaler.unscale_), and the conversions
 * between float32 and the two 16-bit formats the device network computes in (bfloat16 and IEEE
 * half, held as their bits in a uint16_t), so the CPU tests check the roundings the GPU does. */
#ifndef RN_AMP_ELEM_H
#define RN_AMP_ELEM_H

#include <stdint.h>
#include <string.h>

#include "rn_hd.h"

/* g = g * inv_scale; returns 1 when g was inf or NaN (the step must then be skipped). */
RN_HD int rn_unscale_elem(float *g, float inv_scale)
{
    float v = *g;
    int bad = !(v - v == 0.0f); /* inf - inf and NaN - NaN are NaN */
    *g = v * inv_scale;
    return bad;
}

/* The bits of a float and back (memcpy: no aliasing questions in C or C++). */
RN_HD uint32_t rn_f32_bits(float f)
{
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

RN_HD float rn_f32_from_bits(uint32_t u)
{
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* The bfloat16 nearest to f, ties to even, as its bits; inf stays inf, a NaN stays a NaN with the
 * quiet bit set and the top of its payload kept. runner/cpu's rn_bf16_convert (the CPU's
 * precision = "bf16") rounds with it too. */
RN_HD uint16_t rn_bf16_from_f32(float f)
{
    uint32_t u = rn_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); /* a carry into the exponent rounds up to the next binade */
    return (uint16_t)(u >> 16);
}

/* bfloat16 bits -> float: exact (the upper half of a float). */
RN_HD float rn_bf16_to_f32(uint16_t h)
{
    return rn_f32_from_bits((uint32_t)h << 16);
}

/* The IEEE half nearest to f, ties to even, as its bits (what a C cast to _Float16 gives):
 * |f| >= 65520 (the midpoint between 65504, the largest half, and 2^16) becomes inf; below 2^-14
 * the result is subnormal (steps of 2^-24), and |f| <= 2^-25 rounds to a zero of f's sign. A NaN
 * stays a NaN with the quiet bit set and the top 9 bits of its payload kept. */
RN_HD uint16_t rn_f16_from_f32(float f)
{
    const uint32_t u = rn_f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* 65520 and up, inf */
    if (a >= 0x38800000u) {                                  /* 2^-14 and up: a normal half */
        uint32_t r = a - 0x38000000u;                        /* exponent bias 127 -> 15 */
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) return sign; /* 2^-25 itself ties to the even zero */
    /* A subnormal half: |f| = m 2^(e - 150), in units of 2^-24 that is m >> (126 - e), rounded
     * to nearest even. 0x400 (a carry) is the smallest normal's encoding, as it should be. */
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e;
    const uint32_t rest = m & ((1u << shift) - 1u), mid = 1u << (shift - 1u);
    uint32_t q = m >> shift;
    q += rest > mid || (rest == mid && (q & 1u));
    return (uint16_t)(sign | q);
}

/* IEEE half bits -> float: exact for every finite half (subnormals normalized); inf stays inf; a
 * NaN keeps its payload and gets the quiet bit, as the hardware conversion (and a _Float16 cast)
 * does. */
RN_HD float rn_f16_to_f32(uint16_t h)
{
    const uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = ((uint32_t)h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu;
    if (e == 0x1fu)
        return rn_f32_from_bits(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e == 0) {
        if (m == 0) return rn_f32_from_bits(sign);
        e = 1; /* m 2^-24: shift m up to a leading 1 in bit 10, lowering the exponent */
        while (!(m & 0x400u)) {
            m <<= 1;
            e--;
        }
        m &= 0x3ffu;
    }
    return rn_f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

#endif
