/* In-memory image classification datasets and the prefetching loader. */
#ifndef RN_DATASET_H
#define RN_DATASET_H

#include <stdint.h>
#include <stddef.h>

typedef struct rn_dataset {
    int64_t n;          /* samples */
    int64_t c, h, w;    /* per-sample shape */
    uint8_t *pixels;    /* n*c*h*w bytes, raw 0..255 */
    int32_t *labels;    /* n labels */
    int64_t classes;    /* max label + 1 (at least) */
} rn_dataset;

/* Reads an idx image file and an idx label file (plain or .gz, through libarchive). Checks the
 * magic numbers (0x00000803 images, 0x00000801 labels), dimensions, lengths and that both files
 * agree on the count. On error writes one line naming the path and what was wrong, and leaves *ds
 * zeroed (nothing to free). On success *ds owns pixels and labels: free with rn_dataset_free. */
int rn_idx_load(rn_dataset *ds, const char *images_path, const char *labels_path,
                char *err, size_t errlen);
/* Reads a CIFAR split from the binary version as downloaded: archive_path is
 * cifar-10-binary.tar.gz (members cifar-10-batches-bin/data_batch_1..5.bin, test_batch.bin; records
 * of 1 label byte + 3072 pixels) or cifar-100-binary.tar.gz (cifar-100-binary/train.bin, test.bin;
 * records of a coarse and a fine label byte + 3072 pixels; the fine label is used), streamed through
 * libarchive without unpacking; or a directory holding the extracted .bin files (directly or under
 * cifar-10-batches-bin/ / cifar-100-binary/). split: "train" (CIFAR-10: the five batches in order,
 * 50000 images) or "test" (10000). variant: 10 or 100. The result is c = 3, h = w = 32, pixels in
 * CHW order as stored, classes = variant. Errors as for rn_idx_load: one line naming the archive
 * and member (a missing member, a size that is not whole records, a label out of range), *ds left
 * zeroed. While assembling, memory holds the raw files and the data set (about 2x the split). */
int rn_cifar_load(rn_dataset *ds, const char *archive_path, const char *split, int variant,
                  char *err, size_t errlen);
/* Keeps only the first n samples (for small test runs). */
void rn_dataset_truncate(rn_dataset *ds, int64_t n);
void rn_dataset_free(rn_dataset *ds);
/* Splits src into train and val (new copies; src is untouched): per class, round(fraction *
 * count) samples chosen by a shuffle seeded with `seed` go to val (at least one of a class with
 * two or more), the rest to train; both keep src's order. Errors (one line) when either side
 * would be empty. */
int rn_dataset_split(const rn_dataset *src, double fraction, uint64_t seed, rn_dataset *train,
                     rn_dataset *val, char *err, size_t errlen);
/* Keeps only the samples whose label is one of classes[0..n), in their order, and relabels them
 * by their place in that list (classes[i] becomes i), so a k-way head fits; ds->classes becomes
 * n. Works in place. Errors leave *ds untouched and write one line that starts with the item's
 * 1-based place ("[3]: ...", or ": ..." for the list) so the caller can prefix the key path:
 * an empty list, a class outside [0, ds->classes), a class given twice, no sample left. */
int rn_dataset_select_classes(rn_dataset *ds, const int32_t *classes, int n, char *err,
                              size_t errlen);

/* A batch produced by the loader: normalized floats, NCHW. */
typedef struct rn_loader_batch {
    float *x;          /* n*c*h*w */
    int32_t *labels;   /* n */
    int64_t *ids;      /* n dataset indices */
    int64_t n;
    int64_t epoch;
    int64_t index;     /* 0-based batch index within the epoch */
    int64_t c, h, w;   /* per-sample shape (the dataset's) */
    float *soft;       /* n*classes soft targets (one-hot of labels, then what the transform
                          wrote) when the config asked for them, else NULL */
    int64_t classes;   /* width of a soft row (0 without) */
    int worker;        /* the worker thread that made it, 0-based (a transform keeps per-worker
                          state apart with it) */
    void *aux;         /* the config's aux_bytes for the transform to leave per-batch results
                          in (a GPU run's augmentation plans), or NULL */
} rn_loader_batch;

/* Called on a worker thread for each batch after normalization (augmentation); with several
 * workers, concurrently for different batches (b->worker tells them apart). Returns 0 or an
 * error (message in err). */
typedef int (*rn_batch_fn)(void *arg, rn_loader_batch *b, char *err, size_t errlen);

typedef struct rn_loader rn_loader;

typedef struct rn_loader_config {
    const rn_dataset *ds;
    int64_t batch_size;
    int shuffle;             /* shuffle each epoch with (seed, epoch) */
    int drop_last;           /* drop a final partial batch */
    uint64_t seed;
    const float *mean, *std; /* c values each, applied to pixel/255; NULL = 0 and 1 */
    rn_batch_fn transform;   /* optional, runs on the loader thread */
    void *transform_arg;
    int64_t soft_classes;    /* > 0: each batch carries soft targets this wide, one-hot of the
                                labels before the transform (labels must be below it) */
    int workers;             /* prefetch threads, 1..RN_LOADER_MAX_WORKERS (0 = 1); the
                                transform runs on them, concurrently for different batches */
    /* Optional, both or neither: where the batches handed out live (x, labels, soft targets).
     * A GPU run passes pinned host memory (the backend's cudaHostAlloc), so that copying a
     * batch to the device is asynchronous. NULL: malloc/free. Called on the opening thread. */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    size_t aux_bytes;        /* > 0: each batch carries this many bytes (b->aux, zeroed at
                                open, from host_alloc when given, else malloc: 16-byte aligned)
                                that travel with it to the caller */
} rn_loader_config;

#define RN_LOADER_MAX_WORKERS 64

/* Where the loader's time went, for the run summary: the prefetch thread's time making batches
 * (reading, normalizing and the transform) and the caller's time waiting in rn_loader_next for
 * a batch that was not ready. Seconds, summed since open. */
typedef struct rn_loader_stats {
    int64_t batches;       /* batches made */
    int64_t taken;         /* batches handed to the caller */
    double make_s;         /* of which, in the transform (augmentation): */
    double transform_s;
    double wait_s;         /* caller blocked waiting (for the `taken` batches) */
} rn_loader_stats;

/* Starts a loader positioned at the beginning of `epoch`; the worker threads prepare the next
 * batches while the caller trains on the current one (two per worker, made in order). */
int rn_loader_open(rn_loader **out, const rn_loader_config *cfg, int64_t epoch,
                   char *err, size_t errlen);
/* The same, positioned at batch `batch` of `epoch` (what resuming a run mid-epoch needs): the
 * batches before it are neither made nor augmented, and the ones after are those an unbroken
 * loader gives, since the order and the augmentation depend only on (seed, epoch, sample). */
int rn_loader_open_at(rn_loader **out, const rn_loader_config *cfg, int64_t epoch, int64_t batch,
                      char *err, size_t errlen);
/* Batches per epoch. */
int64_t rn_loader_batches(const rn_loader *l);
/* Next batch of the current epoch: returns 1 with *b filled (valid until the next call), 0 at the
 * end of the epoch (the next call starts the next epoch), negative on error (message in err). */
int rn_loader_next(rn_loader *l, rn_loader_batch **b, char *err, size_t errlen);
/* The loader's timings so far (read on the caller's thread). */
rn_loader_stats rn_loader_stats_get(rn_loader *l);
void rn_loader_close(rn_loader *l);

/* The permutation of [0, n) used for `epoch` (Fisher-Yates driven by rn_rand(seed, epoch...)). */
void rn_shuffle_indices(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch);

#endif
