/* The run plan: the recipe tree checked key by key and turned into plain settings. Nothing runs
 * until the whole plan (and every plugin's settings) validated. */
#ifndef RN_PLAN_H
#define RN_PLAN_H

#include <stdint.h>
#include "value.h"

#define RN_MAX_CHANNELS 4

typedef struct rn_split_spec {
    const char *format;      /* "idx", "cifar10" or "cifar100" */
    const char *split;       /* "train" or "test": which part of a CIFAR archive */
    char *images, *labels;   /* idx: resolved paths (relative ones against the recipe's dir) */
    char *archive;           /* cifar: the .tar.gz as downloaded, or a directory of .bin files */
    int64_t limit;           /* keep the first `limit` samples; 0 = all */
    const rn_value *classes; /* the `classes` list (integer labels, checked non-empty and without
                                duplicates; points into the recipe): keep those samples, labels
                                relabeled 0..k-1 in list order, before `limit`; NULL = all */
} rn_split_spec;

typedef struct rn_data_spec {
    rn_split_spec train, test;
    int has_test;
    double val_split;                 /* fraction of train held out (stratified, seeded); 0 = none */
    int64_t batch_size;
    int shuffle, drop_last;
    int workers;                      /* loader threads making training batches (1) */
    int n_norm;                       /* channels in mean/std, 0 = no normalization */
    float mean[RN_MAX_CHANNELS], std[RN_MAX_CHANNELS];
    const rn_value *augment;          /* list of plugin specs, or NULL */
} rn_data_spec;

/* The training loss. */
typedef enum rn_loss_kind {
    RN_LOSS_CROSS_ENTROPY = 0, /* softmax cross-entropy: class indices or soft targets */
    RN_LOSS_MULTI_MARGIN = 1,  /* multi-class hinge (nn.MultiMarginLoss): class indices only */
} rn_loss_kind;

/* The recipe's precision: what convolutions and linear layers compute in. The values are the CUDA
 * backend's RN_CUDA_FP32 / _BF16 / _FP16 (runner/cuda/backend.h). */
typedef enum rn_precision {
    RN_PRECISION_FP32 = 0,
    RN_PRECISION_BF16 = 1,
    RN_PRECISION_FP16 = 2,
} rn_precision;

/* "fp32", "bf16", "fp16". */
const char *rn_precision_name(rn_precision p);

/* The recipe's id of a loss: "cross_entropy", "multi_margin". */
const char *rn_loss_name(rn_loss_kind k);

typedef enum rn_stage_kind {
    RN_STAGE_FIT = 0,        /* train for `epochs` */
    RN_STAGE_LR_FIND = 1,    /* { "lr_find", ... }: an LR range test that leaves no trace */
} rn_stage_kind;

/* Where a stage's base lr comes from. */
typedef enum rn_stage_lr {
    RN_LR_OWN = 0,           /* each group's optimizer settings */
    RN_LR_VALUE,             /* lr = x: every group */
    RN_LR_SLICE,             /* lr = slice(lo, hi): log-evenly over the groups in model order */
    RN_LR_FOUND,             /* lr = "lr_find.valley": a suggestion of the last sweep before */
} rn_stage_lr;

/* An LR range test (fastai's lr_find): the lr grows from start_lr to end_lr over `steps`
 * optimizer steps, point i at start_lr * (end_lr / start_lr)^(i / steps) (or linearly), and the
 * sweep stops early when the smoothed loss exceeds div_factor times its minimum. */
typedef struct rn_lr_find_spec {
    double start_lr, end_lr;
    int64_t steps;
    int linear;              /* mode = "linear" */
    int stop_div;            /* stop when the smoothed loss diverges (default true) */
    double div_factor;       /* 4, as fastai */
    double beta;             /* EMA smoothing of the loss, with bias correction (0.98) */
    int64_t repeats;         /* sweeps with different data orders; the median curve is used */
} rn_lr_find_spec;

