/* rn_loader and rn_shuffle_indices: exact batch contents against the permutation, epoch
 * semantics, determinism, drop_last, the transform hook and its errors, soft targets and the
 * timings, several workers and resuming with them, the bounded prefetch queue, and closing
 * mid-epoch (run under ASan for leaks). */
#include "dataset.h"
#include "rn_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static const float MEAN[2] = {0.25f, 0.5f};
static const float STD[2] = {0.5f, 0.25f};

/* n samples of c x 2 x 3 with distinct, known pixels and labels id*7 % 10. */
static void make_dataset(rn_dataset *ds, int64_t n, int64_t c, int64_t h, int64_t w)
{
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->classes = 10;
    ds->pixels = malloc((size_t)(n * c * h * w));
    ds->labels = malloc((size_t)n * sizeof *ds->labels);
    for (int64_t i = 0; i < n * c * h * w; i++)
        ds->pixels[i] = (uint8_t)(i * 53 + 7);
    for (int64_t i = 0; i < n; i++)
        ds->labels[i] = (int32_t)(i * 7 % 10);
}

static rn_loader_config config(const rn_dataset *ds, int64_t bs, int shuffle, int drop_last,
                               uint64_t seed)
{
    rn_loader_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ds = ds;
    cfg.batch_size = bs;
    cfg.shuffle = shuffle;
    cfg.drop_last = drop_last;
    cfg.seed = seed;
    cfg.mean = MEAN;
    cfg.std = STD;
    return cfg;
}

static int is_permutation(const int64_t *idx, int64_t n)
{
    char *seen = calloc((size_t)n + 1, 1);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= n || seen[idx[i]])
            ok = 0;
        else
            seen[idx[i]] = 1;
    }
    free(seen);
    return ok;
}

/* Batch `index` must hold samples perm[index*bs ...] with labels, ids and normalized pixels
 * (pixel/255 - mean[c]) / std[c], plus `offset` (what the test transform adds). */
static void check_batch(const rn_loader_batch *b, const rn_dataset *ds, const int64_t *perm,
                        int64_t bs, int64_t epoch, int64_t index, int64_t n_expected,
                        const float *mean, const float *std, double offset)
{
    CHECK(b->epoch == epoch);
    CHECK(b->index == index);
    CHECK(b->n == n_expected);
    CHECK(b->c == ds->c && b->h == ds->h && b->w == ds->w);
    int64_t hw = ds->h * ds->w, bad_ids = 0, bad_labels = 0, bad_x = 0;
    for (int64_t i = 0; i < b->n; i++) {
        int64_t id = perm[index * bs + i];
        bad_ids += b->ids[i] != id;
        bad_labels += b->labels[i] != ds->labels[id];
        for (int64_t ch = 0; ch < ds->c; ch++) {
            double m = mean ? mean[ch] : 0.0, s = std ? std[ch] : 1.0;
            for (int64_t p = 0; p < hw; p++) {
                double px = ds->pixels[(id * ds->c + ch) * hw + p];
                double want = (px / 255.0 - m) / s + offset;
                double got = b->x[(i * ds->c + ch) * hw + p];
                bad_x += !(got >= want - 1e-6 - 1e-6 * (want < 0 ? -want : want) &&
                           got <= want + 1e-6 + 1e-6 * (want < 0 ? -want : want));
            }
        }
    }
    CHECK(bad_ids == 0);
    CHECK(bad_labels == 0);
    CHECK(bad_x == 0);
}

