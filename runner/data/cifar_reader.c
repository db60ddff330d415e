/* CIFAR-10 / CIFAR-100 "binary version": the tar.gz as downloaded, streamed through libarchive
 * without unpacking, or a directory holding the extracted .bin files. A record is the label
 * byte(s) then 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each 32x32 row-major (CHW). */
#include "errorf.h"
#include "dataset.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_MAX_FILES 5
#define CIFAR100_COARSE 20

/* Where a split lives and how its records look. */
typedef struct cifar_layout {
    const char *dir;                         /* the archive's top directory */
    const char *files[CIFAR_MAX_FILES];      /* the split's files, in the order they concatenate */
    int n_files;
    int label_bytes;                         /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine) */
    int classes;
    const char *other_dir;                   /* the other variant's directory, for a hint */
} cifar_layout;

/* One .bin file, read whole. */
typedef struct cifar_member {
    uint8_t *data;
    int64_t len;
    int present;
    char where[768];                         /* "archive: dir/file" or the file's path */
} cifar_member;


static int layout_for(cifar_layout *l, const char *path, const char *split, int variant,
                      char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    int train = split && strcmp(split, "train") == 0, test = split && strcmp(split, "test") == 0;
    if (!train && !test) {
        rn_errorf(err, errlen, "%s: CIFAR split \"%s\" is neither \"train\" nor \"test\"", path,
                split ? split : "(null)");
        return -1;
    }
    if (variant == 10) {
        static const char *const tr[] = {"data_batch_1.bin", "data_batch_2.bin",
                                         "data_batch_3.bin", "data_batch_4.bin",
                                         "data_batch_5.bin"};
        *l = (cifar_layout){.dir = "cifar-10-batches-bin", .label_bytes = 1, .classes = 10,
                            .other_dir = "cifar-100-binary"};
        l->n_files = train ? 5 : 1;
        for (int i = 0; i < l->n_files; i++)
            l->files[i] = train ? tr[i] : "test_batch.bin";
    } else if (variant == 100) {
        *l = (cifar_layout){.dir = "cifar-100-binary", .label_bytes = 2, .classes = 100,
                            .other_dir = "cifar-10-batches-bin", .n_files = 1};
        l->files[0] = train ? "train.bin" : "test.bin";
    } else {
        rn_errorf(err, errlen, "%s: CIFAR variant %d is neither 10 nor 100", path, variant);
        return -1;
    }
    return 0;
}

static int64_t record_bytes(const cifar_layout *l)
{
    return l->label_bytes + CIFAR_PIXELS;
}

/* A member's size, known before its data is read: whole records, at least one. */
static int check_size(const cifar_layout *l, const cifar_member *m, int64_t len, char *err,
                      size_t errlen)
{
    int64_t rec = record_bytes(l);
    if (len == 0) {
        rn_errorf(err, errlen, "%s: empty, expected %" PRId64 "-byte records", m->where, rec);
        return -1;
    }
    if (len % rec != 0) {
        rn_errorf(err, errlen, "%s: %" PRId64 " bytes is not a whole number of %" PRId64
                "-byte records", m->where, len, rec);
        return -1;
    }
    return 0;
}

/* --- from the archive ------------------------------------------------------------------------- */

