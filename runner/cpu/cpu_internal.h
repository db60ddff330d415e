/* Private to runner/cpu: the one place that sees oneDNN types. Never include from runner/nn. */
#ifndef RN_CPU_INTERNAL_H
#define RN_CPU_INTERNAL_H

#include <stddef.h>
#include <stdio.h>
#include <oneapi/dnnl/dnnl.h>

/* The process-wide CPU engine and stream (created once, see cpu_engine.c). Returns 0, or nonzero
 * with one line in err. */
int rn_cpu_engine(dnnl_engine_t *engine, dnnl_stream_t *stream, char *err, size_t errlen);

/* Scratch memory shared by every convolution plan in the process (the scratchpad slot by the
 * matmul plans too), for what a oneDNN call needs only while it runs: the blocked copy of a
 * convolution's output (forward) or output gradient (backward), of its input gradient (backward
 * data) or a non-shared input (backward weights), of its weights (W: reordered, or converted to
 * bf16, by each call that reads them) and weight gradient (DW), and the primitives'
 * scratchpads. Layers run one call at a time on the training thread, so one buffer per slot,
 * sized for the largest plan, serves them all: a network then holds one set of these instead of
 * one per convolution and batch size (for ResNet-8, ~90 MB less at batch 128). A plan reserves
 * its needs when it is built; rn_cpu_arena returns the slot's buffer (grown when a reservation
 * outgrew it: contents are not kept), or NULL when out of memory. Not for data that must live
 * from one call to the next. */
enum { RN_ARENA_OUT, RN_ARENA_IN, RN_ARENA_SCRATCH, RN_ARENA_W, RN_ARENA_DW, RN_ARENA_SLOTS };
void rn_cpu_arena_reserve(int slot, size_t bytes);
void *rn_cpu_arena(int slot);

/* "dnnl_out_of_memory" style names for error messages. */
const char *rn_cpu_status_str(dnnl_status_t s);

/* 0 when s is dnnl_success; otherwise "oneDNN <who>: <what> failed (<status>)" in err and -1.
 * The plans' TRY macros wrap it with their own way out. */
static inline int rn_cpu_check(dnnl_status_t s, const char *who, const char *what, char *err,
                               size_t errlen)
{
    if (s == dnnl_success) return 0;
    snprintf(err, errlen, "oneDNN %s: %s failed (%s)", who, what, rn_cpu_status_str(s));
    return -1;
}

#endif