static void test_shuffle(void)
{
    enum { N = 1000 };
    static int64_t a[N], b[N], c[N];
    rn_shuffle_indices(a, N, 42, 0);
    rn_shuffle_indices(b, N, 42, 1);
    rn_shuffle_indices(c, N, 42, 0);
    CHECK(is_permutation(a, N) && is_permutation(b, N));
    CHECK(memcmp(a, c, sizeof a) == 0); /* same (seed, epoch), same order */
    int differ = 0, moved = 0;
    for (int i = 0; i < N; i++) {
        differ += a[i] != b[i];
        moved += a[i] != i;
    }
    CHECK(differ > N * 9 / 10); /* epochs differ almost everywhere (expected 999) */
    CHECK(moved > N * 9 / 10);
    rn_shuffle_indices(c, N, 43, 0);
    differ = 0;
    for (int i = 0; i < N; i++)
        differ += a[i] != c[i];
    CHECK(differ > N * 9 / 10); /* another seed, another order */

    /* uniform over all 24 orders of 4 items: chi-square over 24000 epochs, 23 degrees of
     * freedom, 49.73 is the 0.1% critical value (deterministic: the seed is fixed) */
    int64_t counts[24] = {0}, p[4];
    for (int64_t e = 0; e < 24000; e++) {
        rn_shuffle_indices(p, 4, 7, e);
        /* Lehmer code of the permutation */
        int code = 0;
        for (int i = 0; i < 4; i++) {
            int smaller = 0;
            for (int j = i + 1; j < 4; j++)
                smaller += p[j] < p[i];
            code = code * (4 - i) + smaller;
        }
        counts[code]++;
    }
    double chi2 = 0;
    for (int k = 0; k < 24; k++)
        chi2 += (double)(counts[k] - 1000) * (double)(counts[k] - 1000) / 1000.0;
    printf("  shuffle chi-square over 24 orders: %.2f (critical 49.73)\n", chi2);
    CHECK(chi2 < 49.73);

    rn_shuffle_indices(p, 1, 1, 0);
    CHECK(p[0] == 0);
    rn_shuffle_indices(p, 0, 1, 0); /* nothing to do, must not touch p */
}

static void test_epochs(void)
{
    rn_dataset ds;
    make_dataset(&ds, 10, 2, 2, 3);
    rn_loader_config cfg = config(&ds, 4, 1, 0, 1234);
    rn_loader *l;
    char err[256] = "";
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_batches(l) == 3);
    int64_t perm[10], orders[3][10];
    float *bufs[3] = {NULL, NULL, NULL};
    int nbufs = 0;
    for (int64_t e = 0; e < 3; e++) {
        rn_shuffle_indices(perm, 10, 1234, e);
        int64_t got = 0;
        rn_loader_batch *b;
        for (int64_t k = 0; k < 3; k++) {
            CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
            check_batch(b, &ds, perm, 4, e, k, k < 2 ? 4 : 2, MEAN, STD, 0.0);
            for (int64_t i = 0; i < b->n && got < 10; i++)
                orders[e][got++] = b->ids[i];
            int known = 0;
            for (int j = 0; j < nbufs; j++)
                known |= bufs[j] == b->x;
            if (!known && nbufs < 3)
                bufs[nbufs++] = b->x;
        }
        CHECK(got == 10);
        CHECK(is_permutation(orders[e], 10)); /* every id exactly once */
        CHECK(rn_loader_next(l, &b, err, sizeof err) == 0); /* end of epoch */
        CHECK(b == NULL);
    }
    CHECK(memcmp(orders[0], orders[1], sizeof orders[0]) != 0);
    CHECK(memcmp(orders[1], orders[2], sizeof orders[0]) != 0);
    CHECK(nbufs == 2); /* two preallocated buffers alternate; nothing allocated per batch */
    rn_loader_close(l);

    /* the same seed gives the same order; another seed another */
    for (uint64_t seed = 1234; seed <= 1235; seed++) {
        cfg.seed = seed;
        CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
        int64_t order[20], got = 0;
        rn_loader_batch *b;
        for (int e = 0; e < 2; e++) {
            while (rn_loader_next(l, &b, err, sizeof err) == 1)
                for (int64_t i = 0; i < b->n; i++)
                    order[got++] = b->ids[i];
        }
        CHECK(got == 20);
        int same = memcmp(order, orders[0], sizeof orders[0]) == 0 &&
                   memcmp(order + 10, orders[1], sizeof orders[1]) == 0;
        CHECK(seed == 1234 ? same : !same);
        rn_loader_close(l);
    }

    /* opening at epoch 5 starts with that epoch's permutation */
    cfg.seed = 1234;
    CHECK(rn_loader_open(&l, &cfg, 5, err, sizeof err) == 0);
    rn_shuffle_indices(perm, 10, 1234, 5);
    rn_loader_batch *b;
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    check_batch(b, &ds, perm, 4, 5, 0, 4, MEAN, STD, 0.0);
    rn_loader_close(l);
    rn_dataset_free(&ds);
}