/* Reads the current entry's data into m (size from the header when the format records it). */
static int read_entry(struct archive *a, struct archive_entry *e, const cifar_layout *l,
                      cifar_member *m, char *err, size_t errlen)
{
    int64_t known = archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1;
    if (known >= 0 && check_size(l, m, known, err, errlen))
        return -1;
    size_t cap = known > 0 ? (size_t)known : (size_t)record_bytes(l) * 1024, len = 0;
    free(m->data);
    m->data = malloc(cap);
    if (!m->data) {
        rn_errorf(err, errlen, "%s: out of memory for %zu bytes", m->where, cap);
        return -1;
    }
    for (;;) {
        if (len == cap) {
            if (known >= 0) { /* the header's size is all there is; more would be a bad tar */
                uint8_t probe;
                la_ssize_t r = archive_read_data(a, &probe, 1);
                if (r == 0)
                    break;
                rn_errorf(err, errlen, "%s: read error: %s", m->where,
                        r < 0 ? archive_error_string(a) : "more data than its header says");
                return -1;
            }
            uint8_t *grown = realloc(m->data, cap * 2);
            if (!grown) {
                rn_errorf(err, errlen, "%s: out of memory for %zu bytes", m->where, cap * 2);
                return -1;
            }
            m->data = grown;
            cap *= 2;
        }
        la_ssize_t r = archive_read_data(a, m->data + len, cap - len);
        if (r < 0) {
            rn_errorf(err, errlen, "%s: read error: %s", m->where, archive_error_string(a));
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (known >= 0 && (int64_t)len != known) {
        rn_errorf(err, errlen, "%s: truncated: %zu of its %" PRId64 " bytes", m->where, len, known);
        return -1;
    }
    if (known < 0 && check_size(l, m, (int64_t)len, err, errlen))
        return -1;
    m->len = (int64_t)len;
    m->present = 1;
    return 0;
}

static int load_archive(const char *path, const cifar_layout *l, cifar_member *m, char *err,
                        size_t errlen)
{
    struct archive *a = archive_read_new();
    if (!a) {
        rn_errorf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    int rc = -1, entries = 0, found = 0, saw_other = 0;
    const char *expected = l->classes == 10 ? "cifar-10-binary" : "cifar-100-binary";
    /* Opening reads the start and bids the formats: this is where a non-archive fails. */
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        rn_errorf(err, errlen, "%s: not a CIFAR archive (expected the %s tar.gz as downloaded, or "
                "a directory of .bin files): %s", path, expected, archive_error_string(a));
        goto out;
    }
    for (int k = 0; k < l->n_files; k++)
        snprintf(m[k].where, sizeof m[k].where, "%s: %s/%s", path, l->dir, l->files[k]);
    /* Stream the entries; stop as soon as the split's files are in. */
    while (found < l->n_files) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            if (entries == 0)
                rn_errorf(err, errlen, "%s: not a CIFAR archive (expected the %s tar.gz as "
                        "downloaded, or a directory of .bin files): %s", path, expected,
                        archive_error_string(a));
            else
                rn_errorf(err, errlen, "%s: read error after %d entries: %s", path, entries,
                        archive_error_string(a));
            goto out;
        }
        entries++;
        const char *name = archive_entry_pathname(e);
        if (!name)
            continue;
        while (name[0] == '.' && name[1] == '/')
            name += 2;
        size_t dl = strlen(l->dir), ol = strlen(l->other_dir);
        if (strncmp(name, l->other_dir, ol) == 0 && name[ol] == '/')
            saw_other = 1;
        if (strncmp(name, l->dir, dl) != 0 || name[dl] != '/' ||
            archive_entry_filetype(e) != AE_IFREG)
            continue;
        for (int k = 0; k < l->n_files; k++) {
            if (strcmp(name + dl + 1, l->files[k]) != 0)
                continue;
            found += !m[k].present;
            if (read_entry(a, e, l, &m[k], err, errlen))
                goto out;
        }
    }
    for (int k = 0; k < l->n_files; k++) {
        if (m[k].present)
            continue;
        if (saw_other)
            rn_errorf(err, errlen, "%s: no %s/%s in the archive (it holds %s/: is it CIFAR-%d?)",
                    path, l->dir, l->files[k], l->other_dir, l->classes == 10 ? 100 : 10);
        else
            rn_errorf(err, errlen, "%s: no %s/%s in the archive", path, l->dir, l->files[k]);
        goto out;
    }
    rc = 0;
out:
    archive_read_free(a);
    return rc;
}

/* --- from a directory of extracted files ------------------------------------------------------ */

