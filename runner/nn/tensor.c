/* Dense float32 tensors (see tensor.h). */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t rn_shape_numel(const rn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->d[i];
    return n;
}

rn_shape rn_shape_make(int ndim, const int64_t *d)
{
    rn_shape s = {0};
    s.ndim = ndim < 0 ? 0 : ndim > RN_MAX_DIMS ? RN_MAX_DIMS : ndim;
    for (int i = 0; i < s.ndim; i++) s.d[i] = d[i];
    return s;
}

const char *rn_shape_str(const rn_shape *s, char *buf, size_t len)
{
    size_t at = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    if (s->ndim == 0) snprintf(buf, len, "scalar");
    for (int i = 0; i < s->ndim && at < len; i++) {
        int w = snprintf(buf + at, len - at, i ? "x%lld" : "%lld", (long long)s->d[i]);
        if (w < 0) break;
        at += (size_t)w;
    }
    return buf;
}

int rn_shape_equal(const rn_shape *a, const rn_shape *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i]) return 0;
    return 1;
}

float *rn_falloc(int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float) - 64) return NULL;
    size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void rn_ffree(float *p) { free(p); }

int rn_tensor_alloc(rn_tensor *t, rn_shape shape)
{
    t->shape = shape;
    t->borrowed = 0;
    t->data = rn_falloc(rn_shape_numel(&shape));
    return t->data ? 0 : -1;
}

void rn_tensor_free(rn_tensor *t)
{
    if (!t) return;
    if (!t->borrowed) rn_ffree(t->data);
    t->data = NULL;
}
