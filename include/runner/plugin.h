/* runner plugin ABI — the one header a plugin needs.
 *
 * A plugin library is a shared object that exports one function with C linkage:
 *
 *     const rn_library *rn_plugin_entry(const rn_host *host);
 *
 * It returns NULL when it cannot serve host->abi_major. The library may hold several plugins.
 * Plugins link nothing of the runner (build them with -Wl,--no-undefined): everything they need
 * from the host comes through the rn_host function table.
 *
 * Versioning: every struct that may grow starts with `struct_size`. The host refuses a library whose
 * `abi_major` differs from RN_ABI_MAJOR and reads fields past `struct_size` only when present. Minor
 * versions only append fields. `build_signature` catches a plugin built for another runner build.
 *
 * Threads: unless a hook says otherwise, every function here is called on the training thread,
 * between steps. Augment `apply` is called on a loader thread (see rn_augment_api).
 *
 * Errors: a function that can fail returns RN_OK (0) or a negative RN_ERR_* code after calling
 * host->set_error(ctx, ...) with one line saying what was expected and what was found. A plugin
 * never calls exit(). It prints through host->log, except a callback whose job is output (a
 * progress bar), which may write to stdout/stderr itself on the training thread.
 */
#ifndef RUNNER_PLUGIN_H
#define RUNNER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RN_ABI_MAJOR 1
#define RN_ABI_MINOR 3

/* Pointer width, master float type and CUDA support of the build; the host compares the string a
 * library reports with its own. */
#define RN_BUILD_SIGNATURE_CPU "rn1-ptr64-f32-cpu"

#if defined(_WIN32)
#define RN_EXPORT __declspec(dllexport)
#else
#define RN_EXPORT __attribute__((visibility("default")))
#endif

/* Status codes. RN_OK is success; every error is negative. */
enum {
    RN_OK = 0,
    RN_ERR = -1,         /* generic failure; the message is in the context's error buffer */
    RN_ERR_NOMEM = -2,   /* an allocation failed */
    RN_ERR_CONFIG = -3,  /* a setting is invalid (names the key) */
};

/* What a callback hook asks of the loop after it returns. */
typedef enum rn_control {
    RN_CONTINUE = 0,     /* carry on */
    RN_STOP_STAGE = 1,   /* finish this stage after the current step; go to the next stage */
    RN_STOP_RUN = 2,     /* finish the run after the current step (final evaluation still runs) */
} rn_control;

typedef enum rn_plugin_kind {
    RN_KIND_OPTIMIZER = 1,
    RN_KIND_SCHEDULER = 2,
    RN_KIND_AUGMENT = 3,
    RN_KIND_CALLBACK = 4,
} rn_plugin_kind;

/* Device bits for rn_plugin.devices. */
#define RN_DEVICE_CPU 1u
#define RN_DEVICE_CUDA 2u

/* Log levels for rn_host.log. */
typedef enum rn_log_level { RN_LOG_DEBUG = 0, RN_LOG_INFO = 1, RN_LOG_WARN = 2 } rn_log_level;

/* ---------------------------------------------------------------------------------------------
 * Settings schema. The host validates a recipe's settings against it before create() is called:
 * unknown keys, wrong types and out-of-range values are refused with the recipe's key path, so a
 * plugin's getters never fail for a declared setting.
 * ------------------------------------------------------------------------------------------- */
typedef enum rn_setting_type {
    RN_SETTING_NUMBER = 1, /* double */
    RN_SETTING_INT = 2,    /* int64; a Lua integer or an integral float */
    RN_SETTING_BOOL = 3,   /* int 0/1 */
    RN_SETTING_STRING = 4, /* NUL-terminated; must be one of `choices` when that is non-NULL */
    /* ABI 1.1: a list of 1 to RN_MAX_SETTING_NUMBERS numbers, each within min..max (as for
     * NUMBER), e.g. mean = { 0.485, 0.456, 0.406 }; a single number is taken as a list of one.
     * default_string holds the default as text ("0.5, 0.5") or is NULL (required). Read with
     * host->get_numbers. */
    RN_SETTING_NUMBERS = 5,
} rn_setting_type;

