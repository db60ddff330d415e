/* safetensors files (https://github.com/huggingface/safetensors format): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded
 * with spaces to a multiple of 8, then the raw little-endian data. */
#ifndef RN_SAFETENSORS_H
#define RN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "layer.h"

/* Writes the tensors (F32) atomically. metadata: NULL or n_meta key/value string pairs. */
int rn_safetensors_write(const char *path, const rn_param_ref *tensors, int n,
                         const char *const *metadata, int n_meta, char *err, size_t errlen);

/* --- reading ---------------------------------------------------------------------------------- */

/* The element types a safetensors file may hold (the names are the file's "dtype" strings). */
typedef enum rn_st_dtype {
    RN_ST_F32, RN_ST_F16, RN_ST_BF16, RN_ST_F64, RN_ST_I64, RN_ST_I32, RN_ST_I16, RN_ST_I8,
    RN_ST_U8, RN_ST_BOOL
} rn_st_dtype;

/* "F32", "BF16", ... */
const char *rn_st_dtype_name(rn_st_dtype t);
/* Bytes per element (BOOL: 1). */
size_t rn_st_dtype_size(rn_st_dtype t);

#define RN_ST_MAX_DIMS 8

/* One tensor of an open file. All memory belongs to the rn_safetensors handle. */
typedef struct rn_st_tensor {
    const char *name;
    rn_st_dtype dtype;
    int ndim;                      /* 0 (a scalar) .. RN_ST_MAX_DIMS */
    int64_t shape[RN_ST_MAX_DIMS];
    int64_t numel;                 /* product of shape; 1 for a scalar */
    uint64_t begin, end;           /* data_offsets, relative to the start of the data section */
} rn_st_tensor;

typedef struct rn_safetensors rn_safetensors;

/* Opens and validates a file: the header length fits the file, the header is a JSON object, every
 * tensor has a known dtype, a shape and data_offsets inside the data section whose size is
 * numel * dtype size, no two tensors overlap, and "__metadata__" (optional) maps strings to
 * strings. The data is read on demand. On error writes one line naming the path (and the tensor)
 * and returns nonzero with *out = NULL. Close with rn_safetensors_close. */
int rn_safetensors_open(rn_safetensors **out, const char *path, char *err, size_t errlen);
void rn_safetensors_close(rn_safetensors *st);

/* Tensors in the order of their data (their order in the file). */
int rn_safetensors_count(const rn_safetensors *st);
const rn_st_tensor *rn_safetensors_tensor(const rn_safetensors *st, int i);
/* The tensor called `name`, or NULL. */
const rn_st_tensor *rn_safetensors_find(const rn_safetensors *st, const char *name);
/* A "__metadata__" value, or NULL. */
const char *rn_safetensors_metadata(const rn_safetensors *st, const char *key);

/* Reads tensor `name` into dst (numel floats, which must equal the tensor's element count),
 * converting F16, BF16 and F64 to float (round to nearest) and the integer types and BOOL to
 * their float value. Returns nonzero with one line in err when the tensor is missing, numel
 * differs, or the read fails. */
int rn_safetensors_read_f32(rn_safetensors *st, const char *name, float *dst, int64_t numel,
                            char *err, size_t errlen);
/* Reads the raw little-endian bytes of tensor `name` into dst (len must equal end - begin). */
int rn_safetensors_read_raw(rn_safetensors *st, const char *name, void *dst, size_t len,
                            char *err, size_t errlen);

/* Loads the tensors of the file at `path` into params[0..n) by name (PyTorch state-dict names).
 * A file tensor "<x>.num_batches_tracked" is ignored when the model has no parameter of that name
 * (torchvision's batch-norm counter).
 *   strict = 1: every model parameter must be in the file with exactly its shape, and every file
 *     tensor must be a model parameter; otherwise an error naming the tensors (and both shapes).
 *   strict = 0: loads the parameters whose name and shape match and writes one line into
 *     `report` (may be NULL) saying what was loaded and what was skipped: a shape that differs
 *     (a replaced head), a model parameter not in the file, a file tensor not in the model. It is
 *     still an error when no parameter at all matches (probably the wrong file or name prefix).
 * Nothing is written into params unless the whole load succeeds. */
int rn_safetensors_load_params(const char *path, rn_param_ref *params, int n, int strict,
                               char *report, size_t reportlen, char *err, size_t errlen);

#endif
