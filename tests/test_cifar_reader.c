/* rn_cifar_load: archives in the exact layout of cifar-10-binary.tar.gz and
 * cifar-100-binary.tar.gz (written here with libarchive, a few records per file), the same files
 * extracted into a directory, and one clear line for each kind of bad input. */
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
#include <unistd.h>

#define REC_PIXELS 3072
#define C10_DIR "cifar-10-batches-bin"
#define C100_DIR "cifar-100-binary"

static char tmpdir[256];
static char created[64][320];
static int n_created;
static char dirs[8][320];
static int n_dirs;

static const char *tmp_path(const char *name)
{
    char *p = created[n_created++];
    snprintf(p, sizeof created[0], "%s/%s", tmpdir, name);
    return p;
}

static const char *tmp_dir(const char *name)
{
    char *p = dirs[n_dirs++];
    snprintf(p, sizeof dirs[0], "%s/%s", tmpdir, name);
    if (mkdir(p, 0700) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
        exit(2);
    }
    return p;
}

/* Pixel i of record r of file `file`: every byte differs between files, records and positions. */
static uint8_t pixel(int file, int r, int i)
{
    return (uint8_t)(file * 89 + r * 37 + i * 7 + (i >> 8) * 3);
}
static int label10(int file, int r) { return (file * 3 + r) % 10; }
static int fine100(int file, int r) { return (file * 17 + r * 29) % 100; }

/* A .bin file of n records; label_bytes 1 (CIFAR-10) or 2 (CIFAR-100: coarse = fine / 5). */
typedef struct bin {
    uint8_t *data;
    size_t len;
} bin;

static bin make_bin(int file, int n, int label_bytes)
{
    size_t rec = (size_t)label_bytes + REC_PIXELS;
    bin b = {malloc(rec * (size_t)n + 16), rec * (size_t)n};
    for (int r = 0; r < n; r++) {
        uint8_t *p = b.data + rec * (size_t)r;
        if (label_bytes == 1) {
            p[0] = (uint8_t)label10(file, r);
        } else {
            p[0] = (uint8_t)(fine100(file, r) / 5);
            p[1] = (uint8_t)fine100(file, r);
        }
        for (int i = 0; i < REC_PIXELS; i++) p[label_bytes + i] = pixel(file, r, i);
    }
    return b;
}

typedef struct entry {
    const char *name;
    const void *data; /* NULL: a directory */
    size_t len;
} entry;

enum { TAR = 0, TAR_GZ = 1, ZIP_STREAMED = 2 };

/* A tar (gzip'ed for TAR_GZ) holding the entries, in the given order; or a zip whose headers
 * carry no sizes (ZIP_STREAMED: the reader learns a member's size only by reading it). */
static void write_archive(const char *path, const entry *e, int n, int kind)
{
    struct archive *a = archive_write_new();
    if (kind == TAR_GZ)
        archive_write_add_filter_gzip(a);
    if (kind == ZIP_STREAMED)
        archive_write_set_format_zip(a);
    else
        archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
        fprintf(stderr, "cannot write %s: %s\n", path, archive_error_string(a));
        exit(2);
    }
    for (int i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, e[i].data ? AE_IFREG : AE_IFDIR);
        archive_entry_set_perm(ae, e[i].data ? 0644 : 0755);
        if (kind != ZIP_STREAMED)
            archive_entry_set_size(ae, e[i].data ? (la_int64_t)e[i].len : 0);
        if (archive_write_header(a, ae) != ARCHIVE_OK ||
            (e[i].data && archive_write_data(a, e[i].data, e[i].len) != (la_ssize_t)e[i].len)) {
            fprintf(stderr, "cannot write %s: %s\n", path, archive_error_string(a));
            exit(2);
        }
        archive_entry_free(ae);
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        fprintf(stderr, "cannot write %s: %s\n", path, archive_error_string(a));
        exit(2);
    }
    archive_write_free(a);
}

