/* kernels/amp_elem.h's 16-bit conversions, the ones the device network's bf16 and fp16 compute
 * rounds its operands with, against references on the CPU, bit for bit:
 *   - float -> IEEE half against GCC's _Float16 cast (libgcc's round to nearest even) and
 *     half -> float against the cast back: all 65536 halves widened, and every non-NaN half
 *     narrowed back to itself; every float of the form (sign, exponent, top 10 mantissa bits, low
 *     13 bits) for all 2 x 256 x 1024 leading parts and 12 low patterns (0, 1, the tie 0x1000
 *     and its neighbours, all ones, ...), which takes each rounding path at every binade; 4 x 10^6
 *     random bit patterns; and the edges by name: 65504, 65519.99, 65520 (ties to inf), 2^-14,
 *     2^-24, 2^-25 (ties to 0) and just above, inf, quiet and signalling NaNs, -0.
 *   - float -> bfloat16 against an independent reference (the nearer of the two bfloat16 values
 *     around |f|, compared in double, ties to the even one; past the largest finite value the
 *     upper neighbour is 2^128, so overflow rounds to inf as IEEE does) on the same inputs, also
 *     through runner/cpu's rn_bf16_convert (the CPU's precision = "bf16" loop); bfloat16 ->
 *     float against the bits shifted up, for all 65536.
 *   - NaNs, whose rule the reference above restates (quiet, sign and upper payload kept): also
 *     against oneDNN's own f32 -> bf16 reorder, an implementation of its own (on AVX512-BF16,
 *     the vcvtneps2bf16 instruction), for 4096 NaN patterns. oneDNN's flushes subnormal inputs
 *     to zero where ours rounds them; they are not compared.
 * (An exhaustive sweep of the 2^32 floats takes minutes through libgcc's cast: too slow here.) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "../kernels/amp_elem.h"
#include "cpu_matmul.h"
#include "rn_test.h"

/* The float's bits and back: amp_elem.h's own. */
#define bits rn_f32_bits
#define from_bits rn_f32_from_bits

/* The bfloat16 nearest to f, found by comparing distances in double (exact for these values). */
static uint16_t ref_bf16(float f)
{
    uint32_t u = bits(f), sign = (u >> 16) & 0x8000u, m = u & 0x7fffffffu;
    if (isnan(f)) return (uint16_t)((u >> 16) | 0x40u);
    uint32_t lo = m >> 16, hi = lo + 1;
    double a = fabs((double)f), vlo = from_bits(lo << 16);
    double vhi = hi == 0x7f80u ? ldexp(1.0, 128) : (double)from_bits(hi << 16);
    if (lo == 0x7f80u) return (uint16_t)(sign | lo); /* inf */
    uint32_t pick = a - vlo < vhi - a ? lo : a - vlo > vhi - a ? hi : (lo & 1u ? hi : lo);
    return (uint16_t)(sign | pick);
}

static uint16_t ref_f16(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t b;
    memcpy(&b, &h, sizeof b);
    return b;
}

static float ref_f16_to_f32(uint16_t b)
{
    _Float16 h;
    memcpy(&h, &b, sizeof h);
    return (float)h;
}

/* Counters of one batch of inputs: mismatches of each conversion, printed for the first few. */
typedef struct tally {
    long long tested, f16_bad, bf16_bad;
} tally;

enum { BATCH = 1 << 16 };

/* Checks n floats: f16 one by one against the cast, bf16 against rn_bf16_convert's array. */
static void check_batch(tally *t, const float *x, int64_t n)
{
    static uint16_t want[BATCH];
    rn_bf16_convert(want, x, n);
    for (int64_t i = 0; i < n; i++) {
        uint16_t got = rn_f16_from_f32(x[i]), ref = ref_f16(x[i]);
        if (got != ref && t->f16_bad++ < 5)
            fprintf(stderr, "f16(%a = 0x%08x): 0x%04x, _Float16 0x%04x\n", (double)x[i],
                    bits(x[i]), got, ref);
        uint16_t b = rn_bf16_from_f32(x[i]), rb = ref_bf16(x[i]);
        if ((b != rb || want[i] != rb) && t->bf16_bad++ < 5)
            fprintf(stderr, "bf16(0x%08x): 0x%04x, rn_bf16_convert 0x%04x, reference 0x%04x\n",
                    bits(x[i]), b, want[i], rb);
    }
    t->tested += n;
}

