/* The loader: shuffles per epoch, batches, normalizes to float NCHW and prefetches on worker
 * threads.
 *
 * Each worker owns two batch slots, allocated at open. Counting batches from the position the
 * loader opened at, batch q is made by worker q % workers in slot q % (2 * workers), and the
 * caller takes them in order: while it trains on one, the workers prepare the next ones. A
 * worker runs across epoch boundaries, so the first batch of the next epoch is ready when the
 * caller asks for it. What a batch holds depends only on (seed, epoch, index), never on which
 * worker made it, so any number of workers gives the same batches.
 */
#include "clock.h"
#include "errorf.h"
#include "dataset.h"

#include <runner/plugin.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the shuffle stream apart from other streams keyed on (seed, epoch). */
#define RN_SHUFFLE_STREAM 0x73687566666c65ull /* "shuffle" */

enum { SLOT_FREE, SLOT_READY };

typedef struct loader_slot {
    rn_loader_batch b; /* what the caller sees; pointers reset to the buffers below per fill */
    float *x;
    int32_t *labels;
    int64_t *ids;
    float *soft;       /* rows*classes, or NULL */
    void *aux;         /* aux_bytes, or NULL */
    int state;         /* SLOT_*, under the loader's mutex */
    int rc;            /* 0, or the transform's error */
    char err[512];
} loader_slot;

typedef struct loader_worker {
    struct rn_loader *l;
    int id;
    pthread_t thread;
    int started;
    int64_t *perm;       /* the permutation of perm_epoch, made by this worker */
    int64_t perm_epoch;  /* -1 before the first */
} loader_worker;

struct rn_loader {
    /* configuration, read-only once the workers run */
    const rn_dataset *ds;
    int64_t batch_size, n_batches;
    int shuffle, drop_last;
    uint64_t seed;
    rn_batch_fn transform;
    void *transform_arg;
    void *(*host_alloc)(size_t bytes); /* batch buffers: x, labels, soft (see rn_loader_config) */
    void (*host_free)(void *p);
    int64_t classes;   /* soft target width, 0 = none */
    float *lut;        /* c*256: normalized value of each pixel byte, per channel */
    int64_t start_epoch, start_index;
    int n_workers, n_slots;

    loader_slot *slots;  /* n_slots = 2 * n_workers */
    loader_worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t slot_freed, slot_ready;
    int stop;          /* under mu */
    double make_s, transform_s; /* under mu */
    int64_t made;

    /* caller only */
    int64_t next_q;    /* the batch (counted from the open position) the caller takes next */
    int held;          /* slot the caller holds, or -1 */
    int64_t epoch, index;
    int failed;
    char err[512];
    double wait_s;
};