static void test_drop_last_and_order(void)
{
    rn_dataset ds;
    make_dataset(&ds, 10, 2, 2, 3);
    char err[256] = "";
    rn_loader *l;
    rn_loader_batch *b;
    int64_t perm[10];

    rn_loader_config cfg = config(&ds, 4, 1, 1, 99);
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_batches(l) == 2);
    for (int64_t e = 0; e < 2; e++) {
        rn_shuffle_indices(perm, 10, 99, e);
        for (int64_t k = 0; k < 2; k++) {
            CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
            check_batch(b, &ds, perm, 4, e, k, 4, MEAN, STD, 0.0);
        }
        CHECK(rn_loader_next(l, &b, err, sizeof err) == 0); /* 2 leftover samples dropped */
    }
    rn_loader_close(l);

    /* no shuffle: dataset order; no mean/std: pixel/255; a batch larger than the dataset */
    cfg = config(&ds, 32, 0, 0, 99);
    cfg.mean = cfg.std = NULL;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_batches(l) == 1);
    for (int64_t i = 0; i < 10; i++)
        perm[i] = i;
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    check_batch(b, &ds, perm, 32, 0, 0, 10, NULL, NULL, 0.0);
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 0);
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    CHECK(b->epoch == 1 && b->n == 10 && b->ids[3] == 3);
    rn_loader_close(l);

    /* exact division: no partial batch either way */
    cfg = config(&ds, 5, 1, 0, 3);
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_batches(l) == 2);
    rn_loader_close(l);
    rn_dataset_free(&ds);
}

typedef struct probe {
    pthread_t main_thread;
    atomic_int calls;
    atomic_int on_main_thread;
    int fail_at;       /* batch index to fail at, or -1 */
    int silent;        /* fail without a message */
} probe;

static int probe_fn(void *arg, rn_loader_batch *b, char *err, size_t errlen)
{
    probe *p = arg;
    atomic_fetch_add(&p->calls, 1);
    if (pthread_equal(pthread_self(), p->main_thread))
        atomic_store(&p->on_main_thread, 1);
    if (b->index == p->fail_at) {
        if (!p->silent)
            snprintf(err, errlen, "boom: batch %lld of epoch %lld", (long long)b->index,
                     (long long)b->epoch);
        return -1;
    }
    for (int64_t i = 0; i < b->n * b->c * b->h * b->w; i++)
        b->x[i] += 1.0f;
    return 0;
}

static void wait_calls(probe *p, int n)
{
    for (int i = 0; i < 5000 && atomic_load(&p->calls) < n; i++)
        usleep(1000);
}

