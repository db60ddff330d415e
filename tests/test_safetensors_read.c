/* The safetensors reader: a round trip with the writer, files written from PyTorch (every dtype,
 * compared bit for bit with the values PyTorch printed), one clear line for each kind of corrupt
 * file, and loading a model's parameters by name, strict and not. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rn_test.h"
#include "safetensors.h"

static char tmpdir[256];
static char created[64][320];
static int n_created;

static const char *tmp_path(const char *name)
{
    char *p = created[n_created++];
    snprintf(p, sizeof created[0], "%s/%s", tmpdir, name);
    return p;
}

static const char *fixture(const char *name)
{
    static char buf[4][512];
    static int k;
    const char *dir = getenv("RN_FIXTURES");
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/safetensors/%s", dir ? dir : "tests/fixtures", name);
    return p;
}

/* 8-byte length (hlen_override if nonzero), the header text, then data_len bytes 0, 1, 2, ... */
static void write_raw(const char *path, const char *header, size_t data_len, uint64_t hlen_override)
{
    FILE *f = fopen(path, "wb");
    uint64_t hlen = hlen_override ? hlen_override : strlen(header);
    unsigned char lb[8];
    for (int i = 0; i < 8; i++)
        lb[i] = (unsigned char)(hlen >> (8 * i));
    size_t hl = strlen(header);
    int ok = f && fwrite(lb, 1, 8, f) == 8 && fwrite(header, 1, hl, f) == hl;
    for (size_t i = 0; ok && i < data_len; i++)
        ok = fputc((int)(i & 0xff), f) != EOF;
    if (!f || !ok || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

/* One line, names the path, contains each needle, no handle returned. */
static void expect_open_error(const char *path, const char *n1, const char *n2)
{
    rn_safetensors *st = (rn_safetensors *)&st;
    char err[512] = "";
    CHECK(rn_safetensors_open(&st, path, err, sizeof err) != 0);
    CHECK(st == NULL);
    CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    const char *needles[3] = {path, n1, n2};
    for (int i = 0; i < 3; i++)
        if (needles[i] && !strstr(err, needles[i])) {
            CHECK(strstr(err, needles[i]) != NULL);
            fprintf(stderr, "  message: \"%s\"\n  lacks:   \"%s\"\n", err, needles[i]);
        }
    printf("  error ok: %s\n", err);
}

static int same_float(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0; /* tells -0 from 0 */
}

static void test_round_trip(void)
{
    rn_tensor a = {0}, b = {0}, c = {0};
    int64_t da[2] = {2, 3}, db[1] = {1}, dc[4] = {2, 1, 2, 2};
    CHECK(rn_tensor_alloc(&a, rn_shape_make(2, da)) == 0);
    CHECK(rn_tensor_alloc(&b, rn_shape_make(1, db)) == 0);
    CHECK(rn_tensor_alloc(&c, rn_shape_make(4, dc)) == 0);
    for (int i = 0; i < 6; i++) a.data[i] = 0.5f * (float)i - 1.0f;
    b.data[0] = -0.0f;
    for (int i = 0; i < 8; i++) c.data[i] = 1.0f / (float)(i + 1);
    rn_param_ref refs[3] = {{.name = "fc.weight", .value = &a}, {.name = "fc.bias", .value = &b},
                            {.name = "conv1.weight", .value = &c}};
    const char *path = tmp_path("round.safetensors");
    const char *meta[] = {"format", "pt", "runner", "0.1"};
    char err[512] = "";
    CHECK(rn_safetensors_write(path, refs, 3, meta, 2, err, sizeof err) == 0);

    rn_safetensors *st = NULL;
    int rc = rn_safetensors_open(&st, path, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(rn_safetensors_count(st) == 3);
    for (int i = 0; i < 3; i++) {
        const rn_st_tensor *t = rn_safetensors_tensor(st, i);
        CHECK(t && strcmp(t->name, refs[i].name) == 0 && t->dtype == RN_ST_F32);
        CHECK(t && t->ndim == refs[i].value->shape.ndim);
        for (int d = 0; t && d < t->ndim; d++) CHECK(t->shape[d] == refs[i].value->shape.d[d]);
        CHECK(t && t->numel == rn_tensor_numel(refs[i].value));
        CHECK(t && rn_safetensors_find(st, refs[i].name) == t);
    }
    CHECK(rn_safetensors_tensor(st, 3) == NULL && rn_safetensors_tensor(st, -1) == NULL);
    CHECK(rn_safetensors_find(st, "fc") == NULL && rn_safetensors_find(st, "") == NULL);
    CHECK(strcmp(rn_st_dtype_name(RN_ST_BF16), "BF16") == 0 && rn_st_dtype_size(RN_ST_I64) == 8);
    const char *fmt = rn_safetensors_metadata(st, "format");
    CHECK(fmt && strcmp(fmt, "pt") == 0);
    const char *ver = rn_safetensors_metadata(st, "runner");
    CHECK(ver && strcmp(ver, "0.1") == 0);
    CHECK(rn_safetensors_metadata(st, "nope") == NULL);

    float back[8];
    for (int i = 0; i < 3; i++) {
        int64_t numel = rn_tensor_numel(refs[i].value);
        CHECK(rn_safetensors_read_f32(st, refs[i].name, back, numel, err, sizeof err) == 0);
        for (int64_t k = 0; k < numel; k++) CHECK(same_float(back[k], refs[i].value->data[k]));
    }
    unsigned char raw[4];
    CHECK(rn_safetensors_read_raw(st, "fc.bias", raw, 4, err, sizeof err) == 0);
    CHECK(raw[3] == 0x80 && raw[0] == 0 && raw[1] == 0 && raw[2] == 0); /* -0.0f, little-endian */

    CHECK(rn_safetensors_read_f32(st, "fc.weight", back, 5, err, sizeof err) != 0);
    CHECK(strstr(err, "\"fc.weight\" has 6 elements, the destination 5") != NULL);
    CHECK(rn_safetensors_read_f32(st, "fc.w", back, 6, err, sizeof err) != 0);
    CHECK(strstr(err, path) && strstr(err, "no tensor \"fc.w\""));
    CHECK(rn_safetensors_read_raw(st, "fc.bias", raw, 3, err, sizeof err) != 0);
    rn_safetensors_close(st);

    /* An empty file list round-trips too. */
    const char *empty = tmp_path("empty.safetensors");
    CHECK(rn_safetensors_write(empty, refs, 0, NULL, 0, err, sizeof err) == 0);
    CHECK(rn_safetensors_open(&st, empty, err, sizeof err) == 0);
    if (st) {
        CHECK(rn_safetensors_count(st) == 0 && rn_safetensors_find(st, "x") == NULL);
        rn_safetensors_close(st);
    }
    rn_tensor_free(&a);
    rn_tensor_free(&b);
    rn_tensor_free(&c);
}

/* The reference values the fixture script printed (see its docstring). */
typedef struct ref_tensor {
    char name[128], dtype[8];
    int ndim;
    int64_t shape[8], numel;
    float *v;
} ref_tensor;

static int read_reference(const char *path, ref_tensor *r, int max)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int n = 0;
    while (n < max && fscanf(f, "%127s %7s %d", r[n].name, r[n].dtype, &r[n].ndim) == 3) {
        long long x;
        for (int d = 0; d < r[n].ndim && d < 8; d++) {
            if (fscanf(f, "%lld", &x) != 1) goto bad;
            r[n].shape[d] = x;
        }
        if (fscanf(f, "%lld", &x) != 1) goto bad;
        r[n].numel = x;
        r[n].v = malloc((size_t)(x ? x : 1) * sizeof(float));
        char tok[64];
        for (long long i = 0; i < x; i++) {
            if (fscanf(f, "%63s", tok) != 1) goto bad;
            r[n].v[i] = strtof(tok, NULL); /* strtof: "%.9g" text back to the same float */
        }
        n++;
    }
    fclose(f);
    return n;
bad:
    fclose(f);
    fprintf(stderr, "%s: malformed reference line %d\n", path, n + 1);
    return -1;
}

static void free_reference(ref_tensor *r, int n)
{
    for (int i = 0; i < n; i++) free(r[i].v);
}

static void test_pytorch_file(const char *base)
{
    char st_name[64], txt_name[64];
    snprintf(st_name, sizeof st_name, "%s.safetensors", base);
    snprintf(txt_name, sizeof txt_name, "%s.txt", base);
    ref_tensor ref[32];
    int n = read_reference(fixture(txt_name), ref, 32);
    CHECK(n > 0);
    if (n <= 0)
        return;
    rn_safetensors *st = NULL;
    char err[512] = "";
    int rc = rn_safetensors_open(&st, fixture(st_name), err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        free_reference(ref, n);
        return;
    }
    CHECK(rn_safetensors_count(st) == n);
    const char *fmt = rn_safetensors_metadata(st, "format");
    CHECK(fmt && strcmp(fmt, "pt") == 0);
    int values_ok = 1;
    for (int i = 0; i < n && i < rn_safetensors_count(st); i++) {
        const rn_st_tensor *t = rn_safetensors_tensor(st, i);
        CHECK(strcmp(t->name, ref[i].name) == 0);
        CHECK(strcmp(rn_st_dtype_name(t->dtype), ref[i].dtype) == 0);
        CHECK(t->ndim == ref[i].ndim && t->numel == ref[i].numel);
        for (int d = 0; d < t->ndim; d++) CHECK(t->shape[d] == ref[i].shape[d]);
        float *got = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        CHECK(rn_safetensors_read_f32(st, ref[i].name, got, ref[i].numel, err, sizeof err) == 0);
        for (int64_t k = 0; k < t->numel; k++) {
            if (!same_float(got[k], ref[i].v[k])) {
                fprintf(stderr, "  %s %s[%lld]: read %.9g, PyTorch %.9g\n", base, t->name,
                        (long long)k, got[k], ref[i].v[k]);
                values_ok = 0;
            }
        }
        free(got);
    }
    CHECK(values_ok);
    printf("  %s: %d tensors match PyTorch bit for bit\n", st_name, n);
    rn_safetensors_close(st);
    free_reference(ref, n);
}

/* A model's parameters for tiny_net, filled with a sentinel so a load is visible. */
typedef struct model {
    rn_tensor t[8];
    rn_param_ref p[8];
    int n;
} model;

static void model_add(model *m, const char *name, int ndim, const int64_t *d)
{
    rn_tensor *t = &m->t[m->n];
    CHECK(rn_tensor_alloc(t, rn_shape_make(ndim, d)) == 0);
    for (int64_t i = 0; i < rn_tensor_numel(t); i++) t->data[i] = 42.0f;
    m->p[m->n] = (rn_param_ref){.name = (char *)name, .value = t};
    m->n++;
}

/* tiny_net's parameters, the head named fc_name_w/fc_name_b with fc_out classes. */
static void model_tiny(model *m, int64_t fc_out, const char *fc_name_w, const char *fc_name_b)
{
    memset(m, 0, sizeof *m);
    model_add(m, "conv1.weight", 4, (const int64_t[]){4, 3, 3, 3});
    model_add(m, "bn1.weight", 1, (const int64_t[]){4});
    model_add(m, "bn1.bias", 1, (const int64_t[]){4});
    model_add(m, "bn1.running_mean", 1, (const int64_t[]){4});
    model_add(m, "bn1.running_var", 1, (const int64_t[]){4});
    model_add(m, fc_name_w, 2, (const int64_t[]){fc_out, 4});
    model_add(m, fc_name_b, 1, (const int64_t[]){fc_out});
}

static void model_free(model *m)
{
    for (int i = 0; i < m->n; i++) rn_tensor_free(&m->t[i]);
}

static const ref_tensor *ref_find(const ref_tensor *r, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0) return &r[i];
    return NULL;
}

/* Every parameter either holds the file's values (loaded) or is untouched (42). */
static void check_model(const model *m, const ref_tensor *ref, int nref, const char *const *loaded,
                        int n_loaded)
{
    for (int i = 0; i < m->n; i++) {
        int want_loaded = 0;
        for (int k = 0; k < n_loaded; k++) want_loaded |= strcmp(m->p[i].name, loaded[k]) == 0;
        const ref_tensor *r = ref_find(ref, nref, m->p[i].name);
        int ok = 1;
        for (int64_t k = 0; k < rn_tensor_numel(m->p[i].value); k++)
            ok &= want_loaded ? r && same_float(m->p[i].value->data[k], r->v[k])
                              : m->p[i].value->data[k] == 42.0f;
        if (!ok)
            fprintf(stderr, "  %s: expected %s\n", m->p[i].name,
                    want_loaded ? "the file's values" : "untouched");
        CHECK(ok);
    }
}

static void expect_load_error(const char *path, model *m, int strict, const char *n1,
                              const char *n2)
{
    char err[1024] = "", report[512] = "x";
    CHECK(rn_safetensors_load_params(path, m->p, m->n, strict, report, sizeof report, err,
                                     sizeof err) != 0);
    CHECK(err[0] && strchr(err, '\n') == NULL && strstr(err, path) != NULL);
    CHECK(report[0] == '\0');
    const char *needles[2] = {n1, n2};
    for (int i = 0; i < 2; i++)
        if (needles[i] && !strstr(err, needles[i])) {
            CHECK(strstr(err, needles[i]) != NULL);
            fprintf(stderr, "  message: \"%s\"\n  lacks:   \"%s\"\n", err, needles[i]);
        }
    printf("  load error ok: %s\n", err);
}

static void expect_report(const char *report, const char *needle)
{
    if (!strstr(report, needle)) {
        CHECK(strstr(report, needle) != NULL);
        fprintf(stderr, "  report: \"%s\"\n  lacks:  \"%s\"\n", report, needle);
    }
}

static void test_load_params(void)
{
    ref_tensor ref[16];
    int nref = read_reference(fixture("tiny_net.txt"), ref, 16);
    CHECK(nref == 8);
    if (nref <= 0)
        return;
    const char *path = fixture("tiny_net.safetensors");
    static const char *const all[] = {"conv1.weight", "bn1.weight", "bn1.bias",
                                      "bn1.running_mean", "bn1.running_var", "fc.weight",
                                      "fc.bias"};
    char err[1024] = "", report[1024] = "";
    model m;

    /* Exact model, strict: everything loads; the I64 num_batches_tracked is skipped silently. */
    model_tiny(&m, 5, "fc.weight", "fc.bias");
    int rc = rn_safetensors_load_params(path, m.p, m.n, 1, report, sizeof report, err, sizeof err);
    CHECK(rc == 0);
    if (rc) fprintf(stderr, "  %s\n", err);
    check_model(&m, ref, nref, all, 7);
    CHECK(strchr(report, '\n') == NULL);
    expect_report(report, "loaded 7 of 7 model parameters");
    CHECK(strstr(report, "num_batches_tracked") == NULL);
    printf("  report: %s\n", report);
    /* NULL report and error buffers are fine. */
    CHECK(rn_safetensors_load_params(path, m.p, m.n, 1, NULL, 0, NULL, 0) == 0);
    model_free(&m);

    /* A model that keeps the counter gets it, converted from I64. */
    model_tiny(&m, 5, "fc.weight", "fc.bias");
    model_add(&m, "bn1.num_batches_tracked", 0, NULL);
    rc = rn_safetensors_load_params(path, m.p, m.n, 1, report, sizeof report, err, sizeof err);
    CHECK(rc == 0);
    CHECK(m.p[7].value->data[0] == 3.0f);
    model_free(&m);

    /* Name mismatch: the model calls its head "head". */
    model_tiny(&m, 5, "head.weight", "head.bias");
    expect_load_error(path, &m, 1, "strict load: 2 model parameters not in the file: head.weight, "
                      "head.bias", "2 file tensors not in the model: fc.bias, fc.weight");
    check_model(&m, ref, nref, all, 0);
    rc = rn_safetensors_load_params(path, m.p, m.n, 0, report, sizeof report, err, sizeof err);
    CHECK(rc == 0);
    check_model(&m, ref, nref, all, 5);
    expect_report(report, "loaded 5 of 7 model parameters");
    expect_report(report, "2 not in the file: head.weight, head.bias");
    expect_report(report, "ignored 2 file tensors not in the model: fc.bias, fc.weight");
    CHECK(strchr(report, '\n') == NULL);
    printf("  report: %s\n", report);
    model_free(&m);

    /* Shape mismatch: a 3-class head in place of the 5-class one. */
    model_tiny(&m, 3, "fc.weight", "fc.bias");
    expect_load_error(path, &m, 1, "tensor \"fc.weight\": shape [5, 4] in the file, [3, 4] in "
                      "the model", "(2 tensors differ in shape)");
    check_model(&m, ref, nref, all, 0);
    rc = rn_safetensors_load_params(path, m.p, m.n, 0, report, sizeof report, err, sizeof err);
    CHECK(rc == 0);
    check_model(&m, ref, nref, all, 5);
    expect_report(report, "loaded 5 of 7 model parameters; kept the model's for 2 whose shape "
                  "differs: fc.weight [5, 4] in the file, [3, 4] in the model, fc.bias [5] in "
                  "the file, [3] in the model");
    printf("  report: %s\n", report);
    model_free(&m);

    /* Only the backbone's first layer: five file tensors extra, listed four and "+1 more". */
    memset(&m, 0, sizeof m);
    model_add(&m, "conv1.weight", 4, (const int64_t[]){4, 3, 3, 3});
    expect_load_error(path, &m, 1, "6 file tensors not in the model: bn1.bias, bn1.running_mean, "
                      "bn1.running_var, bn1.weight (+2 more)", NULL);
    rc = rn_safetensors_load_params(path, m.p, m.n, 0, report, sizeof report, err, sizeof err);
    CHECK(rc == 0);
    expect_report(report, "loaded 1 of 1 model parameters; ignored 6 file tensors");
    model_free(&m);

    /* Nothing matches (a prefix on every name): an error even when not strict. */
    memset(&m, 0, sizeof m);
    model_add(&m, "model.conv1.weight", 4, (const int64_t[]){4, 3, 3, 3});
    expect_load_error(path, &m, 0, "no tensor matches a model parameter by name and shape",
                      "model: \"model.conv1.weight\"; file: \"bn1.bias\"");
    model_free(&m);

    /* A corrupt file: the open error. */
    model_tiny(&m, 5, "fc.weight", "fc.bias");
    const char *bad = tmp_path("bad-for-load.safetensors");
    write_raw(bad, "{\"conv1.weight\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
              1, 0);
    expect_load_error(bad, &m, 0, "unknown dtype \"F8\"", NULL);
    check_model(&m, ref, nref, all, 0);
    model_free(&m);
    free_reference(ref, nref);
}

static void test_corrupt(void)
{
    char want[512];
    const char *p;

    p = tmp_path("not-json.safetensors");
    write_raw(p, "{\"x\": {\"dtype\" \"F32\"}}", 0, 0);
    expect_open_error(p, "header is not valid JSON (line 1 column ", NULL);

    p = tmp_path("not-object.safetensors");
    write_raw(p, "[1, 2]  ", 0, 0);
    expect_open_error(p, "header is not a JSON object", NULL);

    p = tmp_path("duplicate.safetensors");
    write_raw(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                 "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, 0);
    expect_open_error(p, "header is not valid JSON", "duplicate");

    p = tmp_path("past-end.safetensors");
    write_raw(p, "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[32,32],\"data_offsets\":[0,4096]}}",
              2048, 0);
    snprintf(want, sizeof want, "%s: tensor \"fc.weight\": data_offsets [0, 4096] end past the "
             "data (2048 bytes)", p);
    expect_open_error(p, want, NULL);

    p = tmp_path("overlap.safetensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, 0);
    expect_open_error(p, "tensor \"b\": data_offsets [8, 24] overlap tensor \"a\" [0, 16]", NULL);
    /* An empty tensor inside another one's bytes takes no room: fine. */
    p = tmp_path("empty-inside.safetensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0,2],\"data_offsets\":[8,8]}}", 16, 0);
    rn_safetensors *st = NULL;
    char err[512];
    CHECK(rn_safetensors_open(&st, p, err, sizeof err) == 0);
    rn_safetensors_close(st);

    p = tmp_path("dtype.safetensors");
    write_raw(p, "{\"x\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 0);
    snprintf(want, sizeof want, "%s: tensor \"x\": unknown dtype \"F8\"", p);
    expect_open_error(p, want, NULL);

    p = tmp_path("size.safetensors");
    write_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16, 0);
    expect_open_error(p, "tensor \"w\": data_offsets [0, 16] hold 16 bytes, but shape [2, 3] of "
                      "F32 needs 24", NULL);
    p = tmp_path("reversed.safetensors");
    write_raw(p, "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,2]}}", 16, 0);
    expect_open_error(p, "tensor \"w\": data_offsets [4, 2] end before begin", NULL);
    p = tmp_path("huge-shape.safetensors");
    write_raw(p, "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                 "\"data_offsets\":[0,8]}}", 8, 0);
    expect_open_error(p, "tensor \"w\": shape [4294967296, 4294967296] has too many elements",
                      NULL);

    p = tmp_path("no-dtype.safetensors");
    write_raw(p, "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_open_error(p, "tensor \"w\": no dtype", NULL);
    p = tmp_path("no-offsets.safetensors");
    write_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, 0);
    expect_open_error(p, "tensor \"w\": no data_offsets", NULL);
    p = tmp_path("bad-offsets.safetensors");
    write_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, 0);
    expect_open_error(p, "tensor \"w\": data_offsets is not a pair", NULL);
    p = tmp_path("bad-shape.safetensors");
    write_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_open_error(p, "tensor \"w\": shape is not a list of non-negative integers", NULL);
    p = tmp_path("entry.safetensors");
    write_raw(p, "{\"w\":[1,2]}", 4, 0);
    expect_open_error(p, "tensor \"w\": not an object", NULL);
    p = tmp_path("meta.safetensors");
    write_raw(p, "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", 0, 0);
    expect_open_error(p, "__metadata__ \"epoch\" is not a string", NULL);
    p = tmp_path("meta2.safetensors");
    write_raw(p, "{\"__metadata__\":[1]}", 0, 0);
    expect_open_error(p, "__metadata__ is not an object of strings", NULL);

    p = tmp_path("long-header.safetensors");
    write_raw(p, "{\"a\":1}", 12, 1000);
    snprintf(want, sizeof want, "%s: header length 1000 is larger than the file (27 bytes)", p);
    expect_open_error(p, want, NULL);
    p = tmp_path("short.safetensors");
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite("\x10\0\0", 1, 3, f) == 3);
    if (f) fclose(f);
    expect_open_error(p, "3 bytes, too short for a safetensors file", NULL);

    /* A valid file cut short: the last tensor now ends past the data. */
    rn_tensor a = {0};
    CHECK(rn_tensor_alloc(&a, rn_shape_make(1, (const int64_t[]){8})) == 0);
    rn_param_ref ref = {.name = "x", .value = &a};
    p = tmp_path("truncated.safetensors");
    CHECK(rn_safetensors_write(p, &ref, 1, NULL, 0, err, sizeof err) == 0);
    FILE *g = fopen(p, "rb");
    CHECK(g && fseek(g, 0, SEEK_END) == 0);
    long size = g ? ftell(g) : 0;
    if (g) fclose(g);
    CHECK(truncate(p, size - 5) == 0);
    expect_open_error(p, "tensor \"x\": data_offsets [0, 32] end past the data (27 bytes)", NULL);
    rn_tensor_free(&a);

    expect_open_error(tmp_path("no-such.safetensors"), strerror(ENOENT), NULL);
    expect_open_error(tmpdir, strerror(EISDIR), NULL);

    /* A tiny error buffer is truncated, not overrun; a NULL one is fine. */
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(rn_safetensors_open(&st, p, small, sizeof small) != 0);
    CHECK(small[7] == '\0' && strlen(small) == 7);
    CHECK(rn_safetensors_open(&st, p, NULL, 0) != 0);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rn_st_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 2;
    }
    test_round_trip();
    test_pytorch_file("tiny_net");
    test_pytorch_file("dtypes");
    test_load_params();
    test_corrupt();
    for (int i = 0; i < n_created; i++) unlink(created[i]);
    rmdir(tmpdir);
    return rn_test_report("test_safetensors_read");
}