static int load_file(const cifar_layout *l, cifar_member *m, char *err, size_t errlen)
{
    FILE *f = fopen(m->where, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        rn_errorf(err, errlen, "%s: cannot open: %s", m->where, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    int rc = -1;
    if (check_size(l, m, (int64_t)st.st_size, err, errlen))
        goto out;
    m->data = malloc((size_t)st.st_size);
    if (!m->data) {
        rn_errorf(err, errlen, "%s: out of memory for %lld bytes", m->where, (long long)st.st_size);
        goto out;
    }
    size_t got = fread(m->data, 1, (size_t)st.st_size, f);
    if (got != (size_t)st.st_size) {
        rn_errorf(err, errlen, "%s: read %zu of %lld bytes: %s", m->where, got,
                (long long)st.st_size, ferror(f) ? strerror(errno) : "file shrank");
        goto out;
    }
    m->len = (int64_t)got;
    m->present = 1;
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* The files directly in `dir`, or in dir/<layout dir>/ (the archive extracted in place). */
static int load_dir(const char *dir, const cifar_layout *l, cifar_member *m, char *err,
                    size_t errlen)
{
    for (int k = 0; k < l->n_files; k++) {
        struct stat st;
        snprintf(m[k].where, sizeof m[k].where, "%s/%s", dir, l->files[k]);
        if (stat(m[k].where, &st) != 0) {
            snprintf(m[k].where, sizeof m[k].where, "%s/%s/%s", dir, l->dir, l->files[k]);
            if (stat(m[k].where, &st) != 0) {
                rn_errorf(err, errlen, "%s: no %s (nor %s/%s) in the directory", dir, l->files[k],
                        l->dir, l->files[k]);
                return -1;
            }
        }
        if (load_file(l, &m[k], err, errlen))
            return -1;
    }
    return 0;
}

/* --- records to a data set -------------------------------------------------------------------- */

static int decode(rn_dataset *ds, const cifar_layout *l, const cifar_member *m, char *err,
                  size_t errlen)
{
    int64_t rec = record_bytes(l), n = 0;
    for (int k = 0; k < l->n_files; k++)
        n += m[k].len / rec;
    ds->pixels = malloc((size_t)n * CIFAR_PIXELS);
    ds->labels = malloc((size_t)n * sizeof *ds->labels);
    if (!ds->pixels || !ds->labels) {
        rn_errorf(err, errlen, "%s: out of memory for %" PRId64 " images", m[0].where, n);
        return -1;
    }
    int64_t at = 0;
    for (int k = 0; k < l->n_files; k++) {
        for (int64_t r = 0; r < m[k].len / rec; r++, at++) {
            const uint8_t *p = m[k].data + r * rec;
            /* CIFAR-100 records are (coarse, fine): the fine label is the class. */
            int label = p[l->label_bytes - 1];
            if (l->label_bytes == 2 && p[0] >= CIFAR100_COARSE) {
                rn_errorf(err, errlen, "%s: record %" PRId64 ": coarse label %d is out of range "
                        "0..%d", m[k].where, r, p[0], CIFAR100_COARSE - 1);
                return -1;
            }
            if (label >= l->classes) {
                rn_errorf(err, errlen, "%s: record %" PRId64 ": label %d is out of range 0..%d",
                        m[k].where, r, label, l->classes - 1);
                return -1;
            }
            ds->labels[at] = label;
            memcpy(ds->pixels + at * CIFAR_PIXELS, p + l->label_bytes, CIFAR_PIXELS);
        }
    }
    ds->n = n;
    ds->c = 3;
    ds->h = ds->w = CIFAR_SIDE;
    ds->classes = l->classes;
    return 0;
}

int rn_cifar_load(rn_dataset *ds, const char *archive_path, const char *split, int variant,
                  char *err, size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    cifar_layout l;
    if (layout_for(&l, archive_path, split, variant, err, errlen))
        return -1;
    struct stat st;
    if (stat(archive_path, &st) != 0) {
        rn_errorf(err, errlen, "%s: cannot open: %s", archive_path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        rn_errorf(err, errlen, "%s: empty file, expected the %s tar.gz", archive_path,
                variant == 10 ? "cifar-10-binary" : "cifar-100-binary");
        return -1;
    }
    cifar_member *m = calloc(CIFAR_MAX_FILES, sizeof *m);
    if (!m) {
        rn_errorf(err, errlen, "%s: out of memory", archive_path);
        return -1;
    }
    int rc = S_ISDIR(st.st_mode) ? load_dir(archive_path, &l, m, err, errlen)
                                 : load_archive(archive_path, &l, m, err, errlen);
    if (rc == 0)
        rc = decode(ds, &l, m, err, errlen);
    for (int k = 0; k < CIFAR_MAX_FILES; k++)
        free(m[k].data);
    free(m);
    if (rc)
        rn_dataset_free(ds);
    return rc;
}
