/* The run: everything a recipe asked for, prepared (and so validated) before the first step, and
 * the one loop that serves every stage. */
#ifndef RN_TRAIN_H
#define RN_TRAIN_H

#include <signal.h>
#include <stdio.h>
#include "dataset.h"
#include "grad_scaler.h"
#include "device.h"
#include "metrics.h"
#include "model.h"
#include "plan.h"
#include "grads.h"
#include "opt_groups.h"
#include "plugin_host.h"
#include "schedule.h"

/* Who a loader serves: each role has its own augment instances, since their loaders run at the
 * same time (the training loader prefetches through a sweep and an evaluation). */
typedef enum rn_loader_role {
    RN_LOADER_EVAL = 0,   /* evaluation: in order, RN_AUGMENT_EVAL plugins only, one worker */
    RN_LOADER_TRAIN = 1,  /* the training loop */
    RN_LOADER_SWEEP = 2,  /* an LR finder's sweep */
} rn_loader_role;

/* A loader's transform argument: the run and the augment instances it uses. */
typedef struct rn_augment_set {
    struct rn_run *run;
    int first;            /* index of worker 0's instance list among the run's lists */
    int eval;             /* only RN_AUGMENT_EVAL plugins */
} rn_augment_set;

/* Where a run is: what a checkpoint records so that `runner --resume` continues exactly. */
typedef struct rn_run_pos {
    int stage;               /* the stage in progress; n_stages once the run is done */
    int64_t epoch;           /* 0-based epoch within the stage */
    int64_t step;            /* optimizer steps taken in the stage (the schedule's position) */
    int64_t epoch_steps;     /* of them, in this epoch: 0 when the epoch has not begun */
    int64_t epoch_good;      /* this epoch's steps with a finite loss, */
    double epoch_loss;       /* the sum of their losses */
    int64_t epoch_samples;   /* and their samples */
    int64_t loader_epoch;    /* epochs the training loader has gone through */
} rn_run_pos;

typedef struct rn_run {
    const rn_plan *plan;
    rn_device device;         /* what plan->device resolved to (the caller sets it) */
    rn_run_view view;
    rn_metrics metrics;
    rn_dataset train, test;
    rn_dataset val;           /* carved from train by data.val_split (n = 0 without) */
    rn_model model;
    rn_opt_groups opt;        /* one optimizer instance per parameter group */
    rn_grads grads;           /* accumulation, norm and clipping between backward and step */
    rn_schedule *schedules;   /* one per stage */
    rn_instance *callbacks;
    int n_callbacks;
    rn_instance *augments;    /* n_augment_lists copies of the augment list (n_augments each),
                                 list k at augments + k * n_augments: one per worker of the
                                 training loader, of the sweep loader, and one for evaluation */
    int n_augments, n_augment_lists;
    rn_augment_set augment_sets[3]; /* per rn_loader_role */
    int eval_augments;        /* plugins with RN_AUGMENT_EVAL: evaluation batches need them */
    float zero_value[RN_MAX_CHANNELS]; /* a raw 0 pixel after normalization, per channel */
    int soft_targets;         /* an augment writes soft targets: training batches carry them */
    rn_loader_stats data;     /* the training loaders' timings, summed over the fit stages */
    bool **stage_trainable;   /* per stage: per model parameter, whether it trains (NULL = all) */
    bool *stage_train_bn;     /* per stage: its train_bn (a sweep's: the stage it sweeps for) */
    int *lr_rank;             /* per optimizer group: its layer group's place in model order */
    int n_lr_ranks;           /* layer groups (a group and its .no_decay half are one) */
    int *joined;              /* per optimizer group: more of it trains than in the last
                                 training stage (it ramps up over unfreeze_warmup_steps) */
    int64_t *fit_active;      /* per group: its tensors training in the last training stage
                                 (-1 before the first) */
    double lr_scale;          /* callbacks' host->scale_lr factors, compounded (1 to start) */
    struct rn_lr_find_result *lr_find; /* the last sweep's result, NULL before one ran */
    /* Results. */
    int64_t global_step, epochs_done, train_images;
    double train_seconds, wall_seconds;
    double best_acc, best_loss;  /* test metrics of the best epoch: the best val.acc (the best
                                    test.acc without a validation set) */
    double best_val_acc, best_val_loss; /* its validation metrics (NaN without a val set) */
    int best_stage;              /* its stage index */
    int64_t best_epoch;          /* its 0-based epoch within that stage (as in metrics.csv) */
    int interrupted;
    rn_run_pos pos;              /* kept current after every step */
    int resuming;                /* pos came from a checkpoint: continue from there */
    /* The last evaluation's confusion matrix: n_classes x n_classes counts, [true][predicted]. */
    int64_t n_classes;
    int64_t *confusion;
    /* A GPU run's device network and its syncs (train_device.c); NULL on the CPU and outside
     * rn_run_train. */
    struct rn_dev_run *dev;
    /* precision fp16 (a GPU run): the loss is scaled before backward and the gradients unscaled
     * before clipping and the step, which is skipped when one is not finite (GradScaler). */
    int scaling;
    rn_grad_scaler scaler;
} rn_run;

/* Loads the data, builds the model, makes every plugin instance (validating all settings).
 * run_dir is recorded for plugins but not created. */
int rn_run_prepare(rn_run *r, const rn_plan *plan, const rn_registry *reg, const char *run_dir,
                   int is_tty, char *err, size_t errlen);
/* runner --evaluate: the model as prepared (its weights loaded) evaluated in eval mode on the
 * validation set and the test set, whichever the recipe has, on the run's device: one line per
 * set to out (loss, accuracy, images, seconds and images/s of the pass, loader included).
 * Nothing is written to disk. -1 with one line when the recipe has neither set. */
int rn_run_evaluate_sets(rn_run *r, FILE *out, char *err, size_t errlen);
/* Trains every stage. `stop` is set asynchronously (SIGINT): the step in flight finishes, then the
 * run stops with r->interrupted set. Returns 0 or -1 with the error (e.g. a non-finite loss). */
int rn_run_train(rn_run *r, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Runs augment list `list`'s plugins (all, or the RN_AUGMENT_EVAL ones when eval_only), in
 * order, on n samples at x with their soft targets (n x n_classes, or NULL when no plugin writes
 * them). Prepare runs every list once on a zero sample so that bad settings are refused before
 * training. */
int rn_run_augment(rn_run *r, int list, int eval_only, float *x, int64_t n,
                   const int32_t *labels, float *soft, const int64_t *ids, int64_t epoch,
                   char *err, size_t errlen);
/* The loaders' transform: rn_run_augment on a batch with the rn_augment_set `set`'s list for
 * the worker that made it. */
int rn_run_augment_batch(void *set, rn_loader_batch *b, char *err, size_t errlen);
/* A group's lr and momentum at `at` in stage `stage`: the stage's schedule applied to the
 * group's base values (a stage's lr replaces every group's base lr). */
int rn_run_group_values(const rn_run *r, int stage, int group, const rn_sched_at *at,
                        rn_sched_values *v, char *err, size_t errlen);
/* Loss and accuracy on ds (the test or validation set) in eval mode; the confusion matrix is
 * kept when ds is the test set. */
int rn_run_evaluate(rn_run *r, const rn_dataset *ds, double *loss, double *acc, char *err,
                    size_t errlen);
void rn_run_free(rn_run *r);

#endif