/* Most numbers a RN_SETTING_NUMBERS setting holds. */
#define RN_MAX_SETTING_NUMBERS 16

/* Bits for rn_setting.flags. */
#define RN_SETTING_REQUIRED 1u      /* the recipe must give it; the default is not used */
#define RN_SETTING_MIN_EXCLUSIVE 2u /* the range is (min, ... instead of [min, ... */
#define RN_SETTING_MAX_EXCLUSIVE 4u /* the range is ..., max) instead of ..., max] */

typedef struct rn_setting {
    const char *name;           /* key in the recipe table, e.g. "momentum" */
    rn_setting_type type;
    double default_number;      /* default for NUMBER, INT (integral) and BOOL (0 or 1) */
    const char *default_string; /* default for STRING; NULL means the setting is required */
    double min, max;            /* range for NUMBER and INT (inclusive unless flags say
                                   otherwise); ignored when min > max */
    const char *choices;        /* STRING only: allowed values separated by '|', or NULL for any */
    const char *doc;            /* one line: meaning and unit (steps or epochs) */
    unsigned flags;             /* RN_SETTING_* bits; 0 = optional with inclusive range */
} rn_setting;

/* Opaque handle the host gives each plugin instance: its settings, its error buffer, its run. */
typedef struct rn_ctx rn_ctx;

/* ---------------------------------------------------------------------------------------------
 * Tensors and batches as plugins see them. Memory is owned by the host; a plugin writes in place.
 * ------------------------------------------------------------------------------------------- */

/* One trainable tensor of a parameter group. */
typedef struct rn_param {
    const char *name;  /* PyTorch-style name, e.g. "conv1.weight" */
    float *value;      /* numel floats, updated in place by the optimizer */
    const float *grad; /* numel floats, gradient of the loss for this step */
    float *state;      /* state_floats(self) * numel floats, zeroed by the host before the first
                          step; saved in and restored from checkpoints by the host */
    int64_t numel;
} rn_param;

/* A parameter group for one optimizer step. The host fills lr/momentum from the schedule, whose
 * base values are the optimizer's own settings named "lr" (required), "momentum" (or "beta1" when
 * there is no "momentum") and "weight_decay": declare them under these names. */
typedef struct rn_group {
    size_t struct_size;
    const char *name;    /* group name ("all" or the recipe's pattern) */
    rn_param *params;    /* n_params tensors */
    size_t n_params;
    double lr;           /* learning rate for this step (after scheduling) */
    double momentum;     /* momentum / beta1 for this step (after scheduling); the optimizer's own
                            setting when no scheduler sets it */
    double weight_decay; /* L2 / decoupled weight decay for this group */
    int64_t step;        /* optimizer steps already taken by this group (0 on the first step) */
} rn_group;

/* ---------------------------------------------------------------------------------------------
 * ABI 1.2: an optimizer step the host runs on a device. A GPU run keeps the parameters, gradients
 * and optimizer state in device memory, where a plugin's step() cannot reach them; instead the
 * plugin says which of the host's fused element updates its step is and with which coefficients
 * (rn_optimizer_api.device_update), and the host applies it to every tensor of the group in one
 * multi-tensor launch. The element functions are the host's kernels/optim_elem.h, which the
 * built-in CPU plugins run too, so the CPU tests against torch.optim check the GPU's arithmetic.
 * Every coefficient is a float computed in double and rounded once, as PyTorch casts its Python
 * scalars; t is the group's step + 1.
 * ------------------------------------------------------------------------------------------- */
/* torch.optim.SGD: g = grad + wd p; buf = first ? g : momentum buf + keep g;
 * g = nesterov ? g + momentum buf : buf; p = p - lr g. */
