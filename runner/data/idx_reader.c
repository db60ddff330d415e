/* idx (MNIST / Fashion-MNIST) image and label files, plain or compressed, read through libarchive. */
#include "errorf.h"
#include "dataset.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned bytes, 3 dimensions (n, h, w) */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned bytes, 1 dimension (n) */

/* Anything past these is a corrupt header, not a data set: refuse before allocating. */
#define IDX_MAX_COUNT INT32_MAX
#define IDX_MAX_SIDE 65536u
#define IDX_MAX_BYTES ((int64_t)1 << 36)


/* One idx file being read: the raw format turns any input (after decompression) into one entry. */
typedef struct idx_file {
    const char *path;
    int fd;
    struct archive *a;
} idx_file;

static void idx_close(idx_file *f)
{
    if (f->a)
        archive_read_free(f->a);
    if (f->fd >= 0)
        close(f->fd);
    f->a = NULL;
    f->fd = -1;
}

static int idx_open(idx_file *f, const char *path, size_t header_bytes, char *err,
                    size_t errlen)
{
    f->path = path;
    f->a = NULL;
    /* open() ourselves so a missing file reports errno, not libarchive's generic wording. */
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        rn_errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* libarchive calls an empty input an unrecognized format and a directory a read error;
     * say what they are. */
    struct stat st;
    if (fstat(f->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        rn_errorf(err, errlen, "%s: cannot read: %s", path, strerror(EISDIR));
        idx_close(f);
        return -1;
    }
    if (fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
        rn_errorf(err, errlen, "%s: empty file, expected an idx header of %zu bytes", path,
                header_bytes);
        idx_close(f);
        return -1;
    }
    f->a = archive_read_new();
    if (!f->a) {
        rn_errorf(err, errlen, "%s: out of memory", path);
        idx_close(f);
        return -1;
    }
    archive_read_support_filter_all(f->a);
    archive_read_support_format_raw(f->a);
    struct archive_entry *entry;
    if (archive_read_open_fd(f->a, f->fd, 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(f->a, &entry) != ARCHIVE_OK) {
        rn_errorf(err, errlen, "%s: cannot read: %s", path, archive_error_string(f->a));
        idx_close(f);
        return -1;
    }
    return 0;
}

/* Reads up to len bytes; returns how many were read (< len only at the end), or -1 on error. */
static int64_t idx_read(idx_file *f, void *buf, size_t len, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < len) {
        la_ssize_t r = archive_read_data(f->a, (char *)buf + got, len - got);
        if (r < 0) {
            rn_errorf(err, errlen, "%s: read error: %s", f->path, archive_error_string(f->a));
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

/* Counts what follows the payload; returns -1 on a read error. */
static int64_t idx_count_rest(idx_file *f, char *err, size_t errlen)
{
    char scratch[1 << 14];
    int64_t total = 0, r;
    while ((r = idx_read(f, scratch, sizeof scratch, err, errlen)) > 0)
        total += r;
    return r < 0 ? -1 : total;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads the header of an idx file with `ndims` dimensions after checking its magic number. */
static int idx_header(idx_file *f, uint32_t magic, const char *what, uint32_t *dims, int ndims,
                      char *err, size_t errlen)
{
    uint8_t hdr[4 * 4];
    size_t want = 4 * (size_t)(1 + ndims);
    int64_t got = idx_read(f, hdr, 4, err, errlen);
    if (got < 0)
        return -1;
    if (got < 4) {
        rn_errorf(err, errlen, "%s: truncated idx header: expected %zu bytes, found %" PRId64,
                f->path, want, got);
        return -1;
    }
    if (be32(hdr) != magic) {
        rn_errorf(err, errlen, "%s: not an idx %s file (magic 0x%08" PRIx32 ", expected 0x%08" PRIx32
                ")", f->path, what, be32(hdr), magic);
        return -1;
    }
    got = idx_read(f, hdr + 4, want - 4, err, errlen);
    if (got < 0)
        return -1;
    if ((size_t)got < want - 4) {
        rn_errorf(err, errlen, "%s: truncated idx header: expected %zu bytes, found %" PRId64,
                f->path, want, got + 4);
        return -1;
    }
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(hdr + 4 * (1 + i));
    return 0;
}

/* Reads exactly `len` payload bytes and checks that nothing follows them. */
static int idx_payload(idx_file *f, void *buf, int64_t len, char *err, size_t errlen)
{
    int64_t got = idx_read(f, buf, (size_t)len, err, errlen);
    if (got < 0)
        return -1;
    if (got < len) {
        rn_errorf(err, errlen, "%s: truncated idx payload: expected %" PRId64
                " bytes after the header, found %" PRId64, f->path, len, got);
        return -1;
    }
    int64_t rest = idx_count_rest(f, err, errlen);
    if (rest < 0)
        return -1;
    if (rest > 0) {
        rn_errorf(err, errlen, "%s: %" PRId64 " trailing bytes after the %" PRId64
                "-byte payload the idx header declares", f->path, rest, len);
        return -1;
    }
    return 0;
}

static int load_images(rn_dataset *ds, const char *path, char *err, size_t errlen)
{
    idx_file f;
    if (idx_open(&f, path, 16, err, errlen))
        return -1;
    uint32_t d[3];
    int rc = -1;
    if (idx_header(&f, IDX_MAGIC_IMAGES, "image", d, 3, err, errlen))
        goto out;
    if (d[0] == 0 || d[1] == 0 || d[2] == 0) {
        rn_errorf(err, errlen, "%s: idx image file has a zero dimension (%" PRIu32 "x%" PRIu32
                "x%" PRIu32 ")", path, d[0], d[1], d[2]);
        goto out;
    }
    if (d[0] > IDX_MAX_COUNT || d[1] > IDX_MAX_SIDE || d[2] > IDX_MAX_SIDE ||
        (double)d[0] * d[1] * d[2] > (double)IDX_MAX_BYTES) {
        rn_errorf(err, errlen, "%s: implausible idx image dimensions %" PRIu32 "x%" PRIu32 "x%" PRIu32
                " (at most %d images of %ux%u, %" PRId64 " bytes)", path, d[0], d[1], d[2],
                IDX_MAX_COUNT, IDX_MAX_SIDE, IDX_MAX_SIDE, IDX_MAX_BYTES);
        goto out;
    }
    int64_t bytes = (int64_t)d[0] * d[1] * d[2]; /* <= IDX_MAX_BYTES: no overflow */
    ds->pixels = malloc((size_t)bytes);
    if (!ds->pixels) {
        rn_errorf(err, errlen, "%s: out of memory for %" PRId64 " bytes of pixels", path, bytes);
        goto out;
    }
    if (idx_payload(&f, ds->pixels, bytes, err, errlen))
        goto out;
    ds->n = d[0];
    ds->c = 1; /* idx3 is grey */
    ds->h = d[1];
    ds->w = d[2];
    rc = 0;
out:
    idx_close(&f);
    return rc;
}

static int load_labels(rn_dataset *ds, const char *path, uint32_t *count, char *err, size_t errlen)
{
    idx_file f;
    if (idx_open(&f, path, 8, err, errlen))
        return -1;
    uint32_t n;
    uint8_t *raw = NULL;
    int rc = -1;
    if (idx_header(&f, IDX_MAGIC_LABELS, "label", &n, 1, err, errlen))
        goto out;
    if (n == 0 || n > IDX_MAX_COUNT) {
        rn_errorf(err, errlen, "%s: implausible idx label count %" PRIu32 " (expected 1..%d)", path,
                n, IDX_MAX_COUNT);
        goto out;
    }
    raw = malloc(n);
    ds->labels = malloc((size_t)n * sizeof *ds->labels);
    if (!raw || !ds->labels) {
        rn_errorf(err, errlen, "%s: out of memory for %" PRIu32 " labels", path, n);
        goto out;
    }
    if (idx_payload(&f, raw, n, err, errlen))
        goto out;
    int32_t max = 0;
    for (uint32_t i = 0; i < n; i++) {
        ds->labels[i] = raw[i];
        if (raw[i] > max)
            max = raw[i];
    }
    ds->classes = (int64_t)max + 1;
    *count = n;
    rc = 0;
out:
    free(raw);
    idx_close(&f);
    return rc;
}

int rn_idx_load(rn_dataset *ds, const char *images_path, const char *labels_path, char *err,
                size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    uint32_t n_labels = 0;
    if (load_images(ds, images_path, err, errlen) ||
        load_labels(ds, labels_path, &n_labels, err, errlen))
        goto fail;
    if ((int64_t)n_labels != ds->n) {
        rn_errorf(err, errlen, "%s: %" PRIu32 " labels, but %s has %" PRId64 " images", labels_path,
                n_labels, images_path, ds->n);
        goto fail;
    }
    return 0;
fail:
    rn_dataset_free(ds);
    return -1;
}

void rn_dataset_truncate(rn_dataset *ds, int64_t n)
{
    /* classes stays: a short test run still trains the full classifier head. */
    if (n >= 0 && n < ds->n)
        ds->n = n;
}

void rn_dataset_free(rn_dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}