static void write_plain(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static const char META10[] =
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";

/* The CIFAR-10 files: index 0..4 data_batch_1..5 (5 records each), 5 test_batch (4 records). */
static bin c10[6];

/* The entries of cifar-10-binary.tar.gz in its own order (data_batch_2 and 5 come last). */
static int c10_entries(entry *e, int skip_batch, const bin *batch1)
{
    static char names[6][64];
    int n = 0;
    e[n++] = (entry){C10_DIR "/", NULL, 0};
    const int order[] = {0, -1, 2, 3, 5, -2, 1, 4};
    for (int i = 0; i < 8; i++) {
        int k = order[i];
        if (k == -1) {
            e[n++] = (entry){C10_DIR "/batches.meta.txt", META10, sizeof META10 - 1};
        } else if (k == -2) {
            e[n++] = (entry){C10_DIR "/readme.html", "<html></html>\n", 14};
        } else if (k != skip_batch) {
            if (k == 5)
                snprintf(names[k], sizeof names[k], C10_DIR "/test_batch.bin");
            else
                snprintf(names[k], sizeof names[k], C10_DIR "/data_batch_%d.bin", k + 1);
            const bin *b = k == 0 && batch1 ? batch1 : &c10[k];
            e[n++] = (entry){names[k], b->data, b->len};
        }
    }
    return n;
}

static void check_c10(const rn_dataset *ds, int first_file, int n_files, int per_file)
{
    CHECK(ds->n == (int64_t)n_files * per_file);
    CHECK(ds->c == 3 && ds->h == 32 && ds->w == 32 && ds->classes == 10);
    int pixels_ok = 1, labels_ok = 1;
    for (int f = 0; f < n_files && ds->n == (int64_t)n_files * per_file; f++)
        for (int r = 0; r < per_file; r++) {
            int64_t s = (int64_t)f * per_file + r;
            labels_ok &= ds->labels[s] == label10(first_file + f, r);
            for (int i = 0; i < REC_PIXELS; i++)
                pixels_ok &= ds->pixels[s * REC_PIXELS + i] == pixel(first_file + f, r, i);
        }
    CHECK(pixels_ok);
    CHECK(labels_ok);
}

static void load_ok(rn_dataset *ds, const char *path, const char *split, int variant)
{
    char err[512] = "";
    int rc = rn_cifar_load(ds, path, split, variant, err, sizeof err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "  %s %s: %s\n", path, split, err);
}

static void test_cifar10(void)
{
    for (int k = 0; k < 6; k++) c10[k] = make_bin(k, k == 5 ? 4 : 5, 1);
    entry e[16];
    int n = c10_entries(e, -1, NULL);
    const char *gz = tmp_path("cifar-10-binary.tar.gz"), *tar = tmp_path("cifar-10-binary.tar");
    write_archive(gz, e, n, TAR_GZ);
    write_archive(tar, e, n, TAR);
    uint8_t head[2] = {0, 0};
    FILE *f = fopen(gz, "rb");
    CHECK(f && fread(head, 1, 2, f) == 2);
    if (f) fclose(f);
    CHECK(head[0] == 0x1f && head[1] == 0x8b); /* really gzip */

    rn_dataset ds;
    const char *paths[2] = {gz, tar};
    for (int p = 0; p < 2; p++) {
        load_ok(&ds, paths[p], "train", 10);
        check_c10(&ds, 0, 5, 5); /* data_batch_1..5 in order, whatever the archive's order */
        rn_dataset_free(&ds);
        load_ok(&ds, paths[p], "test", 10);
        check_c10(&ds, 5, 1, 4);
        rn_dataset_free(&ds);
    }

    /* The test split needs only test_batch.bin. */
    const char *test_only = tmp_path("test-only.tar.gz");
    entry t[2] = {{C10_DIR "/test_batch.bin", c10[5].data, c10[5].len}, {"./other", "x", 1}};
    write_archive(test_only, t, 2, TAR_GZ);
    load_ok(&ds, test_only, "test", 10);
    check_c10(&ds, 5, 1, 4);
    rn_dataset_free(&ds);

    /* The extracted files: directly in a directory, or under cifar-10-batches-bin/. */
    const char *flat = tmp_dir("flat");
    const char *parent = tmp_dir("parent");
    char sub[400];
    snprintf(sub, sizeof sub, "%s/" C10_DIR, parent);
    CHECK(mkdir(sub, 0700) == 0);
    for (int k = 0; k < 6; k++) {
        char name[32], p1[480], p2[480];
        if (k == 5)
            snprintf(name, sizeof name, "test_batch.bin");
        else
            snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
        snprintf(p1, sizeof p1, "%s/%s", flat, name);
        snprintf(p2, sizeof p2, "%s/%s", sub, name);
        write_plain(p1, c10[k].data, c10[k].len);
        write_plain(p2, c10[k].data, c10[k].len);
    }
    load_ok(&ds, flat, "train", 10);
    check_c10(&ds, 0, 5, 5);
    rn_dataset_free(&ds);
    load_ok(&ds, parent, "test", 10);
    check_c10(&ds, 5, 1, 4);
    rn_dataset_free(&ds);
    load_ok(&ds, parent, "train", 10);
    check_c10(&ds, 0, 5, 5);
    rn_dataset_free(&ds);
}

static bin c100[2];
static void expect_error(const char *path, const char *split, int variant, const char *n1,
                         const char *n2);

static void test_cifar100(void)
{
    c100[0] = make_bin(0, 7, 2);
    c100[1] = make_bin(1, 3, 2);
    entry e[5] = {{C100_DIR "/", NULL, 0},
                  {C100_DIR "/coarse_label_names.txt", "aquatic_mammals\n", 16},
                  {C100_DIR "/test.bin", c100[1].data, c100[1].len},
                  {C100_DIR "/fine_label_names.txt", "apple\n", 6},
                  {C100_DIR "/train.bin", c100[0].data, c100[0].len}};
    const char *gz = tmp_path("cifar-100-binary.tar.gz");
    write_archive(gz, e, 5, TAR_GZ);
    rn_dataset ds;
    const int counts[2] = {7, 3};
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        load_ok(&ds, gz, splits[s], 100);
        CHECK(ds.n == counts[s] && ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.classes == 100);
        int ok = ds.n == counts[s];
        for (int r = 0; ok && r < counts[s]; r++) {
            ok &= ds.labels[r] == fine100(s, r); /* the fine label, not the coarse one */
            for (int i = 0; i < REC_PIXELS; i++)
                ok &= ds.pixels[r * REC_PIXELS + i] == pixel(s, r, i);
        }
        CHECK(ok);
        rn_dataset_free(&ds);
    }
    /* A zip without sizes in its headers: the members are read to their end. */
    const char *zip = tmp_path("cifar-100-binary.zip");
    write_archive(zip, e, 5, ZIP_STREAMED);
    load_ok(&ds, zip, "train", 100);
    CHECK(ds.n == 7 && ds.labels[6] == fine100(0, 6) &&
          ds.pixels[7 * REC_PIXELS - 1] == pixel(0, 6, REC_PIXELS - 1));
    rn_dataset_free(&ds);
    bin odd100 = make_bin(0, 2, 2);
    const char *oddzip = tmp_path("odd.zip");
    write_archive(oddzip, (entry[]){{C100_DIR "/train.bin", odd100.data, odd100.len - 5}}, 1,
                  ZIP_STREAMED);
    expect_error(oddzip, "train", 100, "6143 bytes is not a whole number of 3074-byte records",
                 NULL);
    free(odd100.data);

    const char *dir = tmp_dir("c100");
    char p[480];
    snprintf(p, sizeof p, "%s/test.bin", dir);
    write_plain(p, c100[1].data, c100[1].len);
    load_ok(&ds, dir, "test", 100);
    CHECK(ds.n == 3 && ds.labels[2] == fine100(1, 2));
    rn_dataset_free(&ds);
}