static void test_transform(void)
{
    rn_dataset ds;
    make_dataset(&ds, 10, 2, 2, 3);
    char err[256] = "";
    rn_loader *l;
    rn_loader_batch *b;
    int64_t perm[10];
    probe p = {.main_thread = pthread_self(), .fail_at = -1};

    rn_loader_config cfg = config(&ds, 4, 1, 0, 5);
    cfg.transform = probe_fn;
    cfg.transform_arg = &p;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    rn_shuffle_indices(perm, 10, 5, 0);
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    check_batch(b, &ds, perm, 4, 0, 0, 4, MEAN, STD, 1.0); /* after normalization: +1 */

    /* prefetch: batch 1 gets prepared while the caller holds batch 0, and the queue of two
     * buffers stops the thread there */
    wait_calls(&p, 2);
    CHECK(atomic_load(&p.calls) == 2);
    usleep(50 * 1000);
    CHECK(atomic_load(&p.calls) == 2);
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    check_batch(b, &ds, perm, 4, 0, 1, 4, MEAN, STD, 1.0);
    wait_calls(&p, 3);
    CHECK(atomic_load(&p.calls) == 3);
    CHECK(atomic_load(&p.on_main_thread) == 0); /* it runs on the loader thread */
    rn_loader_close(l); /* while the thread waits for a free buffer */

    /* an error on batch 1 reaches the caller with the transform's message, and stays */
    atomic_store(&p.calls, 0);
    p.fail_at = 1;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    CHECK(b->index == 0);
    err[0] = '\0';
    CHECK(rn_loader_next(l, &b, err, sizeof err) < 0);
    CHECK(b == NULL);
    CHECK(strcmp(err, "boom: batch 1 of epoch 0") == 0);
    err[0] = '\0';
    CHECK(rn_loader_next(l, &b, err, sizeof err) < 0);
    CHECK(strcmp(err, "boom: batch 1 of epoch 0") == 0);
    usleep(20 * 1000);
    CHECK(atomic_load(&p.calls) == 2); /* nothing is produced after the error */
    rn_loader_close(l);

    /* an error without a message still says what failed */
    p.silent = 1;
    p.fail_at = 0;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_next(l, &b, err, sizeof err) < 0);
    CHECK(strstr(err, "transform failed (code -1) on batch 0 of epoch 0") != NULL);
    rn_loader_close(l);
    rn_dataset_free(&ds);
}

/* A transform that mixes targets the way CutMix does (row i takes half of row i+1's) and sleeps,
 * so that the caller waits. */
static int mix_fn(void *arg, rn_loader_batch *b, char *err, size_t errlen)
{
    (void)arg, (void)err, (void)errlen;
    if (!b->soft || b->classes != 12) return -1;
    for (int64_t i = 0; i + 1 < b->n; i++)
        for (int64_t j = 0; j < b->classes; j++)
            b->soft[i * b->classes + j] =
                0.5f * b->soft[i * b->classes + j] + 0.5f * b->soft[(i + 1) * b->classes + j];
    usleep(20 * 1000);
    return 0;
}

/* Soft targets: one-hot rows of the labels (12 wide for 10 classes: the model's outputs may be
 * more) before the transform, what it wrote after; none without soft_classes; too narrow is
 * refused. The timings count the batches made, and the 20 ms sleeps show in the transform time
 * and in the caller's wait (lower bounds only: the sleeps guarantee them). */
static void test_soft_targets(void)
{
    rn_dataset ds;
    make_dataset(&ds, 10, 2, 2, 3);
    char err[256] = "";
    rn_loader *l;
    rn_loader_batch *b;
    int64_t perm[10];
    rn_loader_config cfg = config(&ds, 4, 1, 0, 5);
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
    CHECK(b->soft == NULL && b->classes == 0);
    rn_loader_close(l);

    cfg.soft_classes = 12;
    cfg.transform = mix_fn;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    rn_shuffle_indices(perm, 10, 5, 0);
    int64_t seen = 0;
    while (rn_loader_next(l, &b, err, sizeof err) == 1) {
        CHECK(b->classes == 12);
        for (int64_t i = 0; i < b->n; i++) {
            int32_t y = ds.labels[perm[seen + i]];
            int32_t y2 = i + 1 < b->n ? ds.labels[perm[seen + i + 1]] : y;
            for (int64_t j = 0; j < 12; j++) {
                float want = (i + 1 < b->n ? 0.5f : 1.0f) * (float)(j == y) +
                             (i + 1 < b->n ? 0.5f : 0.0f) * (float)(j == y2);
                CHECK(b->soft[i * 12 + j] == want);
            }
        }
        seen += b->n;
    }
    CHECK(seen == 10);
    rn_loader_stats st = rn_loader_stats_get(l);
    CHECK(st.batches >= 3);
    CHECK(st.transform_s >= 0.018 * (double)st.batches);
    CHECK(st.make_s >= st.transform_s);
    CHECK(st.wait_s >= 0.018); /* 60 ms of sleeps against microseconds of checking */
    rn_loader_close(l);

    cfg.soft_classes = 9;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) != 0);
    CHECK(strstr(err, "soft targets of 9 classes cannot hold the data's 10") != NULL);
    rn_dataset_free(&ds);
}