typedef struct rn_sgd_coef {
    float lr, wd, momentum, keep; /* keep = 1 - dampening */
    int first;                    /* the group's first step: buf = g */
    int nesterov;                 /* 0 or 1 */
} rn_sgd_coef;

/* torch.optim.Adam / AdamW (adam_core.h has the formula and its rounding). */
typedef struct rn_adam_coef {
    float wd;           /* L2 (Adam): added to the gradient, 0 for none */
    float decay;        /* decoupled (AdamW): 1 - lr * wd, 1 for none */
    float beta1, keep1; /* beta1, 1 - beta1 */
    float beta2, keep2; /* beta2, 1 - beta2 */
    float bc2_sqrt;     /* sqrt(1 - beta2^t) */
    float eps;
    float neg_step;     /* -lr / (1 - beta1^t) */
} rn_adam_coef;

/* torch.optim.RMSprop (plugins/optimizers/rmsprop.c). */
typedef struct rn_rmsprop_coef {
    float wd;           /* L2 added to the gradient, 0 for none */
    float alpha, keep;  /* alpha, 1 - alpha */
    float eps;          /* added to the root mean square */
    float momentum;     /* used only with a momentum buffer */
    float neg_lr;       /* -lr */
} rn_rmsprop_coef;

/* Lion (plugins/optimizers/lion.c). */
typedef struct rn_lion_coef {
    float decay;        /* 1 - lr * wd */
    float beta1, keep1; /* beta1, 1 - beta1 */
    float beta2, keep2; /* beta2, 1 - beta2 */
    float neg_lr;       /* -lr */
} rn_lion_coef;

/* timm's Lamb (plugins/optimizers/lamb.c); the trust ratio is the host's (rn_update.lamb_adapt). */
typedef struct rn_lamb_coef {
    float beta1, keep1; /* beta1, 1 - beta1 */
    float beta2, keep2; /* beta2, 1 - beta2 */
    float bc1;          /* 1 - beta1^t, or 1 */
    float bc2_sqrt;     /* sqrt(1 - beta2^t), or 1 */
    float eps;          /* added to sqrt(v) / bc2_sqrt */
    float wd;           /* L2 added to the update; used only when has_wd */
    int has_wd;         /* wd != 0 */
    float neg_lr;       /* -lr */
} rn_lamb_coef;

/* Which element update (rn_update.kind). */
typedef enum rn_update_kind {
    RN_UPDATE_SGD = 1,
    RN_UPDATE_ADAM = 2,    /* Adam and AdamW: the coefficients say which decay */
    RN_UPDATE_RMSPROP = 3,
    RN_UPDATE_LION = 4,
    RN_UPDATE_LAMB = 5,
} rn_update_kind;

/* One step of one group as the host runs it on a device. A parameter's state (state_floats *
 * numel floats) is a sequence of blocks of numel floats; `state` says which block each of the
 * element function's state arguments is, -1 for an argument the step passes as NULL:
 *   SGD      state[0] momentum buffer
 *   ADAM     state[0] exp_avg, [1] exp_avg_sq, [2] max_exp_avg_sq (AMSGrad)
 *   RMSPROP  state[0] square_avg, [1] momentum buffer, [2] grad_avg (centered)
 *   LION     state[0] exp_avg
 *   LAMB     state[0] exp_avg, [1] exp_avg_sq */
typedef struct rn_update {
    size_t struct_size;  /* sizeof(rn_update), set by the host */
    rn_update_kind kind;
    union {              /* the member named by kind */
        rn_sgd_coef sgd;
        rn_adam_coef adam;
        rn_rmsprop_coef rmsprop;
        rn_lion_coef lion;
        rn_lamb_coef lamb;
    } c;
    int state[3];        /* state block per element-function argument, -1 for none */
    int lamb_adapt;      /* LAMB: scale each tensor's update by ||p|| / ||u|| (1 when either is 0) */
} rn_update;