static void expect_error(const char *path, const char *split, int variant, const char *n1,
                         const char *n2)
{
    rn_dataset ds;
    memset(&ds, 0xab, sizeof ds);
    char err[768] = "";
    CHECK(rn_cifar_load(&ds, path, split, variant, err, sizeof err) != 0);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
    CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    const char *needles[3] = {path, n1, n2};
    for (int i = 0; i < 3; i++)
        if (needles[i] && !strstr(err, needles[i])) {
            CHECK(strstr(err, needles[i]) != NULL);
            fprintf(stderr, "  message: \"%s\"\n  lacks:   \"%s\"\n", err, needles[i]);
        }
    printf("  error ok: %s\n", err);
}

static void test_errors(void)
{
    char want[768];
    entry e[16];

    /* A member missing from the archive. */
    const char *no3 = tmp_path("no-batch-3.tar.gz");
    write_archive(no3, e, c10_entries(e, 2, NULL), TAR_GZ);
    snprintf(want, sizeof want, "%s: no " C10_DIR "/data_batch_3.bin in the archive", no3);
    expect_error(no3, "train", 10, want, NULL);

    /* A member that is not whole records. */
    bin odd = make_bin(0, 5, 1);
    odd.data[odd.len] = 7;
    odd.len += 1;
    const char *oddp = tmp_path("odd-size.tar.gz");
    write_archive(oddp, e, c10_entries(e, -1, &odd), TAR_GZ);
    snprintf(want, sizeof want, "%s: " C10_DIR "/data_batch_1.bin: 15366 bytes is not a whole "
             "number of 3073-byte records", oddp);
    expect_error(oddp, "train", 10, want, NULL);

    /* A label out of range (record 3 of data_batch_1 says 10). */
    bin badlab = make_bin(0, 5, 1);
    badlab.data[3 * 3073] = 10;
    const char *labp = tmp_path("bad-label.tar.gz");
    write_archive(labp, e, c10_entries(e, -1, &badlab), TAR_GZ);
    expect_error(labp, "train", 10, C10_DIR "/data_batch_1.bin: record 3: label 10 is out of "
                 "range 0..9", NULL);
    rn_dataset ds;
    load_ok(&ds, labp, "test", 10); /* the test split does not read data_batch_1 */
    check_c10(&ds, 5, 1, 4);
    rn_dataset_free(&ds);

    /* CIFAR-100: fine label 100, coarse label 20. */
    bin f100 = make_bin(0, 2, 2), c20 = make_bin(0, 2, 2);
    f100.data[3074 + 1] = 100;
    c20.data[0] = 20;
    const char *fp = tmp_path("bad-fine.tar.gz"), *cp = tmp_path("bad-coarse.tar.gz");
    write_archive(fp, (entry[]){{C100_DIR "/train.bin", f100.data, f100.len}}, 1, TAR_GZ);
    write_archive(cp, (entry[]){{C100_DIR "/train.bin", c20.data, c20.len}}, 1, TAR_GZ);
    expect_error(fp, "train", 100, C100_DIR "/train.bin: record 1: label 100 is out of range 0..99",
                 NULL);
    expect_error(cp, "train", 100, "record 0: coarse label 20 is out of range 0..19", NULL);
    /* CIFAR-10 records read as CIFAR-100 are not whole 3074-byte records. */
    const char *c10as100 = tmp_path("c10-as-c100.tar.gz");
    write_archive(c10as100, (entry[]){{C100_DIR "/train.bin", c10[0].data, c10[0].len}}, 1, TAR_GZ);
    expect_error(c10as100, "train", 100, "15365 bytes is not a whole number of 3074-byte records",
                 NULL);

    /* The other variant's archive: say so. */
    expect_error(tmp_path("cifar-100-binary.tar.gz"), "train", 10,
                 "no " C10_DIR "/data_batch_1.bin in the archive (it holds " C100_DIR
                 "/: is it CIFAR-100?)", NULL);
    expect_error(tmp_path("cifar-10-binary.tar.gz"), "test", 100,
                 "no " C100_DIR "/test.bin in the archive (it holds " C10_DIR "/: is it CIFAR-10?)",
                 NULL);

    /* Not an archive: text, a single .bin given by itself, a gzip of non-tar bytes. */
    const char *txt = tmp_path("notes.txt");
    write_plain(txt, "hello, world\n", 13);
    expect_error(txt, "train", 10, "not a CIFAR archive", "cifar-10-binary tar.gz");
    const char *single = tmp_path("test_batch.bin");
    write_plain(single, c10[5].data, c10[5].len);
    expect_error(single, "test", 10, "not a CIFAR archive", NULL);
    const char *empty = tmp_path("empty.tar.gz");
    write_plain(empty, "", 0);
    expect_error(empty, "train", 10, "empty file", NULL);
    expect_error(tmp_path("no-such.tar.gz"), "train", 10, strerror(ENOENT), NULL);

    /* A gzip cut in half: libarchive's read error, with the path. */
    bin big[6];
    for (int k = 0; k < 6; k++) {
        big[k] = make_bin(k, 20, 1);
        for (size_t i = 0; i < big[k].len; i++) /* poorly compressible */
            big[k].data[i] = (uint8_t)(((i + 7919u * (unsigned)k) * 2654435761u) >> 13) % 10;
    }
    entry be[6];
    for (int k = 0; k < 6; k++) {
        static char names[6][64];
        if (k == 5)
            snprintf(names[k], sizeof names[k], C10_DIR "/test_batch.bin");
        else
            snprintf(names[k], sizeof names[k], C10_DIR "/data_batch_%d.bin", k + 1);
        be[k] = (entry){names[k], big[k].data, big[k].len};
    }
    const char *cut = tmp_path("cut.tar.gz");
    write_archive(cut, be, 6, TAR_GZ);
    load_ok(&ds, cut, "train", 10); /* whole, it loads */
    CHECK(ds.n == 100);
    rn_dataset_free(&ds);
    struct stat st;
    CHECK(stat(cut, &st) == 0);
    CHECK(truncate(cut, st.st_size / 2) == 0);
    expect_error(cut, "train", 10, NULL, NULL);

    /* Bad arguments. */
    expect_error(tmp_path("cifar-10-binary.tar.gz"), "val", 10,
                 "CIFAR split \"val\" is neither \"train\" nor \"test\"", NULL);
    expect_error(tmp_path("cifar-10-binary.tar.gz"), "train", 20, "CIFAR variant 20 is neither",
                 NULL);

    /* Directories: a missing file, a file of the wrong size. */
    const char *d = tmp_dir("partial");
    char p[480];
    snprintf(p, sizeof p, "%s/data_batch_1.bin", d);
    write_plain(p, c10[0].data, c10[0].len);
    snprintf(p, sizeof p, "%s/data_batch_2.bin", d);
    write_plain(p, odd.data, odd.len);
    snprintf(want, sizeof want, "%s/data_batch_2.bin: 15366 bytes is not a whole number of "
             "3073-byte records", d);
    expect_error(d, "train", 10, want, NULL);
    write_plain(p, c10[1].data, c10[1].len);
    snprintf(want, sizeof want, "%s: no data_batch_3.bin (nor " C10_DIR "/data_batch_3.bin) in "
             "the directory", d);
    expect_error(d, "train", 10, want, NULL);

    /* A tiny error buffer is truncated, not overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(rn_cifar_load(&ds, no3, "train", 10, small, sizeof small) != 0);
    CHECK(small[7] == '\0' && strlen(small) == 7);
    CHECK(rn_cifar_load(&ds, no3, "train", 10, NULL, 0) != 0);

    free(odd.data);
    free(badlab.data);
    free(f100.data);
    free(c20.data);
    for (int k = 0; k < 6; k++) free(big[k].data);
}

/* The real archive, when RN_CIFAR10_ARCHIVE points at cifar-10-binary.tar.gz. */
static void test_real_cifar10(void)
{
    const char *path = getenv("RN_CIFAR10_ARCHIVE");
    if (!path || !*path) {
        printf("SKIP real CIFAR-10 checks: set RN_CIFAR10_ARCHIVE=/path/cifar-10-binary.tar.gz\n");
        return;
    }
    const char *splits[2] = {"train", "test"};
    const int64_t n[2] = {50000, 10000};
    for (int s = 0; s < 2; s++) {
        rn_dataset ds;
        load_ok(&ds, path, splits[s], 10);
        CHECK(ds.n == n[s]);
        int64_t count[10] = {0};
        for (int64_t i = 0; i < ds.n; i++) count[ds.labels[i]]++;
        for (int k = 0; k < 10; k++) CHECK(count[k] == n[s] / 10); /* balanced classes */
        printf("  real CIFAR-10 %s: %lld images\n", splits[s], (long long)ds.n);
        rn_dataset_free(&ds);
    }
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rn_cifar_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 2;
    }
    test_cifar10();
    test_cifar100();
    test_errors();
    test_real_cifar10();
    for (int k = 0; k < 6; k++) free(c10[k].data);
    for (int k = 0; k < 2; k++) free(c100[k].data);
    /* The directory tests wrote files of their own: remove the whole tree. */
    rn_test_rmtree(tmpdir);
    return rn_test_report("test_cifar_reader");
}
