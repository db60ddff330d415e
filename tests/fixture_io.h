/* Reads the PyTorch reference fixtures written by scripts/make_fixtures.py (tests only).
 *
 * A fixture is $RN_FIXTURES/layers/<case>.rnfx: named float32 arrays, little-endian:
 *   "RNFX0001", uint32 count, then per array: uint32 name length, the name, uint32 ndim (0..4),
 *   int64 dims[ndim], float32 data[prod(dims)].
 * The script's docstring lists the array names. Every size is checked against the file length,
 * so a truncated or corrupt fixture fails the test with a message instead of reading past it. */
#ifndef RN_FIXTURE_IO_H
#define RN_FIXTURE_IO_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_test.h"

typedef struct fx_array {
    char name[64];
    int ndim;
    int64_t dims[4];
    int64_t numel;
    float *data; /* numel floats, owned by the fx_file */
} fx_array;

typedef struct fx_file {
    char path[512];
    int n;
    fx_array *a;
} fx_file;

static inline void fx_free(fx_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->a[i].data);
    free(f->a);
    free(f);
}

static inline int fx_read(FILE *fp, void *p, size_t n) { return fread(p, 1, n, fp) == n ? 0 : -1; }

/* Loads $RN_FIXTURES/layers/<name>.rnfx; NULL (with the reason on stderr) when it is missing or
 * malformed. Values are read as little-endian, which is what every supported host is. */
static inline fx_file *fx_load(const char *name)
{
    const char *root = getenv("RN_FIXTURES");
    fx_file *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    snprintf(f->path, sizeof f->path, "%s/layers/%s.rnfx", root ? root : "tests/fixtures", name);
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        fprintf(stderr, "fixture %s: cannot open (is RN_FIXTURES set?)\n", f->path);
        free(f);
        return NULL;
    }
    char magic[8];
    uint32_t count = 0;
    const char *why = NULL;
    if (fx_read(fp, magic, 8) || memcmp(magic, "RNFX0001", 8) || fx_read(fp, &count, 4) ||
        count > 256) {
        why = "not an RNFX0001 file";
        goto bad;
    }
    f->a = calloc(count ? count : 1, sizeof *f->a);
    if (!f->a) {
        why = "out of memory";
        goto bad;
    }
    for (uint32_t i = 0; i < count; i++) {
        fx_array *a = &f->a[i];
        uint32_t len = 0, ndim = 0;
        if (fx_read(fp, &len, 4) || len == 0 || len >= sizeof a->name ||
            fx_read(fp, a->name, len) || fx_read(fp, &ndim, 4) || ndim > 4) {
            why = "bad array header";
            goto bad;
        }
        a->name[len] = '\0';
        a->ndim = (int)ndim;
        a->numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            if (fx_read(fp, &a->dims[d], 8) || a->dims[d] < 0 || a->dims[d] > (1 << 24)) {
                why = "bad dims";
                goto bad;
            }
            a->numel *= a->dims[d];
        }
        if (a->numel > (1 << 24)) {
            why = "array too large";
            goto bad;
        }
        a->data = malloc((size_t)(a->numel ? a->numel : 1) * sizeof(float));
        f->n = (int)i + 1; /* so fx_free frees this one too */
        if (!a->data || fx_read(fp, a->data, (size_t)a->numel * sizeof(float))) {
            why = "truncated data";
            goto bad;
        }
    }
    if (fgetc(fp) != EOF) {
        why = "trailing bytes";
        goto bad;
    }
    fclose(fp);
    return f;
bad:
    fprintf(stderr, "fixture %s: %s\n", f->path, why);
    fclose(fp);
    fx_free(f);
    return NULL;
}

/* The array called name, or NULL. */
static inline const fx_array *fx_find(const fx_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->a[i].name, name) == 0) return &f->a[i];
    return NULL;
}

/* The array called name; a missing one is a test failure (and NULL). */
static inline const fx_array *fx_get(const fx_file *f, const char *name)
{
    const fx_array *a = fx_find(f, name);
    rn_test_checks++;
    if (!a) {
        rn_test_failures++;
        fprintf(stderr, "fixture %s: no array \"%s\"\n", f->path, name);
    }
    return a;
}

/* cfg.<key>'s value, or dflt when the fixture does not set it. */
static inline double fx_cfg(const fx_file *f, const char *key, double dflt)
{
    char name[80];
    snprintf(name, sizeof name, "cfg.%s", key);
    const fx_array *a = fx_find(f, name);
    return a && a->numel == 1 ? a->data[0] : dflt;
}

/* got[i] against ref: |got - ref| <= atol + rtol |ref| for every element and the same count;
 * one check; returns the number of mismatches (the first few are printed). */
static inline int fx_compare(const char *what, const float *got, int64_t n, const fx_array *ref,
                             double atol, double rtol)
{
    rn_test_checks++;
    if (!ref || ref->numel != n) {
        rn_test_failures++;
        fprintf(stderr, "%s: %lld values, the fixture has %lld\n", what, (long long)n,
                ref ? (long long)ref->numel : -1LL);
        return 1;
    }
    int bad = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double a = got[i], b = ref->data[i], d = fabs(a - b);
        if (!(d <= atol + rtol * fabs(b))) {
            if (bad < 5)
                fprintf(stderr, "%s[%lld]: %.9g, PyTorch %.9g\n", what, (long long)i, a, b);
            bad++;
        }
        if (d > worst || d != d) worst = d;
    }
    if (bad) {
        rn_test_failures++;
        fprintf(stderr, "%s: %d of %lld differ from PyTorch (worst |diff| %.3g)\n", what, bad,
                (long long)n, worst);
    }
    return bad;
}

#endif
