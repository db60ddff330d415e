/* An optimizer step (rn_update, from a plugin's device_update) applied on the CPU the way
 * kernels/optim_kernels.cu applies it on the GPU: the group's multi-tensor chunk plan, each
 * chunk's elements through kernels/optim_elem.h, LAMB in two passes with per-chunk norm sums
 * added in chunk order. For tests: test_device_update and the CPU stand-in backend
 * (tests/fake_cuda). ts[k].s0..s2 must already be the state blocks u->state names. Returns 0, or
 * -1 when out of memory or the kind is unknown. */
#ifndef RN_TESTS_UPDATE_WALK_H
#define RN_TESTS_UPDATE_WALK_H

#include <math.h>
#include <stdlib.h>

#include "../kernels/multi_tensor.h"
#include "../kernels/optim_elem.h"

static int rn_update_walk(const rn_update *u, rn_mt_tensor *ts, int32_t n)
{
    int64_t n_chunks = rn_mt_count_chunks(ts, n);
    rn_mt_chunk *chunks = malloc((size_t)(n_chunks + 1) * sizeof *chunks);
    double *partial = calloc((size_t)(2 * n_chunks + 1), sizeof *partial);
    if (!chunks || !partial || rn_mt_plan_chunks(ts, n, chunks, n_chunks) != n_chunks) {
        free(chunks);
        free(partial);
        return -1;
    }
    int rc = 0;
    for (int64_t b = 0; b < n_chunks && rc == 0; b++) { /* one CUDA block per chunk */
        const rn_mt_tensor t = ts[chunks[b].tensor];
        const int64_t end = rn_mt_chunk_end(&t, &chunks[b]);
        for (int64_t i = chunks[b].start; i < end; i++) switch (u->kind) {
            case RN_UPDATE_SGD: rn_sgd_elem(&u->c.sgd, &t.p[i], t.g[i], t.s0 ? &t.s0[i] : NULL); break;
            case RN_UPDATE_ADAM:
                rn_adam_elem(&u->c.adam, &t.p[i], t.g[i], &t.s0[i], &t.s1[i], t.s2 ? &t.s2[i] : NULL);
                break;
            case RN_UPDATE_RMSPROP:
                rn_rmsprop_elem(&u->c.rmsprop, &t.p[i], t.g[i], &t.s0[i], t.s1 ? &t.s1[i] : NULL,
                                t.s2 ? &t.s2[i] : NULL);
                break;
            case RN_UPDATE_LION: rn_lion_elem(&u->c.lion, &t.p[i], t.g[i], &t.s0[i]); break;
            case RN_UPDATE_LAMB: { /* pass 1: moments and the chunk's norm sums */
                rn_lamb_moments(&u->c.lamb, t.g[i], &t.s0[i], &t.s1[i]);
                float up = rn_lamb_update(&u->c.lamb, t.s0[i], t.s1[i], t.p[i]);
                partial[2 * b] += (double)t.p[i] * t.p[i];
                partial[2 * b + 1] += (double)up * up;
                break;
            }
            default: rc = -1; i = end; break;
            }
    }
    if (rc == 0 && u->kind == RN_UPDATE_LAMB)
        for (int64_t b = 0; b < n_chunks; b++) { /* pass 2 */
            const rn_mt_tensor t = ts[chunks[b].tensor];
            float ratio = 1.0f;
            if (u->lamb_adapt) {
                int64_t first = rn_mt_first_chunk(&chunks[b], b);
                int64_t count = (t.n + RN_MT_CHUNK - 1) / RN_MT_CHUNK;
                double sp = 0, su = 0;
                for (int64_t k = 0; k < count; k++) {
                    sp += partial[2 * (first + k)];
                    su += partial[2 * (first + k) + 1];
                }
                float w = (float)sqrt(sp), nu = (float)sqrt(su);
                ratio = w > 0 && nu > 0 ? w / nu : 1.0f;
            }
            const int64_t end = rn_mt_chunk_end(&t, &chunks[b]);
            for (int64_t i = chunks[b].start; i < end; i++) {
                float p = t.p[i];
                float up = rn_lamb_update(&u->c.lamb, t.s0[i], t.s1[i], p) * ratio;
                t.p[i] = rn_fma_d(u->c.lamb.neg_lr, up, p);
            }
        }
    free(chunks);
    free(partial);
    return rc;
}

#endif