/* A transform whose output depends on (epoch, sample id) only, counting the workers it ran on. */
typedef struct by_worker {
    atomic_int calls[4];
} by_worker;

static int keyed_fn(void *arg, rn_loader_batch *b, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    by_worker *bw = arg;
    if (b->worker < 0 || b->worker >= 4) return -1;
    atomic_fetch_add(&bw->calls[b->worker], 1);
    for (int64_t i = 0; i < b->n; i++)
        b->x[i * b->c * b->h * b->w] += (float)((b->ids[i] * 31 + b->epoch * 7) % 13);
    return 0;
}

/* Collects `count` batches (x, ids, labels) from a loader opened at (epoch, batch). */
static float *collect(const rn_loader_config *cfg, int64_t epoch, int64_t batch, int count,
                      int64_t sample)
{
    char err[256] = "";
    rn_loader *l;
    rn_loader_batch *b;
    int64_t rows = cfg->batch_size * (sample + 2);
    float *out = calloc((size_t)(count * rows), sizeof *out);
    CHECK(rn_loader_open_at(&l, cfg, epoch, batch, err, sizeof err) == 0);
    for (int k = 0; k < count;) {
        int rc = rn_loader_next(l, &b, err, sizeof err);
        CHECK(rc >= 0);
        if (rc <= 0) continue; /* an epoch's end */
        float *o = out + k * rows;
        memcpy(o, b->x, (size_t)(b->n * sample) * sizeof *o);
        for (int64_t i = 0; i < b->n; i++) {
            o[cfg->batch_size * sample + i] = (float)b->ids[i];
            o[cfg->batch_size * (sample + 1) + i] = (float)b->labels[i] + 0.5f;
        }
        k++;
    }
    rn_loader_close(l);
    return out;
}

/* Workers: 1, 2 and 3 workers give the same batches over three epochs, in order, and each
 * worker of 3 made some; opening at (1, 4), as a resume does, gives the unbroken loader's
 * batches from there; 0 workers is one, 65 is refused. */
static void test_workers(void)
{
    rn_dataset ds;
    make_dataset(&ds, 30, 2, 2, 3);
    int64_t sample = 2 * 2 * 3, per_epoch = 8; /* 30 samples in batches of 4: 7 full + 2 */
    int count = 3 * (int)per_epoch;
    by_worker bw;
    memset(&bw, 0, sizeof bw);
    rn_loader_config cfg = config(&ds, 4, 1, 0, 99);
    cfg.transform = keyed_fn;
    cfg.transform_arg = &bw;
    size_t bytes = (size_t)(count * cfg.batch_size * (sample + 2)) * sizeof(float);
    cfg.workers = 1;
    float *one = collect(&cfg, 0, 0, count, sample);
    for (int w = 2; w <= 3; w++) {
        memset(&bw, 0, sizeof bw);
        cfg.workers = w;
        float *many = collect(&cfg, 0, 0, count, sample);
        CHECK(memcmp(one, many, bytes) == 0);
        for (int k = 0; k < w; k++) CHECK(atomic_load(&bw.calls[k]) > 0);
        free(many);
    }
    cfg.workers = 2;
    size_t skip = (size_t)((per_epoch + 4) * cfg.batch_size * (sample + 2));
    float *resumed = collect(&cfg, 1, 4, count - (int)per_epoch - 4, sample);
    CHECK(memcmp(one + skip, resumed, bytes - skip * sizeof(float)) == 0);
    free(resumed);
    cfg.workers = 0;
    float *zero = collect(&cfg, 0, 0, count, sample);
    CHECK(memcmp(one, zero, bytes) == 0);
    free(zero);
    free(one);

    char err[256] = "";
    rn_loader *l;
    cfg.workers = 65;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) != 0);
    CHECK(strstr(err, "workers must be in [1, 64] (0 means 1), got 65") != NULL);
    rn_dataset_free(&ds);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_close_midway(void)
{
    rn_dataset ds;
    make_dataset(&ds, 1000, 1, 28, 28);
    char err[256] = "";
    rn_loader_config cfg = config(&ds, 16, 1, 0, 8);
    double t0 = now_s();
    int opened = 0;
    for (int i = 0; i < 60; i++) {
        rn_loader *l;
        rn_loader_batch *b;
        if (rn_loader_open(&l, &cfg, i, err, sizeof err) != 0)
            continue;
        opened++;
        for (int k = 0; k < i % 4; k++)
            CHECK(rn_loader_next(l, &b, err, sizeof err) == 1);
        rn_loader_close(l); /* mid-epoch, the thread possibly mid-batch or waiting */
    }
    CHECK(opened == 60);
    double dt = now_s() - t0;
    printf("  60 open/close mid-epoch: %.3f s\n", dt);
    CHECK(dt < 10.0);
    rn_loader_close(NULL);
    rn_dataset_free(&ds);
}

