/* The multi-tensor plan the CUDA optimizer kernels launch over (kernels/multi_tensor.h), run on
 * the CPU: for a group of tensors of 0, 1, 65535, 65536, 65537 and 200000 elements the chunks
 * cover every element exactly once, in tensor order, none longer than RN_MT_CHUNK, and the count
 * matches rn_mt_count_chunks; a short table is refused. Walking the chunks as the kernels' blocks
 * do, with the shared element functions (kernels/optim_elem.h), gives bit for bit what one flat
 * loop per tensor gives (SGD with Nesterov momentum, AdamW with AMSGrad), and each chunk finds
 * its tensor's first chunk as LAMB's second pass does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/multi_tensor.h"
#include "../kernels/optim_elem.h"
#include "rn_test.h"

enum { T = 6 };
static const int64_t SIZES[T] = {0, 1, 65535, 65536, 65537, 200000};

static float *filled(int64_t n, uint32_t seed)
{
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)((seed >> 8) * (1.0 / 16777216.0) - 0.5);
    }
    return v;
}

static rn_mt_tensor make(int64_t n, int states, uint32_t seed)
{
    rn_mt_tensor t = {filled(n, seed), filled(n, seed + 1), NULL, NULL, NULL, n};
    float **s[3] = {&t.s0, &t.s1, &t.s2};
    for (int k = 0; k < states; k++) {
        *s[k] = filled(n, seed + 2 + k);
        for (int64_t i = 0; i < n; i++) (*s[k])[i] = fabsf((*s[k])[i]); /* v >= 0 */
    }
    return t;
}

static void release(rn_mt_tensor *t)
{
    free(t->p), free((void *)t->g), free(t->s0), free(t->s1), free(t->s2);
}

static int same(const float *a, const float *b, int64_t n)
{
    return n == 0 || memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

int main(void)
{
    rn_mt_tensor ts[T];
    for (int t = 0; t < T; t++) ts[t] = make(SIZES[t], 0, 10u * (uint32_t)t);
    int64_t count = rn_mt_count_chunks(ts, T);
    CHECK(count == 0 + 1 + 1 + 1 + 2 + 4);
    rn_mt_chunk *plan = malloc((size_t)count * sizeof *plan);
    CHECK(rn_mt_plan_chunks(ts, T, plan, count - 1) == -1);
    CHECK(rn_mt_plan_chunks(ts, T, plan, count) == count);
    /* every element once, (tensor, start) increasing, bounded chunks, first-chunk lookup */
    int once = 1, ordered = 1, bounded = 1, first_ok = 1;
    int64_t first_of[T];
    unsigned char *hits[T];
    for (int t = 0; t < T; t++) {
        first_of[t] = -1;
        hits[t] = calloc((size_t)(SIZES[t] ? SIZES[t] : 1), 1);
    }
    for (int64_t c = 0; c < count; c++) {
        const rn_mt_chunk *ck = &plan[c];
        if (c > 0)
            ordered &= ck->tensor > plan[c - 1].tensor ||
                       (ck->tensor == plan[c - 1].tensor && ck->start > plan[c - 1].start);
        if (first_of[ck->tensor] < 0) first_of[ck->tensor] = c;
        first_ok &= rn_mt_first_chunk(ck, c) == first_of[ck->tensor];
        int64_t end = rn_mt_chunk_end(&ts[ck->tensor], ck);
        bounded &= end > ck->start && end - ck->start <= RN_MT_CHUNK;
        for (int64_t i = ck->start; i < end; i++) hits[ck->tensor][i]++;
    }
    for (int t = 0; t < T; t++) {
        for (int64_t i = 0; i < SIZES[t]; i++) once &= hits[t][i] == 1;
        free(hits[t]);
    }
    CHECK(once && ordered && bounded && first_ok);
    for (int t = 0; t < T; t++) release(&ts[t]);

    /* SGD (Nesterov) and AdamW (AMSGrad) chunk by chunk equal one flat loop per tensor. */
    rn_sgd_coef sgd = {0.05f, 1e-4f, 0.9f, 1.0f, 0, 1};
    rn_adam_coef adam = {0.0f, 0.99999f, 0.9f, 0.1f, 0.999f, 0.001f, 0.0447f, 1e-8f, -0.01f};
    for (int kind = 0; kind < 2; kind++) {
        rn_mt_tensor a[T], b[T];
        int states = kind == 0 ? 1 : 3;
        for (int t = 0; t < T; t++) {
            a[t] = make(SIZES[t], states, 100u + (uint32_t)t);
            b[t] = make(SIZES[t], states, 100u + (uint32_t)t);
        }
        for (int64_t c = 0; c < count; c++) { /* the kernels' blocks, in any order */
            int64_t cc = (c * 7) % count;
            const rn_mt_tensor *t = &a[plan[cc].tensor];
            for (int64_t i = plan[cc].start; i < rn_mt_chunk_end(t, &plan[cc]); i++)
                if (kind == 0) rn_sgd_elem(&sgd, &t->p[i], t->g[i], &t->s0[i]);
                else rn_adam_elem(&adam, &t->p[i], t->g[i], &t->s0[i], &t->s1[i], &t->s2[i]);
        }
        for (int t = 0; t < T; t++)
            for (int64_t i = 0; i < SIZES[t]; i++)
                if (kind == 0) rn_sgd_elem(&sgd, &b[t].p[i], b[t].g[i], &b[t].s0[i]);
                else rn_adam_elem(&adam, &b[t].p[i], b[t].g[i], &b[t].s0[i], &b[t].s1[i],
                                  &b[t].s2[i]);
        int eq = 1;
        for (int t = 0; t < T; t++) {
            eq &= same(a[t].p, b[t].p, SIZES[t]) && same(a[t].s0, b[t].s0, SIZES[t]);
            if (kind == 1)
                eq &= same(a[t].s1, b[t].s1, SIZES[t]) && same(a[t].s2, b[t].s2, SIZES[t]);
        }
        CHECK(eq);
        for (int t = 0; t < T; t++) release(&a[t]), release(&b[t]);
    }
    free(plan);
    return rn_test_report("test_multi_tensor");
}
