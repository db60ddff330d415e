/* Dense float32 tensors, NCHW, on the CPU. */
#ifndef RN_TENSOR_H
#define RN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define RN_MAX_DIMS 4

typedef struct rn_shape {
    int ndim;
    int64_t d[RN_MAX_DIMS]; /* d[0] is the batch for activations */
} rn_shape;

typedef struct rn_tensor {
    rn_shape shape;
    float *data;  /* numel floats, 64-byte aligned; owned by the tensor unless `borrowed` */
    int borrowed; /* 1 when data points into someone else's buffer (an arena) */
} rn_tensor;

int64_t rn_shape_numel(const rn_shape *s);
rn_shape rn_shape_make(int ndim, const int64_t *d);
/* "1x28x28" style, for error messages. */
const char *rn_shape_str(const rn_shape *s, char *buf, size_t len);
int rn_shape_equal(const rn_shape *a, const rn_shape *b);

/* Allocates zeroed, 64-byte aligned storage; returns 0 on success. */
int rn_tensor_alloc(rn_tensor *t, rn_shape shape);
void rn_tensor_free(rn_tensor *t);
static inline int64_t rn_tensor_numel(const rn_tensor *t) { return rn_shape_numel(&t->shape); }

/* Aligned float allocation (zeroed) and free, used by tensors and arenas. */
float *rn_falloc(int64_t n);
void rn_ffree(float *p);

#endif