static void expect_open_error(const rn_loader_config *cfg, int64_t epoch, const char *needle)
{
    rn_loader *l = (rn_loader *)&l;
    char err[256] = "";
    CHECK(rn_loader_open(&l, cfg, epoch, err, sizeof err) != 0);
    CHECK(l == NULL);
    CHECK(strstr(err, needle) != NULL);
    printf("  open error ok: %s\n", err);
}

static void test_open_errors(void)
{
    rn_dataset ds, empty;
    make_dataset(&ds, 10, 2, 2, 3);
    memset(&empty, 0, sizeof empty);
    rn_loader_config cfg = config(&ds, 0, 1, 0, 1);
    expect_open_error(&cfg, 0, "batch_size must be at least 1, got 0");
    cfg = config(&ds, 11, 1, 1, 1);
    expect_open_error(&cfg, 0, "batch_size 11 with drop_last leaves no batch of 10 samples");
    cfg = config(&empty, 4, 1, 0, 1);
    expect_open_error(&cfg, 0, "empty or unloaded dataset");
    cfg = config(&ds, 4, 1, 0, 1);
    expect_open_error(&cfg, -1, "epoch must be >= 0");
    const float zero_std[2] = {1.0f, 0.0f};
    cfg.std = zero_std;
    expect_open_error(&cfg, 0, "normalize channel 1 needs a finite mean and a std > 0");
    rn_dataset_free(&ds);
}

/* One full epoch of Fashion-MNIST train: counts, and normalization with the data set's own
 * mean/std gives mean ~0 and std ~1. */
static void test_fashion_mnist_epoch(void)
{
    const char *imgs = FMNIST_DIR "/train-images-idx3-ubyte.gz";
    const char *labs = FMNIST_DIR "/train-labels-idx1-ubyte.gz";
    if (access(imgs, R_OK) != 0 || access(labs, R_OK) != 0) {
        printf("SKIP Fashion-MNIST epoch: %s not readable (install dataset-fashion-mnist)\n",
               imgs);
        return;
    }
    rn_dataset ds;
    char err[256] = "";
    if (rn_idx_load(&ds, imgs, labs, err, sizeof err) != 0) {
        CHECK(!"load Fashion-MNIST");
        fprintf(stderr, "  %s\n", err);
        return;
    }
    const float mean = 0.2860f, sd = 0.3530f;
    rn_loader_config cfg = config(&ds, 128, 1, 0, 2024);
    cfg.mean = &mean;
    cfg.std = &sd;
    rn_loader *l;
    CHECK(rn_loader_open(&l, &cfg, 0, err, sizeof err) == 0);
    CHECK(rn_loader_batches(l) == 469);
    rn_loader_batch *b;
    double s = 0, s2 = 0, t0 = now_s();
    int64_t samples = 0, batches = 0, last_n = 0, label_sum = 0;
    char *seen = calloc((size_t)ds.n, 1);
    int64_t dup = 0;
    while (rn_loader_next(l, &b, err, sizeof err) == 1) {
        for (int64_t i = 0; i < b->n * 784; i++) {
            s += b->x[i];
            s2 += (double)b->x[i] * b->x[i];
        }
        for (int64_t i = 0; i < b->n; i++) {
            dup += seen[b->ids[i]]++;
            label_sum += b->labels[i];
        }
        samples += b->n;
        last_n = b->n;
        batches++;
    }
    double dt = now_s() - t0;
    double m = s / (double)(samples * 784), var = s2 / (double)(samples * 784) - m * m;
    printf("  Fashion-MNIST epoch: %lld batches in %.3f s (%.0f images/s), mean %.5f std %.5f\n",
           (long long)batches, dt, (double)samples / dt, m, var > 0 ? sqrt(var) : 0.0);
    CHECK(samples == 60000 && batches == 469 && last_n == 60000 - 468 * 128);
    CHECK(dup == 0);
    CHECK(label_sum == 6000 * 45); /* 6000 of each class 0..9 */
    CHECK_NEAR(m, 0.0, 2e-3, 0);
    CHECK_NEAR(sqrt(var), 1.0, 5e-3, 0);
    free(seen);
    rn_loader_close(l);
    rn_dataset_free(&ds);
}

