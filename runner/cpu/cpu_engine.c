/* The oneDNN CPU engine and stream.
 *
 * Why a process-wide object: the layer constructors (runner/nn/layer.h) take no backend context,
 * and a oneDNN CPU engine is immutable once created (oneDNN's own primitive cache is process-wide
 * anyway), so one engine created behind pthread_once holds no mutable state of ours. The stream is
 * in-order and used only from the training thread. Both live until the process exits; they are
 * reachable from these statics, so LeakSanitizer does not report them. */
#include "cpu_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine_cpu;
static dnnl_stream_t stream_cpu;
static dnnl_status_t engine_status = dnnl_success;

static void engine_create(void)
{
    engine_status = dnnl_engine_create(&engine_cpu, dnnl_cpu, 0);
    if (engine_status == dnnl_success)
        engine_status = dnnl_stream_create(&stream_cpu, engine_cpu, dnnl_stream_default_flags);
}

int rn_cpu_engine(dnnl_engine_t *engine, dnnl_stream_t *stream, char *err, size_t errlen)
{
    pthread_once(&engine_once, engine_create);
    if (engine_status != dnnl_success) {
        snprintf(err, errlen, "oneDNN: cannot create the CPU engine/stream (%s)",
                 rn_cpu_status_str(engine_status));
        return -1;
    }
    *engine = engine_cpu;
    *stream = stream_cpu;
    return 0;
}

/* The arena's slots (cpu_internal.h): like the engine, process-wide and reachable until exit.
 * Reserved and used from the training thread only. */
static struct {
    void *buf;
    size_t have, want;
} arena[RN_ARENA_SLOTS];

void rn_cpu_arena_reserve(int slot, size_t bytes)
{
    if (bytes > arena[slot].want) arena[slot].want = bytes;
}

void *rn_cpu_arena(int slot)
{
    if (arena[slot].have < arena[slot].want) {
        free(arena[slot].buf);
        size_t bytes = (arena[slot].want + 63) / 64 * 64;
        arena[slot].buf = aligned_alloc(64, bytes);
        arena[slot].have = arena[slot].buf ? arena[slot].want : 0;
    }
    return arena[slot].buf;
}

const char *rn_cpu_status_str(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}