typedef struct rn_stage_spec {
    const rn_value *node;    /* the stage's table */
    char *name;              /* "stage1" unless named; "lr_find" for a sweep */
    rn_stage_kind kind;
    int64_t epochs;          /* FIT only */
    rn_stage_lr lr_from;
    double lr, lr_hi;        /* RN_LR_VALUE: lr; RN_LR_SLICE: lr .. lr_hi */
    const char *lr_found;    /* RN_LR_FOUND: "valley", "steep" or "minimum" */
    const rn_value *train;   /* group names / parameter patterns that train, NULL = all */
    int train_bn;            /* batch norm of frozen parameters stays in train mode */
    int64_t unfreeze_warmup_steps; /* groups frozen in the stage before ramp their lr up
                                      linearly over this many steps (0 = none) */
    const rn_value *schedule;/* schedule spec for this stage (stage's own or the recipe's) */
    rn_lr_find_spec find;    /* LR_FIND only */
} rn_stage_spec;

typedef struct rn_plan {
    const rn_value *root;
    struct rn_sandbox *sandbox; /* the recipe's evaluator, for Lua callbacks (set by the caller;
                                   NULL: a Lua callback is refused) */
    char *recipe_path;       /* as given */
    char *recipe_dir;        /* its directory, for relative paths and plugins/ */
    uint64_t seed;
    const char *device;      /* "cpu" | "auto" | "cuda" */
    /* precision = "fp32" (default) | "bf16" | "fp16": the compute type of convolutions and
     * linear layers; weights, optimizer state and every other layer stay fp32. fp16 (with
     * GradScaler loss scaling) needs the GPU; bf16 on the CPU uses oneDNN's bf16 kernels. */
    rn_precision precision;
    /* conv_workspace_mib = 16 (RN_CONV2D_CPU_WORKSPACE_MIB; 0..65536): the scratchpad a CPU
     * convolution may take to run Winograd (runner/nn/layer.h, rn_conv2d_set_cpu_workspace);
     * more lets wider layers run it, 0 keeps every convolution direct. The GPU's cuDNN picks its
     * own algorithms. */
    int64_t conv_workspace_mib;
    /* loss_scale = { init = 65536, growth_interval = 2000 }: fp16's dynamic loss scaling, as
     * GradScaler(init_scale, growth_interval) (growth x2, backoff x0.5). Only with fp16. */
    double loss_scale_init;
    int64_t loss_scale_interval;
    /* Not from the recipe: the device the caller resolved `device` to (RN_DEVICE_CPU or
     * RN_DEVICE_CUDA; 0 counts as the CPU), set before rn_run_prepare, which refuses plugins
     * without a variant for it. */
    unsigned train_device;
    rn_data_spec data;
    const rn_value *model;   /* model table */
    rn_loss_kind loss;       /* loss[1] */
    double label_smoothing;  /* cross_entropy: label_smoothing in [0, 0.999], as F.cross_entropy's */
    double margin;           /* multi_margin: margin (1) */
    int margin_p;            /* multi_margin: p, 1 or 2 */
    const rn_value *groups;  /* named parameter groups by pattern, or NULL */
    int64_t accumulate;      /* micro-batches per optimizer step (>= 1) */
    int decay_bias_and_norm; /* 0: biases and 1-d (norm) parameters get no weight decay */
    double clip_norm;        /* clip_grad.norm: max global L2 norm, NaN = no clipping */
    double clip_value;       /* clip_grad.value: max |gradient|, NaN = no clipping */
    char *weights;           /* weights.file: a safetensors state dict to start from, or NULL */
    int weights_strict;      /* weights.strict (default true) */
    const char *weights_key; /* what errors about the weights name: "weights.file" (NULL), or
                                the caller's (runner --evaluate) */
    const rn_value *optimizer;
    const rn_value *schedule;/* may be NULL: constant */
    const rn_value *callbacks; /* list or NULL (default: progress + csv_logger) */
    rn_stage_spec *stages;
    int n_stages;
} rn_plan;

/* Checks the recipe and fills the plan. Errors name the key path. The plan points into root. */
int rn_plan_build(rn_plan *p, const rn_value *root, const char *recipe_path, char *err,
                  size_t errlen);
void rn_plan_free(rn_plan *p);

#endif