/* The allocator hook (pinned memory on a GPU run): every batch buffer handed out comes from it,
 * each is given back once at close, and the batches are the same as with malloc. */
static atomic_int hook_allocs, hook_frees;
static void *hook_alloc(size_t bytes)
{
    atomic_fetch_add(&hook_allocs, 1);
    unsigned char *p = malloc(bytes + 64);
    if (!p) return NULL;
    memcpy(p, "rn-hook", 8); /* a tag 64 bytes before what the loader gets */
    return p + 64;
}
static void hook_free(void *q)
{
    unsigned char *p = (unsigned char *)q - 64;
    CHECK(memcmp(p, "rn-hook", 8) == 0);
    atomic_fetch_add(&hook_frees, 1);
    free(p);
}
static int from_hook(const void *q) { return memcmp((const unsigned char *)q - 64, "rn-hook", 8) == 0; }

static void test_host_alloc(void)
{
    rn_dataset ds;
    make_dataset(&ds, 23, 2, 3, 3);
    char err[256] = "";
    rn_loader *a, *h;
    rn_loader_batch *ba, *bh;
    rn_loader_config cfg = config(&ds, 5, 1, 0, 9);
    cfg.soft_classes = 12;
    cfg.transform = mix_fn;
    cfg.workers = 2;
    CHECK(rn_loader_open(&a, &cfg, 0, err, sizeof err) == 0);
    cfg.host_alloc = hook_alloc;
    cfg.host_free = hook_free;
    CHECK(rn_loader_open(&h, &cfg, 0, err, sizeof err) == 0);
    /* 2 workers: 4 slots of x, labels and soft targets */
    CHECK(atomic_load(&hook_allocs) == 12);
    int same = 1, hooked = 1, batches = 0;
    for (int e = 0; e < 2; e++) {
        int ra, rh;
        while ((ra = rn_loader_next(a, &ba, err, sizeof err)) == 1 &&
               (rh = rn_loader_next(h, &bh, err, sizeof err)) == 1) {
            batches++;
            same &= ba->n == bh->n && memcmp(ba->x, bh->x, (size_t)(ba->n * 18) * 4) == 0 &&
                    memcmp(ba->labels, bh->labels, (size_t)ba->n * 4) == 0 &&
                    memcmp(ba->soft, bh->soft, (size_t)(ba->n * 12) * 4) == 0;
            hooked &= from_hook(bh->x) && from_hook(bh->labels) && from_hook(bh->soft);
        }
        CHECK(ra == 0);
        CHECK(rn_loader_next(h, &bh, err, sizeof err) == 0);
    }
    CHECK(batches == 10);
    CHECK(same);
    CHECK(hooked);
    rn_loader_close(a);
    rn_loader_close(h);
    CHECK(atomic_load(&hook_frees) == 12);
    rn_dataset_free(&ds);
}

int main(void)
{
    alarm(300); /* a hang (e.g. a join that never returns) fails the test instead of blocking CI */
    test_shuffle();
    test_epochs();
    test_drop_last_and_order();
    test_transform();
    test_soft_targets();
    test_workers();
    test_close_midway();
    test_open_errors();
    test_fashion_mnist_epoch();
    test_host_alloc();
    return rn_test_report("test_loader");
}