/* A batch on its way to the model, as augment plugins see it. */
typedef struct rn_batch {
    size_t struct_size;
    float *x;                /* n*c*h*w floats, NCHW: pixel/255, normalized unless data.normalize
                                is absent and no normalize plugin came before (see normalized) */
    int64_t n, c, h, w;
    const int32_t *labels;   /* n class indices (the original ones: mixing leaves them alone) */
    float *soft_targets;     /* n*classes floats, the targets the loss trains on, when a plugin of
                                the list declares RN_AUGMENT_SOFT_TARGETS: row i is the one-hot of
                                labels[i] on entry to the first plugin, and a mixing plugin writes
                                the mixture (rows sum to 1). Label smoothing is the loss's, applied
                                to these rows as timm's mixup_target does. NULL otherwise. */
    int64_t classes;         /* width of a soft_targets row: the model's outputs */
    const int64_t *sample_ids; /* n dataset indices: key per-sample randomness on these */
    int64_t epoch;           /* 0-based epoch the batch belongs to */
    uint64_t seed;           /* this plugin instance's seed (derived from the run seed) */
    const float *zero_value; /* c floats: a raw 0 (black) pixel after normalization, the fill a
                                padding transform uses to match torchvision (pads before
                                normalizing) */
    /* ---- ABI 1.1 (read only when struct_size covers it) ---- */
    int normalized;          /* 1 when x is normalized already (data.normalize, or a normalize
                                plugin earlier in the list), 0 when it is pixel/255. A plugin
                                that normalizes sets it to 1 and points zero_value at what black
                                became. */
} rn_batch;

/* Where a schedule is evaluated. All counts are optimizer steps unless named _epochs. */
typedef struct rn_sched_at {
    size_t struct_size;
    int64_t step;            /* 0-based step within the stage */
    int64_t total_steps;     /* steps in the stage */
    int64_t steps_per_epoch; /* optimizer steps per epoch */
    int64_t epoch;           /* 0-based epoch within the stage */
} rn_sched_at;

/* In: the group's base values. Out: the values for this step (prefilled with the base). */
typedef struct rn_sched_values {
    size_t struct_size;
    double base_lr, base_momentum; /* from the recipe for this group */
    double lr, momentum;           /* written by the scheduler */
} rn_sched_values;

/* What a callback sees at an event. Pointers are valid during the hook only. */
typedef struct rn_event {
    size_t struct_size;
    const char *stage;       /* stage name, e.g. "fit" */
    int stage_index;         /* 0-based */
    int stage_count;
    int64_t step;            /* optimizer steps done in this stage */
    int64_t total_steps;     /* steps in this stage */
    int64_t epoch;           /* 0-based epoch in this stage */
    int64_t epochs;          /* epochs in this stage */
    int64_t steps_per_epoch;
    int64_t global_step;     /* optimizer steps done in the whole run */
    double loss;             /* train loss of the last step (on_step_end) or the epoch mean */
    double lr;               /* lr of the first group at the last step */
    double images_per_s;     /* training throughput since the epoch began */
    double elapsed_s;        /* wall time since the run began */
} rn_event;

/* ---------------------------------------------------------------------------------------------
 * The host function table (append-only; check struct_size before using fields past the first
 * minor version).
 * ------------------------------------------------------------------------------------------- */