/* out = x in bf16 through a oneDNN reorder; 0, or -1 when oneDNN could not run it. */
static int onednn_bf16(const float *x, uint16_t *out, int64_t n)
{
    dnnl_engine_t eng = NULL;
    dnnl_stream_t strm = NULL;
    dnnl_memory_desc_t a, b;
    dnnl_memory_t ma = NULL, mb = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_dims_t d = {n};
    int ok = dnnl_engine_create(&eng, dnnl_cpu, 0) == dnnl_success &&
             dnnl_stream_create(&strm, eng, dnnl_stream_default_flags) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&a, 1, d, dnnl_f32, dnnl_a) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&b, 1, d, dnnl_bf16, dnnl_a) == dnnl_success &&
             dnnl_memory_create(&ma, &a, eng, (void *)x) == dnnl_success &&
             dnnl_memory_create(&mb, &b, eng, out) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&pd, &a, eng, &b, eng, NULL) == dnnl_success &&
             dnnl_primitive_create(&prim, pd) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ma}, {DNNL_ARG_TO, mb}};
        ok = dnnl_primitive_execute(prim, strm, 2, args) == dnnl_success &&
             dnnl_stream_wait(strm) == dnnl_success;
    }
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (strm) dnnl_stream_destroy(strm);
    if (eng) dnnl_engine_destroy(eng);
    return ok ? 0 : -1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

