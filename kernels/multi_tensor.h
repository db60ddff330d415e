/* Multi-tensor apply, as PyTorch's foreach optimizers and apex do it: one kernel launch updates
 * every tensor of a parameter group. The host lays the group out as a table of chunks of at most
 * RN_MT_CHUNK elements (one CUDA block each, looping over [start, rn_mt_chunk_end)). The
 * planner and the loop are plain C shared with the CPU, so a CPU test runs the same chunk table
 * through the same element functions and compares with the plugins. */
#ifndef RN_MULTI_TENSOR_H
#define RN_MULTI_TENSOR_H

#include <stdint.h>

#include "rn_hd.h"

#define RN_MT_CHUNK 65536

/* One tensor of a group: its values, gradient and up to three state blocks (NULL when absent). */
typedef struct rn_mt_tensor {
    float *p;
    const float *g;
    float *s0, *s1, *s2;
    int64_t n;
} rn_mt_tensor;

typedef struct rn_mt_chunk {
    int32_t tensor;      /* index into the tensor table */
    int64_t start;       /* first element; the chunk ends at min(start + RN_MT_CHUNK, n) */
} rn_mt_chunk;

/* Chunks the group needs (empty tensors have none). */
RN_HD int64_t rn_mt_count_chunks(const rn_mt_tensor *ts, int32_t n)
{
    int64_t c = 0;
    for (int32_t t = 0; t < n; t++) c += (ts[t].n + RN_MT_CHUNK - 1) / RN_MT_CHUNK;
    return c;
}

/* Fills out[0..count) in tensor order; returns the count, or -1 when cap is too small. */
RN_HD int64_t rn_mt_plan_chunks(const rn_mt_tensor *ts, int32_t n, rn_mt_chunk *out, int64_t cap)
{
    int64_t c = 0;
    for (int32_t t = 0; t < n; t++)
        for (int64_t s = 0; s < ts[t].n; s += RN_MT_CHUNK) {
            if (c == cap) return -1;
            out[c].tensor = t;
            out[c].start = s;
            c++;
        }
    return c;
}

/* The element range of a chunk. */
RN_HD int64_t rn_mt_chunk_end(const rn_mt_tensor *t, const rn_mt_chunk *ck)
{
    int64_t end = ck->start + RN_MT_CHUNK;
    return end < t->n ? end : t->n;
}

/* The index of the first chunk of chunk `index`'s tensor: a tensor's chunks are contiguous in
 * the plan, so a block reaches its tensor's partial sums without another table. */
RN_HD int64_t rn_mt_first_chunk(const rn_mt_chunk *ck, int64_t index)
{
    return index - ck->start / RN_MT_CHUNK;
}

#endif
