/* safetensors files (https://github.com/huggingface/safetensors format): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded
 * with spaces to a multiple of 8, then the raw little-endian data. */
#ifndef RN_SAFETENSORS_H
#define RN_SAFETENSORS_H

#include "layer.h"

/* Writes the tensors (F32) atomically. metadata: NULL or n_meta key/value string pairs. */
int rn_safetensors_write(const char *path, const rn_param_ref *tensors, int n,
                         const char *const *metadata, int n_meta, char *err, size_t errlen);

#endif
