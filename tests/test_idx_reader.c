/* rn_idx_load: exact values from plain and gzip idx files, one clear line per kind of bad file,
 * and the real Fashion-MNIST train/test sets when the Debian package is installed. */
#include "dataset.h"
#include "rn_test.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static char tmpdir[256];
static char created[32][320];
static int n_created;

/* A path in the temp dir, remembered for cleanup. */
static const char *tmp_path(const char *name)
{
    char *p = created[n_created++];
    snprintf(p, sizeof created[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_plain(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

/* gzip through libarchive's raw writer: the same library the reader uses, no zlib needed. */
static void write_gz(const char *path, const void *data, size_t len)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    archive_write_set_bytes_in_last_block(a, 1); /* no zero padding after the gzip stream */
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK ||
        archive_write_header(a, e) != ARCHIVE_OK ||
        archive_write_data(a, data, len) != (la_ssize_t)len || archive_write_close(a) != ARCHIVE_OK) {
        fprintf(stderr, "cannot write %s: %s\n", path, archive_error_string(a));
        exit(2);
    }
    archive_entry_free(e);
    archive_write_free(a);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint8_t pixel_of(size_t i)
{
    return (uint8_t)(i * 37u + 11u);
}

/* An idx3 image file of n*h*w pixels (pixel_of(i)) plus `extra` more payload bytes (negative:
 * fewer). Returns the length. */
static size_t make_images(uint8_t *buf, uint32_t magic, uint32_t n, uint32_t h, uint32_t w,
                          long extra)
{
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, h);
    put_be32(buf + 12, w);
    size_t len = (size_t)((long)(n * h * w) + extra);
    for (size_t i = 0; i < len; i++)
        buf[16 + i] = pixel_of(i);
    return 16 + len;
}

static size_t make_labels(uint8_t *buf, uint32_t n, const uint8_t *labels, size_t len)
{
    put_be32(buf, 0x00000801u);
    put_be32(buf + 4, n);
    memcpy(buf + 8, labels, len);
    return 8 + len;
}

static int contains(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

/* Loading must fail with one line that contains every needle; the dataset is left empty. */
static void expect_error(const char *images, const char *labels, const char *n1, const char *n2,
                         const char *n3)
{
    rn_dataset ds;
    char err[512] = "";
    int rc = rn_idx_load(&ds, images, labels, err, sizeof err);
    CHECK(rc != 0);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
    CHECK(strchr(err, '\n') == NULL && err[0] != '\0');
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++) {
        if (needles[i] && !contains(err, needles[i])) {
            CHECK(contains(err, needles[i]));
            fprintf(stderr, "  message: \"%s\"\n  lacks:   \"%s\"\n", err, needles[i]);
        }
    }
    printf("  error ok: %s\n", err);
}

static const uint8_t LABELS[3] = {2, 0, 4};

static void check_small(const char *images, const char *labels)
{
    rn_dataset ds;
    char err[512] = "";
    int rc = rn_idx_load(&ds, images, labels, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(ds.n == 3 && ds.c == 1 && ds.h == 2 && ds.w == 3);
    CHECK(ds.classes == 5);
    int same = 1;
    for (size_t i = 0; i < 18; i++)
        same &= ds.pixels[i] == pixel_of(i);
    CHECK(same);
    CHECK(ds.labels[0] == 2 && ds.labels[1] == 0 && ds.labels[2] == 4);

    rn_dataset_truncate(&ds, 2);
    CHECK(ds.n == 2 && ds.classes == 5 && ds.pixels[17] == pixel_of(17));
    rn_dataset_truncate(&ds, 10); /* never grows */
    CHECK(ds.n == 2);
    rn_dataset_free(&ds);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
}

static void test_small_files(void)
{
    uint8_t img[64], lab[16];
    size_t ni = make_images(img, 0x00000803u, 3, 2, 3, 0);
    size_t nl = make_labels(lab, 3, LABELS, 3);
    const char *pi = tmp_path("img"), *pl = tmp_path("lab");
    const char *gi = tmp_path("img.gz"), *gl = tmp_path("lab.gz");
    write_plain(pi, img, ni);
    write_plain(pl, lab, nl);
    write_gz(gi, img, ni);
    write_gz(gl, lab, nl);

    /* the .gz really is gzip, so the gzip path of the reader is exercised */
    uint8_t head[2] = {0, 0};
    FILE *f = fopen(gi, "rb");
    CHECK(f && fread(head, 1, 2, f) == 2);
    if (f)
        fclose(f);
    CHECK(head[0] == 0x1f && head[1] == 0x8b);

    check_small(pi, pl);
    check_small(gi, gl);
    check_small(gi, pl);
}

static void test_errors(void)
{
    uint8_t buf[256], lab[16];
    size_t nl = make_labels(lab, 3, LABELS, 3);
    const char *pl = tmp_path("ok-labels");
    write_plain(pl, lab, nl);
    const char *pi = tmp_path("ok-images");
    write_plain(pi, buf, make_images(buf, 0x00000803u, 3, 2, 3, 0));

    /* missing file: path and strerror(ENOENT) */
    const char *missing = tmp_path("no-such-file.gz");
    expect_error(missing, pl, missing, strerror(ENOENT), NULL);
    expect_error(pi, missing, missing, strerror(ENOENT), NULL);

    /* wrong magic: a label file given as images, and the other way round, plain and gzip */
    expect_error(pl, pl, pl, "not an idx image file", "magic 0x00000801, expected 0x00000803");
    expect_error(pi, pi, pi, "not an idx label file", "magic 0x00000803, expected 0x00000801");
    const char *gl = tmp_path("labels-as-images.gz");
    write_gz(gl, lab, nl);
    expect_error(gl, pl, gl, "not an idx image file", "magic 0x00000801");
    /* text that happens to be readable by the raw format */
    const char *txt = tmp_path("notes.txt");
    write_plain(txt, "hello, world\n", 13);
    expect_error(txt, pl, txt, "not an idx image file", "magic 0x68656c6c");

    /* truncated payload: 18 declared, 10 present, plain and gzip */
    const char *tr = tmp_path("truncated"), *trg = tmp_path("truncated.gz");
    size_t len = make_images(buf, 0x00000803u, 3, 2, 3, -8);
    write_plain(tr, buf, len);
    write_gz(trg, buf, len);
    expect_error(tr, pl, tr, "expected 18 bytes", "found 10");
    expect_error(trg, pl, trg, "expected 18 bytes", "found 10");
    /* truncated label payload */
    const char *trl = tmp_path("truncated-labels");
    write_plain(trl, lab, nl - 1);
    expect_error(pi, trl, trl, "expected 3 bytes", "found 2");

    /* truncated header, and an empty file */
    const char *th = tmp_path("short-header"), *empty = tmp_path("empty");
    write_plain(th, buf, 10);
    write_plain(empty, buf, 0);
    expect_error(th, pl, th, "truncated idx header", "expected 16 bytes, found 10");
    expect_error(empty, pl, empty, "empty file", "expected an idx header of 16 bytes");
    expect_error(tmpdir, pl, tmpdir, strerror(EISDIR), NULL);
    const char *emptygz = tmp_path("empty.gz");
    write_gz(emptygz, buf, 0);
    expect_error(emptygz, pl, emptygz, NULL, NULL);

    /* trailing garbage: 5 bytes past the payload, plain and gzip */
    const char *tg = tmp_path("trailing"), *tgg = tmp_path("trailing.gz");
    len = make_images(buf, 0x00000803u, 3, 2, 3, 5);
    write_plain(tg, buf, len);
    write_gz(tgg, buf, len);
    expect_error(tg, pl, tg, "5 trailing bytes", "18-byte payload");
    expect_error(tgg, pl, tgg, "5 trailing bytes", NULL);

    const char *tgl = tmp_path("trailing-labels");
    write_plain(tgl, lab, make_labels(lab, 3, (const uint8_t[5]){2, 0, 4, 9, 9}, 5));
    expect_error(pi, tgl, tgl, "2 trailing bytes", "3-byte payload");

    /* count mismatch: 4 labels for 3 images */
    const char *l4 = tmp_path("four-labels");
    const uint8_t four[4] = {1, 2, 3, 0};
    write_plain(l4, lab, make_labels(lab, 4, four, 4));
    expect_error(pi, l4, l4, pi, "4 labels, but");
    expect_error(pi, l4, "has 3 images", NULL, NULL);

    /* zero dimensions */
    const char *z = tmp_path("zero-h"), *zn = tmp_path("zero-n"), *zl = tmp_path("zero-labels");
    write_plain(z, buf, make_images(buf, 0x00000803u, 3, 0, 3, 0));
    write_plain(zn, buf, make_images(buf, 0x00000803u, 0, 28, 28, 0));
    write_plain(zl, lab, make_labels(lab, 0, four, 0));
    expect_error(z, pl, z, "zero dimension", "3x0x3");
    expect_error(zn, pl, zn, "zero dimension", "0x28x28");
    expect_error(pi, zl, zl, "implausible idx label count 0", NULL);

    /* absurd dimensions are refused from the header, before any allocation */
    const char *big = tmp_path("absurd");
    put_be32(buf, 0x00000803u);
    put_be32(buf + 4, 4000000000u);
    put_be32(buf + 8, 100000u);
    put_be32(buf + 12, 100000u);
    write_plain(big, buf, 16);
    expect_error(big, pl, big, "implausible idx image dimensions", "4000000000x100000x100000");

    /* a gzip stream cut in half: libarchive's read error, named with the path */
    static uint8_t large[16 + 200 * 28 * 28];
    len = make_images(large, 0x00000803u, 200, 28, 28, 0);
    for (size_t i = 16; i < len; i++) /* poorly compressible, so the cut lands mid-payload */
        large[i] = (uint8_t)((i * 2654435761u) >> 13);
    const char *cut = tmp_path("cut.gz");
    write_gz(cut, large, len);
    struct stat st;
    CHECK(stat(cut, &st) == 0);
    CHECK(truncate(cut, st.st_size / 2) == 0);
    expect_error(cut, pl, cut, NULL, NULL);

    /* a tiny error buffer is truncated, not overrun */
    rn_dataset ds;
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(rn_idx_load(&ds, missing, pl, small, sizeof small) != 0);
    CHECK(small[7] == '\0' && strlen(small) == 7);
    CHECK(rn_idx_load(&ds, missing, pl, NULL, 0) != 0);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Reference numbers from an independent read (python3 gzip): first labels, per-class counts,
 * pixel sums. */
static void test_fashion_mnist(void)
{
    const char *imgs = FMNIST_DIR "/train-images-idx3-ubyte.gz";
    const char *labs = FMNIST_DIR "/train-labels-idx1-ubyte.gz";
    if (access(imgs, R_OK) != 0 || access(labs, R_OK) != 0) {
        printf("SKIP Fashion-MNIST checks: %s not readable (install dataset-fashion-mnist)\n",
               imgs);
        return;
    }
    rn_dataset ds;
    char err[512] = "";
    double t0 = now_s();
    int rc = rn_idx_load(&ds, imgs, labs, err, sizeof err);
    double dt = now_s() - t0;
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    printf("  Fashion-MNIST train: %lld x %lldx%lldx%lld loaded in %.3f s\n", (long long)ds.n,
           (long long)ds.c, (long long)ds.h, (long long)ds.w, dt);
    CHECK(ds.n == 60000 && ds.c == 1 && ds.h == 28 && ds.w == 28);
    CHECK(ds.classes == 10);
    const int32_t first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++)
        CHECK(ds.labels[i] == first[i]);
    int64_t count[10] = {0};
    for (int64_t i = 0; i < ds.n; i++)
        if (ds.labels[i] >= 0 && ds.labels[i] < 10)
            count[ds.labels[i]]++;
    for (int k = 0; k < 10; k++)
        CHECK(count[k] == 6000);
    uint64_t sum = 0, sum0 = 0;
    for (int64_t i = 0; i < ds.n * 784; i++)
        sum += ds.pixels[i];
    for (int i = 0; i < 784; i++)
        sum0 += ds.pixels[i];
    CHECK(sum == 3431114169ull);
    CHECK(sum0 == 76247);
    /* the mean the recipes normalize with (0.2860) */
    CHECK_NEAR((double)sum / 255.0 / (double)(ds.n * 784), 0.2860, 5e-5, 0);
    /* generous bound so a loaded CI machine does not flake; the brief asks well under 1 s */
    CHECK(dt < 2.0);
    rn_dataset_free(&ds);

    rc = rn_idx_load(&ds, FMNIST_DIR "/t10k-images-idx3-ubyte.gz",
                     FMNIST_DIR "/t10k-labels-idx1-ubyte.gz", err, sizeof err);
    CHECK(rc == 0);
    CHECK(ds.n == 10000 && ds.h == 28 && ds.w == 28 && ds.classes == 10);
    if (rc == 0)
        CHECK(ds.labels[0] == 9);
    rn_dataset_free(&ds);

    /* images and labels from different sets: the count mismatch names both files */
    expect_error(imgs, FMNIST_DIR "/t10k-labels-idx1-ubyte.gz", "10000 labels", "60000 images",
                 imgs);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rn_idx_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 2;
    }
    test_small_files();
    test_errors();
    test_fashion_mnist();
    for (int i = 0; i < n_created; i++)
        unlink(created[i]);
    rmdir(tmpdir);
    return rn_test_report("test_idx_reader");
}
