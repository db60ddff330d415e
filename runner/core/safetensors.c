#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "atomic_file.h"

int rn_safetensors_write(const char *path, const rn_param_ref *tensors, int n,
                         const char *const *metadata, int n_meta, char *err, size_t errlen)
{
    json_t *hdr = json_object();
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const rn_tensor *t = tensors[i].value;
        json_t *shape = json_array();
        for (int d = 0; d < t->shape.ndim; d++) json_array_append_new(shape, json_integer(t->shape.d[d]));
        size_t bytes = (size_t)rn_tensor_numel(t) * sizeof(float);
        json_object_set_new(hdr, tensors[i].name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                                      "data_offsets", (json_int_t)offset,
                                      (json_int_t)(offset + bytes)));
        offset += bytes;
    }
    if (n_meta) {
        json_t *meta = json_object();
        for (int i = 0; i < n_meta; i++)
            json_object_set_new(meta, metadata[2 * i], json_string(metadata[2 * i + 1]));
        json_object_set_new(hdr, "__metadata__", meta);
    }
    char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    if (!text) {
        snprintf(err, errlen, "%s: cannot encode the header", path);
        return -1;
    }
    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
    unsigned char lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    rn_atomic_file a;
    if (rn_atomic_open(&a, path, err, errlen)) {
        free(text);
        return -1;
    }
    int ok = fwrite(lenbytes, 1, 8, a.f) == 8 && fwrite(text, 1, len, a.f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', a.f) != EOF;
    free(text);
    /* Little-endian hosts only (x86_64, aarch64): the floats go out as they are in memory. */
    for (int i = 0; ok && i < n; i++) {
        size_t count = (size_t)rn_tensor_numel(tensors[i].value);
        ok = fwrite(tensors[i].value->data, sizeof(float), count, a.f) == count;
    }
    if (!ok) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        rn_atomic_abort(&a);
        return -1;
    }
    return rn_atomic_commit(&a, err, errlen);
}
