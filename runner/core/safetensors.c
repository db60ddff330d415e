#include "errorf.h"
#include "safetensors.h"
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "atomic_file.h"

/* F32 data is copied as it is in memory, in both directions. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

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

/* --- reading ---------------------------------------------------------------------------------- */

/* The reference implementation refuses larger headers too. */
#define ST_MAX_HEADER 100000000u

struct rn_safetensors {
    char *path;
    int fd;
    uint64_t data_start;   /* 8 + header length */
    uint64_t data_size;    /* bytes after the header */
    int n;
    rn_st_tensor *tensors; /* sorted by data offset; names point into `names` */
    int *by_name;          /* indices into tensors, sorted by name */
    char *names;           /* all tensor names, NUL-separated */
    int n_meta;
    char **meta;           /* 2 * n_meta strings: key, value */
};

static const char *const DTYPE_NAMES[] = {"F32", "F16", "BF16", "F64", "I64",
                                          "I32", "I16", "I8",   "U8",  "BOOL"};
static const size_t DTYPE_SIZES[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
#define N_DTYPES ((int)(sizeof DTYPE_NAMES / sizeof DTYPE_NAMES[0]))

const char *rn_st_dtype_name(rn_st_dtype t)
{
    return (int)t >= 0 && (int)t < N_DTYPES ? DTYPE_NAMES[t] : "?";
}

size_t rn_st_dtype_size(rn_st_dtype t)
{
    return (int)t >= 0 && (int)t < N_DTYPES ? DTYPE_SIZES[t] : 0;
}


void rn_st_line_add(rn_st_line *b, const char *fmt, ...)
{
    if (!b->buf || b->cap == 0 || b->len >= b->cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        b->len = b->len + (size_t)w < b->cap ? b->len + (size_t)w : b->cap - 1;
}

const char *rn_st_dims_str(const int64_t *d, int ndim, char *buf, size_t len)
{
    rn_st_line b = {buf, len, 0};
    buf[0] = '\0';
    rn_st_line_add(&b, "[");
    for (int i = 0; i < ndim; i++)
        rn_st_line_add(&b, i ? ", %" PRId64 : "%" PRId64, d[i]);
    rn_st_line_add(&b, "]");
    return buf;
}

static int pread_all(int fd, void *dst, size_t len, uint64_t at, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t r = pread(fd, (char *)dst + *got, len - *got, (off_t)(at + *got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* Reads a JSON integer >= 0. */
static int json_nonneg(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Fills *t from one header entry; on error writes the message (path and tensor named). */
static int parse_entry(const char *path, const char *name, json_t *v, uint64_t data_size,
                       rn_st_tensor *t, char *err, size_t errlen)
{
    char s1[160];
    if (!json_is_object(v)) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": not an object with dtype, shape and data_offsets",
                path, name);
        return -1;
    }
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
    if (missing) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": no %s", path, name, missing);
        return -1;
    }
    if (!json_is_string(dtype)) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": dtype is not a string", path, name);
        return -1;
    }
    int dt = -1;
    for (int k = 0; k < N_DTYPES; k++)
        if (strcmp(json_string_value(dtype), DTYPE_NAMES[k]) == 0)
            dt = k;
    if (dt < 0) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": unknown dtype \"%s\" (known: F32, F16, BF16, F64, "
                "I64, I32, I16, I8, U8, BOOL)", path, name, json_string_value(dtype));
        return -1;
    }
    t->dtype = (rn_st_dtype)dt;
    if (!json_is_array(shape)) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": shape is not a list", path, name);
        return -1;
    }
    if (json_array_size(shape) > RN_ST_MAX_DIMS) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": shape has %zu dimensions (at most %d)", path,
                name, json_array_size(shape), RN_ST_MAX_DIMS);
        return -1;
    }
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    int too_big = 0;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t dim;
        if (json_nonneg(json_array_get(shape, (size_t)d), &dim)) {
            rn_errorf(err, errlen, "%s: tensor \"%s\": shape is not a list of non-negative integers",
                    path, name);
            return -1;
        }
        t->shape[d] = (int64_t)dim;
        if (dim && numel > (uint64_t)INT64_MAX / dim)
            too_big = 1;
        else
            numel *= dim;
    }
    uint64_t begin, end;
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        json_nonneg(json_array_get(offs, 0), &begin) ||
        json_nonneg(json_array_get(offs, 1), &end)) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": data_offsets is not a pair [begin, end] of "
                "non-negative integers", path, name);
        return -1;
    }
    if (end < begin) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] end "
                "before begin", path, name, begin, end);
        return -1;
    }
    if (end > data_size) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] end past "
                "the data (%" PRIu64 " bytes)", path, name, begin, end, data_size);
        return -1;
    }
    size_t esize = DTYPE_SIZES[dt];
    if (too_big || numel > UINT64_MAX / esize) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": shape %s has too many elements", path, name,
                rn_st_dims_str(t->shape, t->ndim, s1, sizeof s1));
        return -1;
    }
    if (numel * esize != end - begin) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] hold %"
                PRIu64 " bytes, but shape %s of %s needs %" PRIu64, path, name, begin, end,
                end - begin, rn_st_dims_str(t->shape, t->ndim, s1, sizeof s1), DTYPE_NAMES[dt],
                numel * esize);
        return -1;
    }
    t->numel = (int64_t)numel;
    t->begin = begin;
    t->end = end;
    return 0;
}