typedef struct rn_host {
    size_t struct_size;
    uint16_t abi_major, abi_minor;
    const char *build_signature;

    /* Settings of this instance, already validated against the schema. */
    double (*get_number)(rn_ctx *ctx, const char *key);
    int64_t (*get_int)(rn_ctx *ctx, const char *key);
    int (*get_bool)(rn_ctx *ctx, const char *key);
    const char *(*get_string)(rn_ctx *ctx, const char *key); /* owned by the host */

    /* Errors and logging. set_error keeps the first line; log prints one line with the plugin id. */
    void (*set_error)(rn_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    void (*log)(rn_ctx *ctx, rn_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Memory that may outlive a hook; zeroed. Free with host->free. */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);

    /* The run: its directory (exists, writable), its seed, and the run's metrics. */
    const char *(*run_dir)(rn_ctx *ctx);
    uint64_t (*seed)(rn_ctx *ctx); /* this instance's seed: run seed mixed with the plugin's slot */
    size_t (*metric_count)(rn_ctx *ctx);
    /* i-th metric of the latest values: name like "train.loss", "test.acc"; returns 0 if i is out
     * of range. A metric that was never measured yet has value NaN. */
    int (*metric_at)(rn_ctx *ctx, size_t i, const char **name, double *value);
    /* Latest value of a metric by name; returns 0 when it does not exist. */
    int (*metric)(rn_ctx *ctx, const char *name, double *value);
    /* Whether stderr is a terminal (progress bars draw there only then). */
    int (*is_tty)(rn_ctx *ctx);

    /* Run fn over [0, n) in chunks on the host's thread team; fn gets [begin, end). */
    void (*parallel_for)(int64_t n, void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

    /* 1 when the recipe gave this setting, 0 when it holds the schema's default. */
    int (*has_setting)(rn_ctx *ctx, const char *key);

    /* A metric's value at the end of each finished epoch of the current stage, oldest first,
     * copied into out[0..cap); returns the number of such epochs (call again with a larger
     * buffer when it exceeds cap), 0 for an unknown metric. A metric not measured in some epoch
     * is NaN there. What plateau schedules need: values(at) at epoch e sees epochs 0..e-1.
     * Not on the loader thread (augment plugins get 0). */
    size_t (*metric_history)(rn_ctx *ctx, const char *name, double *out, size_t cap);

    /* ---- ABI 1.1: acting on the run. Callbacks only, on the training thread, between steps;
     * other kinds (and a host without a run) get RN_ERR with the error set. ---- */

    /* Keeps a copy, owned by this instance, of the run's trainable state: every parameter and
     * buffer (batch norm statistics), every optimizer state and each group's step count. A
     * second call replaces the copy. Not included: the global step, the schedule position, the
     * data position and the metrics, which go on. */
    int (*save_state)(rn_ctx *ctx);
    /* Puts this instance's copy back (RN_ERR when it never saved one). The copy is kept. */
    int (*restore_state)(rn_ctx *ctx);
    /* Writes a checkpoint of the run as it is now (what `runner --resume` continues from) to
     * run_dir/name, atomically: name is a plain file name ending in ".safetensors". */
    int (*write_checkpoint)(rn_ctx *ctx, const char *name);
    /* Multiplies every group's lr by factor (> 0) from the next step on, on top of the schedule;
     * factors compound (0.5 twice is 0.25) and last for the rest of the run. */
    int (*scale_lr)(rn_ctx *ctx, double factor);
    /* The optimizer's parameter groups: how many, and the i-th one's name and the lr and
     * momentum it used at the last step (returns 0 when i is out of range). A group frozen in
     * this stage reports lr 0. */
    size_t (*group_count)(rn_ctx *ctx);
    int (*group_at)(rn_ctx *ctx, size_t i, const char **name, double *lr, double *momentum);
    /* Sets (adding when new) a metric of the run, e.g. "grad_norm.max": it appears in
     * metrics.csv and summary.json like the host's own. Names are [A-Za-z0-9_.]+. */
    int (*set_metric)(rn_ctx *ctx, const char *name, double value);
    /* -1 for a run that started afresh; for one that continues a checkpoint (runner --resume),
     * the global step it was taken at: a logger keeps what it wrote up to that step and
     * appends. Any kind, any thread. */
    int64_t (*resumed_at)(rn_ctx *ctx);

    /* ---- ABI 1.1: settings ---- */

    /* A RN_SETTING_NUMBERS setting: copies its values to out[0..cap) and returns how many it
     * holds (at most RN_MAX_SETTING_NUMBERS); 0 for an undeclared key or another type. */
    size_t (*get_numbers)(rn_ctx *ctx, const char *key, double *out, size_t cap);
} rn_host;

/* ---------------------------------------------------------------------------------------------
 * Per-kind function tables. `self` is what create() returned.
 * ------------------------------------------------------------------------------------------- */
typedef struct rn_optimizer_api {
    size_t struct_size;
    /* Floats of state per parameter element (e.g. 1 for SGD with momentum, 0 without). */
    size_t (*state_floats)(void *self);
    /* One update of every tensor of the group. Called once per optimizer step per trainable group. */
    int (*step)(void *self, rn_group *group);

    /* ---- ABI 1.2 (read only when struct_size covers it) ---- */
    /* The step step() would take on this group, as an element update the host runs on a device:
     * fill *u (kind, coefficients, state blocks) and return RN_OK, refusing what step() would
     * refuse. Called instead of step() when the run trains on a GPU; a plugin whose `devices`
     * has RN_DEVICE_CUDA must provide it (the host refuses to load it otherwise). */
    int (*device_update)(void *self, const rn_group *group, rn_update *u);
} rn_optimizer_api;

/* What a schedule counts (rn_scheduler_api.counts). */
enum { RN_COUNTS_STEPS = 0, RN_COUNTS_EPOCHS = 1 };

typedef struct rn_scheduler_api {
    size_t struct_size;
    /* A pure function of `at` and the base values: the same inputs give the same outputs, so
     * resume is exact and a dry run can plot it. Called before every optimizer step, per group. */
    int (*values)(void *self, const rn_sched_at *at, rn_sched_values *v);
    /* RN_COUNTS_EPOCHS when the value changes only at epoch boundaries (StepLR in epochs, a
     * plateau), RN_COUNTS_STEPS when it may change every optimizer step. May be NULL (steps);
     * the host reads it only when struct_size covers it. */
    int (*counts)(void *self);
} rn_scheduler_api;

/* Bits for rn_augment_api.flags. */
#define RN_AUGMENT_SOFT_TARGETS 1u /* writes batch->soft_targets (CutMix, Mixup): the host supplies
                                      them and refuses a loss that takes class indices only */
#define RN_AUGMENT_EVAL 2u         /* deterministic preprocessing (normalize) that evaluation and
                                      the test set need too: evaluation batches go through the
                                      plugins with this bit, in list order, and no others */

/* ---------------------------------------------------------------------------------------------
 * ABI 1.2: an augmentation the host runs on a device. On a GPU the batch is in device memory,
 * where apply() cannot reach it. A plugin with RN_DEVICE_CUDA gives device_plan: it makes the
 * draws apply() would make, from the same keys, and writes them as per-sample parameters of one
 * of the host's kernels (kernels/augment_kernels.cu), whose per-pixel math is the CPU plugins'
 * own (kernels/augment_elem.h). The batch it sees has x == NULL: it must not read pixels.
 * ------------------------------------------------------------------------------------------- */

/* CutMix / Mixup, per sample (timm's Mixup): what sample i becomes. */
enum { RN_MIX_KEEP = 0, RN_MIX_BLEND = 1, RN_MIX_PASTE = 2 };
typedef struct rn_mix_sample {
    int32_t mode;           /* RN_MIX_KEEP (unchanged), _BLEND (wa x_i + wb x_partner), _PASTE */
    int32_t partner;        /* the sample it mixes with, in [0, n) */
    float wa, wb;           /* float(lam), float(1 - lam): the blend's and the targets' weights */
    int32_t yl, yh, xl, xh; /* RN_MIX_PASTE: the partner's rows [yl, yh), columns [xl, xh) */
} rn_mix_sample;

/* random_erasing, per sample: the box set to 0, or to normal noise drawn from key. */
typedef struct rn_erase_box {
    uint64_t key;           /* the sample's key (rn_key3(seed, epoch, sample id)) */
    int32_t y, x, h, w;     /* rows [y, y + h), columns [x, x + w), every channel; h = 0: none */
} rn_erase_box;

/* Which kernel (rn_augment_op.kind). */
typedef enum rn_augment_op_kind {
    RN_AUGMENT_OP_NONE = 0,  /* the batch is left as it is */
    RN_AUGMENT_OP_FLIP = 1,  /* flip[i] != 0: mirror sample i (rows when vertical, else columns) */
    RN_AUGMENT_OP_CROP = 2,  /* out(y, x) = in(y + shift[2i], x + shift[2i+1]), outside the image
                                reflected (reflect) or batch->zero_value[channel] */
    RN_AUGMENT_OP_ERASE = 3, /* erase[i]'s box, zeros or (random) noise */
    RN_AUGMENT_OP_MIX = 4,   /* mix[i], pixels and soft targets (RN_AUGMENT_SOFT_TARGETS) */
    RN_AUGMENT_OP_RESIZED_CROP = 5, /* ABI 1.3: box[4i..4i+3] = (row, column, height, width) of
                                       sample i's crop, resized back to the whole image bilinearly
                                       (kernels/augment_elem.h's rn_resized_crop_pixel); a box of
                                       the whole image leaves the sample as it is */
} rn_augment_op_kind;

/* The parameters of one batch. The host owns the arrays, each sized for the batch (n entries;
 * shift 2n); the plugin sets kind and the flags and fills the array its kind reads. */
typedef struct rn_augment_op {
    size_t struct_size;       /* sizeof(rn_augment_op), set by the host */
    rn_augment_op_kind kind;
    uint8_t *flip;            /* FLIP */
    int vertical;             /* FLIP: 1 flips rows (vflip), 0 columns (hflip) */
    int32_t *shift;           /* CROP: rows then columns, per sample */
    int reflect;              /* CROP: 1 mirrors about the edge, 0 fills with zero_value */
    rn_erase_box *erase;      /* ERASE */
    int random;               /* ERASE: 1 fills with rn_erase_normal noise, 0 with zeros */
    rn_mix_sample *mix;       /* MIX */
    /* ---- ABI 1.3 (hosts of 1.3 and later set it; read only with struct_size covering it) ---- */
    int32_t *box;             /* RESIZED_CROP: 4 per sample */
} rn_augment_op;

typedef struct rn_augment_api {
    size_t struct_size;
    /* Transform the batch in place. Called on the loader thread, never concurrently for one
     * instance; once at set-up on a one-sample zero batch (sample id 0, epoch 0) so that a bad
     * setting is refused before training. Randomness only from rn_rand(batch->seed, ...) keyed by
     * sample_ids and epoch (a draw for the whole batch by its first sample id), so the batch is
     * the same on any number of threads and after a resume. On the loader thread the metrics are
     * not available (host->metric* report none). */
    int (*apply)(void *self, rn_batch *batch);

    /* ---- ABI 1.1 (read only when struct_size covers it) ---- */
    unsigned flags;          /* RN_AUGMENT_* bits */

    /* ---- ABI 1.2 (read only when struct_size covers it) ---- */
    /* The batch's parameters for the host's device kernel: the draws apply() would make on this
     * batch (same n, sample ids, epoch, seed), and the same refusals. Called on the loader thread
     * like apply(), instead of it, when the run trains on a GPU; batch->x is NULL. Required with
     * RN_DEVICE_CUDA in `devices` (the host refuses to load the plugin otherwise). */
    int (*device_plan)(void *self, const rn_batch *batch, rn_augment_op *op);
} rn_augment_api;

/* Each hook may be NULL. It returns RN_CONTINUE, RN_STOP_STAGE, RN_STOP_RUN, or a negative error. */
typedef struct rn_callback_api {
    size_t struct_size;
    int (*on_run_begin)(void *self, const rn_event *e);
    int (*on_stage_begin)(void *self, const rn_event *e);
    int (*on_step_end)(void *self, const rn_event *e);   /* after every optimizer step */
    int (*on_epoch_end)(void *self, const rn_event *e);  /* after the epoch's evaluation */
    int (*on_eval_end)(void *self, const rn_event *e);   /* after each evaluation pass */
    int (*on_stage_end)(void *self, const rn_event *e);
    int (*on_run_end)(void *self, const rn_event *e);    /* also after an error or a stop */

    /* ---- ABI 1.1 (read only when struct_size covers them; each may be NULL). ---- */

    /* A step's loss or gradient norm is not finite (e->loss says which value). The update has
     * not been applied. With no callback that has this hook, the run stops with an error naming
     * the step and the lr. A hook that handles it (say after host->restore_state and
     * host->scale_lr) returns RN_CONTINUE and the step is skipped; RN_STOP_STAGE / RN_STOP_RUN
     * end the stage or the run without an error. */
    int (*on_nonfinite)(void *self, const rn_event *e);
    /* The callback's own state for checkpoints, so that a resumed run decides as the
     * uninterrupted one would: state_size bytes written by state_save, given back to state_load
     * on --resume (after create, before on_run_begin) with the same size. */
    size_t (*state_size)(void *self);
    int (*state_save)(void *self, void *buf, size_t size);
    int (*state_load)(void *self, const void *buf, size_t size);
} rn_callback_api;

/* ---------------------------------------------------------------------------------------------
 * The descriptor of one plugin and the library that holds them.
 * ------------------------------------------------------------------------------------------- */
typedef struct rn_plugin {
    size_t struct_size;
    rn_plugin_kind kind;
    const char *id;          /* stable: "sgd"; third parties use "org.example.name" */
    const char *version;     /* "1.0.0" */
    const char *summary;     /* one line */
    unsigned devices;        /* RN_DEVICE_* bits */
    const rn_setting *settings;
    size_t n_settings;
    /* Make an instance. Settings come from host->get_*(ctx, ...). On failure return an error and
     * leave *self untouched. */
    int (*create)(const rn_host *host, rn_ctx *ctx, void **self);
    void (*destroy)(void *self);
    /* Points to the rn_<kind>_api matching `kind`. */
    const void *api;
} rn_plugin;

typedef struct rn_library {
    size_t struct_size;
    uint16_t abi_major, abi_minor;
    const char *build_signature;  /* RN_BUILD_SIGNATURE_CPU for a CPU-only build */
    const rn_plugin *const *plugins;
    size_t n_plugins;
} rn_library;

typedef const rn_library *(*rn_plugin_entry_fn)(const rn_host *host);

/* The one symbol a plugin library exports (declared here so a wrong signature fails to compile). */
RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host);

/* ---------------------------------------------------------------------------------------------
 * Counter-based randomness: the same (key, counter) gives the same bits on any thread or device
 * (under nvcc these functions are __host__ __device__, so a kernel draws what the CPU draws).
 * ------------------------------------------------------------------------------------------- */
#if defined(__CUDACC__)
#define RN_RAND_FN static __host__ __device__ inline
#else
#define RN_RAND_FN static inline
#endif

RN_RAND_FN uint64_t rn_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 64 random bits for (key, counter). */
RN_RAND_FN uint64_t rn_rand(uint64_t key, uint64_t counter)
{
    return rn_mix64(rn_mix64(key) ^ (counter * 0xd1342543de82ef95ull + 1));
}

/* A key for (key, a, b): e.g. (instance seed, epoch, sample id). */
RN_RAND_FN uint64_t rn_key3(uint64_t key, uint64_t a, uint64_t b)
{
    return rn_mix64(rn_mix64(key ^ rn_mix64(a)) ^ b);
}

/* Uniform double in [0, 1) with 53 random bits. */
RN_RAND_FN double rn_uniform(uint64_t key, uint64_t counter)
{
    return (double)(rn_rand(key, counter) >> 11) * (1.0 / 9007199254740992.0);
}

#ifdef __cplusplus
}
#endif
#endif /* RUNNER_PLUGIN_H */