void rn_shuffle_indices(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch)
{
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    uint64_t key = rn_key3(seed, (uint64_t)epoch, RN_SHUFFLE_STREAM);
    /* Fisher-Yates; the counter is the position being filled. The modulo bias is below
     * (i+1)/2^64, far under anything a training run can notice. */
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rn_rand(key, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static void make_perm(const rn_loader *l, int64_t *perm, int64_t epoch)
{
    if (l->shuffle) {
        rn_shuffle_indices(perm, l->ds->n, l->seed, epoch);
    } else {
        for (int64_t i = 0; i < l->ds->n; i++)
            perm[i] = i;
    }
}

/* Fills a slot with batch `index` of `epoch` in perm's order. */
static int fill_slot(rn_loader *l, loader_slot *s, const int64_t *perm, int worker,
                     int64_t epoch, int64_t index, double *transform_s)
{
    const rn_dataset *ds = l->ds;
    int64_t start = index * l->batch_size;
    int64_t n = ds->n - start < l->batch_size ? ds->n - start : l->batch_size;
    int64_t hw = ds->h * ds->w, sample = ds->c * hw;

    rn_loader_batch *b = &s->b;
    b->x = s->x;
    b->labels = s->labels;
    b->ids = s->ids;
    b->n = n;
    b->epoch = epoch;
    b->index = index;
    b->c = ds->c;
    b->h = ds->h;
    b->w = ds->w;
    b->soft = s->soft;
    b->classes = l->classes;
    b->worker = worker;
    b->aux = s->aux;
    if (s->soft) memset(s->soft, 0, (size_t)(n * l->classes) * sizeof *s->soft);
    for (int64_t i = 0; i < n; i++) {
        int64_t id = perm[start + i];
        const uint8_t *src = ds->pixels + id * sample;
        float *dst = s->x + i * sample;
        s->ids[i] = id;
        s->labels[i] = ds->labels[id];
        if (s->soft) s->soft[i * l->classes + ds->labels[id]] = 1.0f;
        for (int64_t ch = 0; ch < ds->c; ch++) {
            const float *lut = l->lut + ch * 256;
            for (int64_t p = 0; p < hw; p++)
                dst[ch * hw + p] = lut[src[ch * hw + p]];
        }
    }
    if (!l->transform)
        return 0;
    s->err[0] = '\0';
    double t0 = rn_now_s();
    int rc = l->transform(l->transform_arg, b, s->err, sizeof s->err);
    *transform_s = rn_now_s() - t0;
    if (rc != 0 && s->err[0] == '\0')
        rn_errorf(s->err, sizeof s->err, "loader: transform failed (code %d) on batch %" PRId64
                " of epoch %" PRId64, rc, index, epoch);
    return rc;
}

static void *worker_main(void *arg)
{
    loader_worker *w = arg;
    rn_loader *l = w->l;
    for (int64_t q = w->id;; q += l->n_workers) {
        loader_slot *s = &l->slots[q % l->n_slots];
        pthread_mutex_lock(&l->mu);
        while (!l->stop && s->state != SLOT_FREE)
            pthread_cond_wait(&l->slot_freed, &l->mu);
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;

        double t0 = rn_now_s();
        int64_t pos = l->start_index + q;
        int64_t epoch = l->start_epoch + pos / l->n_batches, index = pos % l->n_batches;
        if (w->perm_epoch != epoch) {
            make_perm(l, w->perm, epoch);
            w->perm_epoch = epoch;
        }
        double transform_s = 0.0;
        int rc = fill_slot(l, s, w->perm, w->id, epoch, index, &transform_s);
        double made = rn_now_s() - t0;

        pthread_mutex_lock(&l->mu);
        l->make_s += made;
        l->transform_s += transform_s;
        l->made++;
        s->rc = rc;
        s->state = SLOT_READY;
        pthread_cond_broadcast(&l->slot_ready);
        pthread_mutex_unlock(&l->mu);
        if (rc != 0)
            break; /* the caller gets the error; this worker makes nothing more */
    }
    return NULL;
}

/* A batch buffer the caller reads (x, labels, soft): the config's allocator, or malloc. */
static void *batch_alloc(const rn_loader *l, size_t bytes)
{
    return l->host_alloc ? l->host_alloc(bytes) : malloc(bytes);
}

static void batch_free(const rn_loader *l, void *p)
{
    if (!p) return;
    if (l->host_free) l->host_free(p);
    else free(p);
}

static void loader_free(rn_loader *l)
{
    for (int k = 0; l->slots && k < l->n_slots; k++) {
        batch_free(l, l->slots[k].x);
        batch_free(l, l->slots[k].labels);
        free(l->slots[k].ids);
        batch_free(l, l->slots[k].soft);
        batch_free(l, l->slots[k].aux);
    }
    for (int k = 0; l->workers && k < l->n_workers; k++)
        free(l->workers[k].perm);
    free(l->slots);
    free(l->workers);
    free(l->lut);
    free(l);
}

/* Stops and joins the workers that started. */
static void stop_workers(rn_loader *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->slot_freed);
    pthread_mutex_unlock(&l->mu);
    for (int k = 0; k < l->n_workers; k++)
        if (l->workers[k].started)
            pthread_join(l->workers[k].thread, NULL);
    pthread_cond_destroy(&l->slot_ready);
    pthread_cond_destroy(&l->slot_freed);
    pthread_mutex_destroy(&l->mu);
}

static int check_config(const rn_loader_config *cfg, int64_t epoch, char *err, size_t errlen)
{
    const rn_dataset *ds = cfg ? cfg->ds : NULL;
    if (!ds || !ds->pixels || !ds->labels || ds->n <= 0 || ds->c <= 0 || ds->h <= 0 ||
        ds->w <= 0) {
        rn_errorf(err, errlen, "loader: empty or unloaded dataset");
        return -1;
    }
    if (cfg->batch_size < 1) {
        rn_errorf(err, errlen, "loader: batch_size must be at least 1, got %" PRId64,
                cfg->batch_size);
        return -1;
    }
    if (cfg->drop_last && ds->n < cfg->batch_size) {
        rn_errorf(err, errlen, "loader: batch_size %" PRId64 " with drop_last leaves no batch of %"
                PRId64 " samples", cfg->batch_size, ds->n);
        return -1;
    }
    if (epoch < 0) {
        rn_errorf(err, errlen, "loader: epoch must be >= 0, got %" PRId64, epoch);
        return -1;
    }
    if (cfg->workers < 0 || cfg->workers > RN_LOADER_MAX_WORKERS) {
        rn_errorf(err, errlen, "loader: workers must be in [1, %d] (0 means 1), got %d",
                  RN_LOADER_MAX_WORKERS, cfg->workers);
        return -1;
    }
    if (cfg->soft_classes > 0 && cfg->soft_classes < ds->classes) {
        rn_errorf(err, errlen, "loader: soft targets of %" PRId64 " classes cannot hold the "
                  "data's %" PRId64, cfg->soft_classes, ds->classes);
        return -1;
    }
    for (int64_t ch = 0; ch < ds->c; ch++) {
        float m = cfg->mean ? cfg->mean[ch] : 0.0f, sd = cfg->std ? cfg->std[ch] : 1.0f;
        if (!isfinite(m) || !isfinite(sd) || !(sd > 0.0f)) {
            rn_errorf(err, errlen, "loader: normalize channel %" PRId64
                    " needs a finite mean and a std > 0, got mean %g std %g", ch, m, sd);
            return -1;
        }
    }
    return 0;
}

int rn_loader_open(rn_loader **out, const rn_loader_config *cfg, int64_t epoch, char *err,
                   size_t errlen)
{
    return rn_loader_open_at(out, cfg, epoch, 0, err, errlen);
}

int rn_loader_open_at(rn_loader **out, const rn_loader_config *cfg, int64_t epoch, int64_t batch,
                      char *err, size_t errlen)
{
    *out = NULL;
    if (check_config(cfg, epoch, err, errlen))
        return -1;
    int64_t batches = cfg->drop_last ? cfg->ds->n / cfg->batch_size
                                     : (cfg->ds->n + cfg->batch_size - 1) / cfg->batch_size;
    if (batch < 0 || batch >= batches) {
        rn_errorf(err, errlen, "loader: batch %" PRId64 " is outside the epoch's %" PRId64
                  " batches", batch, batches);
        return -1;
    }
    const rn_dataset *ds = cfg->ds;
    rn_loader *l = calloc(1, sizeof *l);
    if (!l) {
        rn_errorf(err, errlen, "loader: out of memory");
        return -1;
    }
    l->ds = ds;
    l->batch_size = cfg->batch_size;
    l->shuffle = cfg->shuffle;
    l->drop_last = cfg->drop_last;
    l->seed = cfg->seed;
    l->transform = cfg->transform;
    l->transform_arg = cfg->transform_arg;
    if (cfg->host_alloc && cfg->host_free) {
        l->host_alloc = cfg->host_alloc;
        l->host_free = cfg->host_free;
    }
    l->classes = cfg->soft_classes > 0 ? cfg->soft_classes : 0;
    l->n_batches = cfg->drop_last ? ds->n / cfg->batch_size
                                  : (ds->n + cfg->batch_size - 1) / cfg->batch_size;
    l->start_epoch = l->epoch = epoch;
    l->start_index = l->index = batch;
    l->held = -1;
    l->n_workers = cfg->workers > 0 ? cfg->workers : 1;
    l->n_slots = 2 * l->n_workers;

    int64_t rows = cfg->batch_size < ds->n ? cfg->batch_size : ds->n;
    size_t sample = (size_t)(ds->c * ds->h * ds->w);
    l->slots = calloc((size_t)l->n_slots, sizeof *l->slots);
    l->workers = calloc((size_t)l->n_workers, sizeof *l->workers);
    l->lut = malloc((size_t)ds->c * 256 * sizeof *l->lut);
    int ok = l->slots && l->workers && l->lut;
    for (int k = 0; ok && k < l->n_slots; k++) {
        loader_slot *s = &l->slots[k];
        s->x = batch_alloc(l, (size_t)rows * sample * sizeof *s->x);
        s->labels = batch_alloc(l, (size_t)rows * sizeof *s->labels);
        s->ids = malloc((size_t)rows * sizeof *s->ids);
        ok = ok && s->x && s->labels && s->ids;
        if (cfg->aux_bytes) { /* read by the caller's device too: the batch allocator */
            s->aux = batch_alloc(l, cfg->aux_bytes);
            ok = ok && s->aux;
            if (s->aux) memset(s->aux, 0, cfg->aux_bytes);
        }
        if (l->classes) {
            s->soft = batch_alloc(l, (size_t)(rows * l->classes) * sizeof *s->soft);
            ok = ok && s->soft;
        }
    }
    for (int k = 0; ok && k < l->n_workers; k++) {
        l->workers[k] = (loader_worker){.l = l, .id = k, .perm_epoch = -1};
        l->workers[k].perm = malloc((size_t)ds->n * sizeof *l->workers[k].perm);
        ok = ok && l->workers[k].perm;
    }
    if (!ok) {
        rn_errorf(err, errlen, "loader: out of memory for %d batches of %" PRId64 " samples",
                  l->n_slots, rows);
        loader_free(l);
        return -1;
    }
    for (int64_t ch = 0; ch < ds->c; ch++) {
        float m = cfg->mean ? cfg->mean[ch] : 0.0f, sd = cfg->std ? cfg->std[ch] : 1.0f;
        for (int v = 0; v < 256; v++)
            l->lut[ch * 256 + v] = ((float)v / 255.0f - m) / sd;
    }

    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->slot_freed, NULL);
    pthread_cond_init(&l->slot_ready, NULL);
    /* Signals (Ctrl-C) belong to the training thread: the workers block them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int k = 0; rc == 0 && k < l->n_workers; k++) {
        rc = pthread_create(&l->workers[k].thread, NULL, worker_main, &l->workers[k]);
        l->workers[k].started = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        rn_errorf(err, errlen, "loader: cannot start a prefetch thread: %s", strerror(rc));
        stop_workers(l);
        loader_free(l);
        return -1;
    }
    *out = l;
    return 0;
}

int64_t rn_loader_batches(const rn_loader *l)
{
    return l->n_batches;
}

/* Hands the slot the caller held back to the loader thread. */
static void release_held(rn_loader *l)
{
    if (l->held < 0)
        return;
    pthread_mutex_lock(&l->mu);
    l->slots[l->held].state = SLOT_FREE;
    pthread_cond_broadcast(&l->slot_freed);
    pthread_mutex_unlock(&l->mu);
    l->held = -1;
}

int rn_loader_next(rn_loader *l, rn_loader_batch **b, char *err, size_t errlen)
{
    *b = NULL;
    if (l->failed) {
        rn_errorf(err, errlen, "%s", l->err);
        return -1;
    }
    release_held(l);
    if (l->index == l->n_batches) {
        l->index = 0;
        l->epoch++;
        return 0;
    }
    int slot = (int)(l->next_q % l->n_slots);
    loader_slot *s = &l->slots[slot];
    pthread_mutex_lock(&l->mu);
    if (s->state != SLOT_READY) {
        double t0 = rn_now_s();
        while (s->state != SLOT_READY)
            pthread_cond_wait(&l->slot_ready, &l->mu);
        l->wait_s += rn_now_s() - t0;
    }
    pthread_mutex_unlock(&l->mu);
    if (s->rc != 0) {
        l->failed = 1;
        snprintf(l->err, sizeof l->err, "%s", s->err);
        rn_errorf(err, errlen, "%s", l->err);
        return -1;
    }
    l->held = slot;
    l->next_q++;
    l->index++;
    *b = &s->b;
    return 1;
}

rn_loader_stats rn_loader_stats_get(rn_loader *l)
{
    rn_loader_stats st;
    pthread_mutex_lock(&l->mu);
    st.batches = l->made;
    st.taken = l->next_q;
    st.make_s = l->make_s;
    st.transform_s = l->transform_s;
    st.wait_s = l->wait_s;
    pthread_mutex_unlock(&l->mu);
    return st;
}

void rn_loader_close(rn_loader *l)
{
    if (!l)
        return;
    stop_workers(l);
    loader_free(l);
}
