/* Private to runner/cpu: the one place that sees oneDNN types. Never include from runner/nn. */
#ifndef RN_CPU_INTERNAL_H
#define RN_CPU_INTERNAL_H

#include <stddef.h>
#include <oneapi/dnnl/dnnl.h>

/* The process-wide CPU engine and stream (created once, see cpu_engine.c). Returns 0, or nonzero
 * with one line in err. */
int rn_cpu_engine(dnnl_engine_t *engine, dnnl_stream_t *stream, char *err, size_t errlen);

/* "dnnl_out_of_memory" style names for error messages. */
const char *rn_cpu_status_str(dnnl_status_t s);

#endif
