/* Shared by the safetensors reader and the state-dict loader; not part of the core's API. */
#ifndef RN_SAFETENSORS_INTERNAL_H
#define RN_SAFETENSORS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Appends to a fixed buffer; silently truncates (the buffer may be NULL). */
typedef struct rn_st_line {
    char *buf;
    size_t cap, len;
} rn_st_line;

void rn_st_line_add(rn_st_line *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "[2, 3]"; "[]" for a scalar. */
const char *rn_st_dims_str(const int64_t *d, int ndim, char *buf, size_t len);

#endif