static int parse_metadata(rn_safetensors *st, json_t *meta, char *err, size_t errlen)
{
    if (!json_is_object(meta)) {
        rn_errorf(err, errlen, "%s: __metadata__ is not an object of strings", st->path);
        return -1;
    }
    st->meta = calloc(2 * json_object_size(meta) + 1, sizeof *st->meta);
    if (!st->meta) {
        rn_errorf(err, errlen, "%s: out of memory", st->path);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v)) {
            rn_errorf(err, errlen, "%s: __metadata__ \"%s\" is not a string", st->path, key);
            return -1;
        }
        st->meta[2 * st->n_meta] = strdup(key);
        st->meta[2 * st->n_meta + 1] = strdup(json_string_value(v));
        st->n_meta++;
        if (!st->meta[2 * st->n_meta - 2] || !st->meta[2 * st->n_meta - 1]) {
            rn_errorf(err, errlen, "%s: out of memory", st->path);
            return -1;
        }
    }
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const rn_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* qsort has no context argument: sort pointers to the tensors by name. */
static int cmp_name_ptr(const void *a, const void *b)
{
    const rn_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Parses the header text into st->tensors / st->meta. */
static int parse_header(rn_safetensors *st, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rn_errorf(err, errlen, "%s: header is not valid JSON (line %d column %d: %s)", st->path,
                je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        rn_errorf(err, errlen, "%s: header is not a JSON object", st->path);
        goto out;
    }
    size_t cap = json_object_size(root), names_len = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) names_len += strlen(key) + 1;
    st->tensors = calloc(cap + 1, sizeof *st->tensors);
    st->names = malloc(names_len + 1);
    if (!st->tensors || !st->names) {
        rn_errorf(err, errlen, "%s: out of memory for a header of %zu entries", st->path, cap);
        goto out;
    }
    char *np = st->names;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (parse_metadata(st, v, err, errlen))
                goto out;
            continue;
        }
        rn_st_tensor *t = &st->tensors[st->n];
        if (parse_entry(st->path, key, v, st->data_size, t, err, errlen))
            goto out;
        size_t kl = strlen(key) + 1;
        memcpy(np, key, kl);
        t->name = np;
        np += kl;
        st->n++;
    }
    qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_offset);
    /* Empty tensors occupy no bytes and cannot overlap anything. */
    const rn_st_tensor *prev = NULL;
    for (int i = 0; i < st->n; i++) {
        const rn_st_tensor *t = &st->tensors[i];
        if (t->begin == t->end)
            continue;
        if (prev && t->begin < prev->end) {
            rn_errorf(err, errlen, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] "
                    "overlap tensor \"%s\" [%" PRIu64 ", %" PRIu64 "]", st->path, t->name,
                    t->begin, t->end, prev->name, prev->begin, prev->end);
            goto out;
        }
        prev = t;
    }
    const rn_st_tensor **order = malloc(((size_t)st->n + 1) * sizeof *order);
    st->by_name = malloc(((size_t)st->n + 1) * sizeof *st->by_name);
    if (!order || !st->by_name) {
        free(order);
        rn_errorf(err, errlen, "%s: out of memory", st->path);
        goto out;
    }
    for (int i = 0; i < st->n; i++)
        order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n, sizeof *order, cmp_name_ptr);
    for (int i = 0; i < st->n; i++)
        st->by_name[i] = (int)(order[i] - st->tensors);
    free(order);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int rn_safetensors_open(rn_safetensors **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    rn_safetensors *st = calloc(1, sizeof *st);
    char *text = NULL;
    if (!st || !(st->path = strdup(path))) {
        free(st);
        rn_errorf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->fd < 0) {
        rn_errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(st->fd, &sb) != 0) {
        rn_errorf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        rn_errorf(err, errlen, "%s: cannot read: %s", path, strerror(EISDIR));
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char lenbytes[8];
    size_t got;
    if (size < 8 || pread_all(st->fd, lenbytes, 8, 0, &got) || got < 8) {
        rn_errorf(err, errlen, "%s: %" PRIu64 " bytes, too short for a safetensors file (it starts "
                "with an 8-byte header length)", path, size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)lenbytes[i] << (8 * i);
    if (hlen > size - 8) {
        rn_errorf(err, errlen, "%s: header length %" PRIu64 " is larger than the file (%" PRIu64
                " bytes)", path, hlen, size);
        goto fail;
    }
    if (hlen > ST_MAX_HEADER) {
        rn_errorf(err, errlen, "%s: header length %" PRIu64 " is over the %u bytes safetensors "
                "allows", path, hlen, ST_MAX_HEADER);
        goto fail;
    }
    text = malloc(hlen + 1);
    if (!text) {
        rn_errorf(err, errlen, "%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
        goto fail;
    }
    if (pread_all(st->fd, text, hlen, 8, &got) || got < hlen) {
        rn_errorf(err, errlen, "%s: cannot read the header: %s", path,
                got < hlen ? "file shrank while reading" : strerror(errno));
        goto fail;
    }
    st->data_start = 8 + hlen;
    st->data_size = size - 8 - hlen;
    if (parse_header(st, text, hlen, err, errlen))
        goto fail;
    free(text);
    *out = st;
    return 0;
fail:
    free(text);
    rn_safetensors_close(st);
    return -1;
}

void rn_safetensors_close(rn_safetensors *st)
{
    if (!st)
        return;
    if (st->fd >= 0)
        close(st->fd);
    for (int i = 0; st->meta && i < 2 * st->n_meta; i++)
        free(st->meta[i]);
    free(st->meta);
    free(st->tensors);
    free(st->by_name);
    free(st->names);
    free(st->path);
    free(st);
}

int rn_safetensors_count(const rn_safetensors *st) { return st->n; }

const rn_st_tensor *rn_safetensors_tensor(const rn_safetensors *st, int i)
{
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const rn_st_tensor *rn_safetensors_find(const rn_safetensors *st, const char *name)
{
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const rn_st_tensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rn_safetensors_metadata(const rn_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0)
            return st->meta[2 * i + 1];
    return NULL;
}

static int read_tensor(rn_safetensors *st, const rn_st_tensor *t, void *dst, char *err,
                       size_t errlen)
{
    size_t len = (size_t)(t->end - t->begin), got;
    if (pread_all(st->fd, dst, len, st->data_start + t->begin, &got)) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": cannot read: %s", st->path, t->name,
                strerror(errno));
        return -1;
    }
    if (got < len) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": the file ends after %zu of its %zu bytes",
                st->path, t->name, got, len);
        return -1;
    }
    return 0;
}