int main(void)
{
    static float x[BATCH];
    tally t = {0, 0, 0};

    /* every half widened (against the cast), and narrowed back to itself unless a NaN */
    long long wide_bad = 0, round_trip_bad = 0, bf_wide_bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = rn_f16_to_f32((uint16_t)h), ref = ref_f16_to_f32((uint16_t)h);
        if (bits(got) != bits(ref) && wide_bad++ < 5)
            fprintf(stderr, "f16 0x%04x -> 0x%08x, _Float16 0x%08x\n", h, bits(got), bits(ref));
        if (!isnan(got) && rn_f16_from_f32(got) != h) round_trip_bad++;
        if (bits(rn_bf16_to_f32((uint16_t)h)) != h << 16)
            bf_wide_bad++;
        x[h] = got;
    }
    check_batch(&t, x, 65536);
    CHECK(wide_bad == 0);
    CHECK(round_trip_bad == 0);
    CHECK(bf_wide_bad == 0);
    printf("all 65536 halves: widened as _Float16, narrowed back to themselves; all 65536 "
           "bfloat16 widened to their bits shifted up\n");

    /* every leading part with the low 13 bits (what half rounding drops) in each pattern */
    static const uint32_t low[] = {0x0000, 0x0001, 0x0800, 0x0fff, 0x1000, 0x1001,
                                   0x17ff, 0x1800, 0x1fff, 0x0abc, 0x1555, 0x0555};
    int64_t k = 0;
    const long long before = t.tested;
    for (uint32_t lead = 0; lead < (1u << 19); lead++)
        for (size_t j = 0; j < sizeof low / sizeof *low; j++) {
            x[k++] = from_bits(lead << 13 | low[j]);
            if (k == BATCH) {
                check_batch(&t, x, k);
                k = 0;
            }
        }
    check_batch(&t, x, k);
    printf("%lld floats (every sign, exponent and top 10 mantissa bits x %zu low patterns)\n",
           t.tested - before, sizeof low / sizeof *low);

    /* random bit patterns, and random values in half's range (where most rounding happens) */
    for (int r = 0; r < 61; r++) {
        for (int i = 0; i < BATCH; i++) {
            uint32_t u = next32();
            x[i] = i & 1 ? from_bits(u)
                         : from_bits((u & 0x80000000u) | (0x33000000u + u % 0x14800000u));
        }
        check_batch(&t, x, BATCH);
    }

    /* the edges by name */
    const float edges[] = {
        65504.0f, 65519.996f, 65520.0f, 65536.0f, -65520.0f, 1e10f, 0x1p-14f, 0x1.ff8p-15f,
        0x1.ffcp-15f, 0x1p-24f, 0x1p-25f, 0x1.000002p-25f, 0x1.8p-24f, 0x1.4p-24f, 0x1p-26f,
        0x1p-149f, 0.0f, -0.0f, 1.0f, 1.0009765625f, 1.00048828125f, 1.00146484375f,
        3.4028235e38f, INFINITY, -INFINITY, NAN, -NAN, from_bits(0x7f800001u),
        from_bits(0xffa00001u), from_bits(0x7fc01234u), from_bits(0x7fffffffu),
        1.00390625f /* bf16 tie to even */, 1.01171875f /* bf16 tie up */};
    const int n_edges = (int)(sizeof edges / sizeof *edges);
    memcpy(x, edges, sizeof edges);
    check_batch(&t, x, n_edges);
    CHECK(rn_f16_from_f32(65504.0f) == 0x7bff);
    CHECK(rn_f16_from_f32(65520.0f) == 0x7c00);
    CHECK(rn_f16_from_f32(65519.996f) == 0x7bff);
    CHECK(rn_f16_from_f32(0x1p-25f) == 0x0000);
    CHECK(rn_f16_from_f32(0x1.000002p-25f) == 0x0001);
    CHECK(rn_f16_from_f32(0x1.8p-24f) == 0x0002); /* 1.5 ulp: tie to even 2 */
    CHECK(rn_f16_from_f32(-0.0f) == 0x8000);
    CHECK((rn_f16_from_f32(from_bits(0x7f800001u)) & 0x7e00) == 0x7e00); /* sNaN made quiet */
    CHECK(rn_bf16_from_f32(from_bits(0x7f800001u)) == 0x7fc0);
    CHECK(rn_bf16_from_f32(INFINITY) == 0x7f80 && rn_bf16_from_f32(3.4028235e38f) == 0x7f80);
    CHECK(isnan(rn_f16_to_f32(0x7c01)) && rn_f16_to_f32(0x7c00) == INFINITY);
    CHECK(rn_f16_to_f32(0x0001) == 0x1p-24f && rn_f16_to_f32(0x03ff) == 0x1.ff8p-15f);
    /* NaNs against oneDNN's conversion: both signs, quiet and signalling, payloads at random
     * (never zero, which would be an infinity) */
    enum { NANS = 4096 };
    static uint16_t dn[NANS];
    for (int i = 0; i < NANS; i++) {
        uint32_t payload = next32() & 0x7fffffu;
        if (i < 4) payload = i < 2 ? 0x400000u : 1u; /* the canonical quiet NaN, a minimal sNaN */
        x[i] = from_bits((uint32_t)(i & 1) << 31 | 0x7f800000u | (payload ? payload : 1u));
    }
    CHECK(onednn_bf16(x, dn, NANS) == 0);
    int nan_bad = 0;
    for (int i = 0; i < NANS; i++)
        if (rn_bf16_from_f32(x[i]) != dn[i] && nan_bad++ < 5)
            fprintf(stderr, "bf16(NaN 0x%08x): 0x%04x, oneDNN 0x%04x\n", bits(x[i]),
                    rn_bf16_from_f32(x[i]), dn[i]);
    printf("%d NaNs against oneDNN's reorder: %d mismatches\n", NANS, nan_bad);
    CHECK(nan_bad == 0);
    printf("%lld floats in all: f16 mismatches %lld, bf16 mismatches %lld\n", t.tested,
           t.f16_bad, t.bf16_bad);
    CHECK(t.f16_bad == 0);
    CHECK(t.bf16_bad == 0);
    return rn_test_report("test_half_convert");
}
