/* Not a test: the loader and the augmentation alone, without a model, for scripts/bench
 * --loader. Reads the Fashion-MNIST training set (60,000 images), then for 1 and 2 workers runs
 * one epoch at batch 128 of the loader with no augmentation and with reflect crop + flip +
 * random erasing + CutMix/Mixup (the plugins loaded through the real registry), taking batches as
 * fast as they come. Prints one JSON line per case: {"augment": ..., "workers": ...,
 * "images_per_s": ..., "augment_ms_per_batch": ...}. Timings are never asserted.
 *   bench_loader [FASHION_MNIST_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "plugin_test_util.h"

#ifndef RN_BENCH_PLUGIN_DIR
#define RN_BENCH_PLUGIN_DIR "build/lib/runner/plugins"
#endif

enum { N_AUG = 4, CLASSES = 10 };

typedef struct chain {
    rn_instance aug[N_AUG];
    int n;
    float zero[1];
} chain;

static int transform(void *arg, rn_loader_batch *b, char *err, size_t errlen)
{
    chain *ch = (chain *)arg + b->worker; /* arg is the array of the workers' chains */
    rn_batch batch = {
        .struct_size = sizeof batch, .x = b->x, .n = b->n, .c = b->c, .h = b->h, .w = b->w,
        .labels = b->labels, .soft_targets = b->soft, .classes = b->classes,
        .sample_ids = b->ids, .epoch = b->epoch, .zero_value = ch->zero, .normalized = 1,
    };
    for (int i = 0; i < ch->n; i++) {
        batch.seed = rn_instance_seed(&ch->aug[i]);
        const rn_augment_api *api = ch->aug[i].plugin->api;
        if (api->apply(ch->aug[i].self, &batch) != RN_OK) {
            snprintf(err, errlen, "%s", rn_instance_error(&ch->aug[i]));
            return -1;
        }
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One chain per worker (an instance's apply is never concurrent). */
static void make_chain(chain *ch, const rn_registry *reg, int augment)
{
    memset(ch, 0, sizeof *ch);
    ch->zero[0] = (0.0f - 0.2860f) / 0.3530f;
    if (!augment) return;
    rn_value *specs[N_AUG] = {
        pt_str(pt_int(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", 28), "padding",
                      2), "padding_mode", "reflect"),
        pt_spec("data.augment[2]", "hflip"),
        pt_num(pt_spec("data.augment[3]", "random_erasing"), "p", 0.25),
        pt_spec("data.augment[4]", "cutmix_or_mixup"),
    };
    for (int i = 0; i < N_AUG; i++) pt_create(&ch->aug[i], reg, RN_KIND_AUGMENT, specs[i], NULL);
    ch->n = N_AUG;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    char images[1024], labels[1024], err[512];
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", dir);
    rn_dataset ds;
    if (rn_idx_load(&ds, images, labels, err, sizeof err)) {
        fprintf(stderr, "bench_loader: %s\n", err);
        return 1;
    }
    const char *pdir = RN_BENCH_PLUGIN_DIR;
    rn_registry *reg = NULL;
    if (rn_registry_scan(&reg, &pdir, 1, err, sizeof err)) {
        fprintf(stderr, "bench_loader: %s\n", err);
        return 1;
    }
    static const float mean[1] = {0.2860f}, stdv[1] = {0.3530f};
    for (int augment = 0; augment < 2; augment++)
        for (int workers = 1; workers <= 2; workers++) {
            chain chains[2];
            for (int w = 0; w < workers; w++) make_chain(&chains[w], reg, augment);
            rn_loader_config cfg = {.ds = &ds, .batch_size = 128, .shuffle = 1, .seed = 1,
                                    .mean = mean, .std = stdv, .workers = workers,
                                    .soft_classes = augment ? CLASSES : 0};
            cfg.transform = augment ? transform : NULL;
            cfg.transform_arg = chains;
            rn_loader *l;
            if (rn_loader_open(&l, &cfg, 0, err, sizeof err)) {
                fprintf(stderr, "bench_loader: %s\n", err);
                return 1;
            }
            double t0 = now_s();
            int64_t images_seen = 0;
            rn_loader_batch *b;
            int rc;
            while ((rc = rn_loader_next(l, &b, err, sizeof err)) == 1) images_seen += b->n;
            double dt = now_s() - t0;
            rn_loader_stats st = rn_loader_stats_get(l);
            rn_loader_close(l);
            if (rc < 0) {
                fprintf(stderr, "bench_loader: %s\n", err);
                return 1;
            }
            printf("{\"augment\": %s, \"workers\": %d, \"images_per_s\": %.0f, "
                   "\"make_ms_per_batch\": %.3f, \"augment_ms_per_batch\": %.3f}\n",
                   augment ? "true" : "false", workers, (double)images_seen / dt,
                   1e3 * st.make_s / (double)st.batches,
                   1e3 * st.transform_s / (double)st.batches);
            for (int w = 0; w < workers; w++)
                for (int i = 0; i < chains[w].n; i++) rn_instance_destroy(&chains[w].aug[i]);
        }
    rn_registry_free(reg);
    rn_dataset_free(&ds);
    return 0;
}