static const rn_st_tensor *find_or_err(rn_safetensors *st, const char *name, char *err,
                                       size_t errlen)
{
    const rn_st_tensor *t = rn_safetensors_find(st, name);
    if (!t)
        rn_errorf(err, errlen, "%s: no tensor \"%s\"", st->path, name);
    return t;
}

int rn_safetensors_read_raw(rn_safetensors *st, const char *name, void *dst, size_t len,
                            char *err, size_t errlen)
{
    const rn_st_tensor *t = find_or_err(st, name, err, errlen);
    if (!t)
        return -1;
    if (len != t->end - t->begin) {
        rn_errorf(err, errlen, "%s: tensor \"%s\" has %" PRIu64 " bytes, the destination %zu",
                st->path, name, t->end - t->begin, len);
        return -1;
    }
    return read_tensor(st, t, dst, err, errlen);
}

/* IEEE half to float, exactly (every half is a float). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        float f = (float)man * 0x1p-24f; /* zero or subnormal */
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint64_t le_bytes(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static float to_float(rn_st_dtype dt, const unsigned char *p)
{
    uint64_t v = le_bytes(p, DTYPE_SIZES[dt]);
    switch (dt) {
    case RN_ST_F16: return half_to_float((uint16_t)v);
    case RN_ST_BF16: {
        uint32_t bits = (uint32_t)v << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    case RN_ST_F64: {
        double d;
        memcpy(&d, &v, sizeof d);
        return (float)d;
    }
    case RN_ST_I64: return (float)(int64_t)v;
    case RN_ST_I32: return (float)(int32_t)(uint32_t)v;
    case RN_ST_I16: return (float)(int16_t)(uint16_t)v;
    case RN_ST_I8: return (float)(int8_t)(uint8_t)v;
    case RN_ST_U8: return (float)(uint8_t)v;
    case RN_ST_BOOL: return v ? 1.0f : 0.0f;
    case RN_ST_F32: break;
    }
    uint32_t bits = (uint32_t)v;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int read_f32(rn_safetensors *st, const rn_st_tensor *t, float *dst, char *err,
                    size_t errlen)
{
    if (t->dtype == RN_ST_F32)
        return read_tensor(st, t, dst, err, errlen);
    size_t len = (size_t)(t->end - t->begin), esize = DTYPE_SIZES[t->dtype];
    unsigned char *raw = malloc(len ? len : 1);
    if (!raw) {
        rn_errorf(err, errlen, "%s: tensor \"%s\": out of memory for %zu bytes", st->path, t->name,
                len);
        return -1;
    }
    int rc = read_tensor(st, t, raw, err, errlen);
    for (int64_t i = 0; rc == 0 && i < t->numel; i++)
        dst[i] = to_float(t->dtype, raw + (size_t)i * esize);
    free(raw);
    return rc;
}

int rn_safetensors_read_f32(rn_safetensors *st, const char *name, float *dst, int64_t numel,
                            char *err, size_t errlen)
{
    const rn_st_tensor *t = find_or_err(st, name, err, errlen);
    if (!t)
        return -1;
    if (numel != t->numel) {
        rn_errorf(err, errlen, "%s: tensor \"%s\" has %" PRId64 " elements, the destination %" PRId64,
                st->path, name, t->numel, numel);
        return -1;
    }
    return read_f32(st, t, dst, err, errlen);
}
