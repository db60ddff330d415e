/* adam_core.h — what the adam and adamw plugins share (internal to plugins/optimizers, included
 * with a relative #include by adam.c and adamw.c only; each still builds its own .so with its own
 * descriptor, id, settings and summary).
 *
 * The update is torch.optim.Adam / AdamW's single-tensor CPU path (PyTorch 1.13, foreach=False):
 *
 *   t = group->step + 1
 *   weight decay, by mode:   ADAM_WD_L2         g = grad + wd * p          (torch.optim.Adam)
 *                            ADAM_WD_DECOUPLED  p = p * (1 - lr * wd)      (torch.optim.AdamW)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   vmax = max(vmax, v)                            amsgrad only; then vmax replaces v below
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   p = p - lr / (1 - beta1^t) * m / denom
 *
 * lr, beta1 and wd come from the group (the host fills them from the settings "lr", "beta1" and
 * "weight_decay" and from the schedule, which may move beta1 as it moves SGD's momentum); beta2,
 * eps and amsgrad are the instance's settings. One instance serves one parameter group.
 *
 * Rounding, as PyTorch does it (float32 tensors, Python-double scalars):
 *   - the scalars (wd for L2, 1 - lr*wd for decoupled decay), beta1, 1 - beta1, beta2, 1 - beta2,
 *     sqrt(1 - beta2^t), eps and -lr / (1 - beta1^t) are computed in double and cast to float
 *     once, as PyTorch casts a Python scalar to the tensor's type;
 *   - every tensor op is rounded to float, except that the kernels PyTorch runs on AVX2 CPUs fuse
 *     `g + wd*p` (grad.add(p, alpha=wd), L2 only), `m*beta1 + (1-beta1)*g` and
 *     `v*beta2 + ((1-beta2)*g)*g` into one FMA each (as in sgd.c; checked against torch 1.13 with
 *     the fixtures of tests/test_adam.c and tests/test_adamw.c: with the FMA the state matches bit
 *     for bit, without it ~5% of v differ by an ulp). The FMA is done as double arithmetic (a float
 *     product is exact in double), which differs from a true fmaf only on double-rounding ties.
 *     The decoupled decay p * (1 - lr*wd) is a plain float multiply (param.mul_);
 *   - addcdiv is p + ((-step_size * m) / denom), rounded after each op, as PyTorch's kernel.
 *
 * Optimizer state: state_floats = 2 (3 with amsgrad) floats per element, stored per parameter as
 * consecutive blocks of numel floats: [exp_avg | exp_avg_sq | max_exp_avg_sq (amsgrad only)],
 * the same tensors as PyTorch's state["exp_avg"], ["exp_avg_sq"], ["max_exp_avg_sq"]. The host
 * zeroes them before the first step (as PyTorch does) and checkpoints them.
 */
#ifndef RN_PLUGINS_ADAM_CORE_H
#define RN_PLUGINS_ADAM_CORE_H

#include <runner/plugin.h>

#include <math.h>

#include "../../kernels/optim_elem.h"

/* Where the weight decay goes. */
typedef enum adam_wd_mode {
    ADAM_WD_L2,        /* added to the gradient: g = grad + wd * p (Adam) */
    ADAM_WD_DECOUPLED, /* applied to the parameter first: p = p * (1 - lr * wd) (AdamW) */
} adam_wd_mode;

typedef struct adam_core {
    const rn_host *host;
    rn_ctx *ctx;
    double beta2, eps;
    int amsgrad;
} adam_core;

/* One tensor's update; the element math is kernels/optim_elem.h's, which the GPU runs too. Of
 * wd and decay, the job of one mode holds the other at its no-op value (wd 0, decay 1), so each
 * plugin runs exactly the operations it ran on its own. */
typedef struct adam_core_job {
    float *p;
    const float *grad;
    float *m, *v, *vmax; /* vmax is NULL without amsgrad */
    rn_adam_coef c;
} adam_core_job;

static void adam_core_range(void *arg, int64_t begin, int64_t end)
{
    const adam_core_job *j = arg;
    const rn_adam_coef c = j->c; /* a local copy: the stores below cannot alias it */
    if (j->vmax)
        for (int64_t i = begin; i < end; i++)
            rn_adam_elem(&c, &j->p[i], j->grad[i], &j->m[i], &j->v[i], &j->vmax[i]);
    else
        for (int64_t i = begin; i < end; i++)
            rn_adam_elem(&c, &j->p[i], j->grad[i], &j->m[i], &j->v[i], NULL);
}

/* The settings both plugins have, in their order: lr, beta1, beta2, eps (weight_decay, whose
 * default and meaning differ, comes next in each plugin), then ADAM_CORE_SETTING_AMSGRAD. */
#define ADAM_CORE_SETTINGS_LR_TO_EPS                                                             \
    {"lr", RN_SETTING_NUMBER, 1e-3, NULL, 0, INFINITY, NULL,                                     \
     "learning rate: the base lr the schedule scales", 0},                                       \
    {"beta1", RN_SETTING_NUMBER, 0.9, NULL, 0, 1, NULL,                                          \
     "decay of the running mean of gradients, in [0, 1); a schedule may move it like momentum",  \
     RN_SETTING_MAX_EXCLUSIVE},                                                                  \
    {"beta2", RN_SETTING_NUMBER, 0.999, NULL, 0, 1, NULL,                                        \
     "decay of the running mean of squared gradients, in [0, 1)", RN_SETTING_MAX_EXCLUSIVE},     \
    {"eps", RN_SETTING_NUMBER, 1e-8, NULL, 0, INFINITY, NULL,                                    \
     "term added to the denominator for numerical stability, > 0", RN_SETTING_MIN_EXCLUSIVE}

#define ADAM_CORE_SETTING_AMSGRAD                                                                \
    {"amsgrad", RN_SETTING_BOOL, 0, NULL, 1, 0, NULL,                                            \
     "AMSGrad: normalize by the running maximum of the squared-gradient mean (1 more state "   \
     "float)",                                                                                   \
     0}

static int adam_core_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    adam_core *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    s->beta2 = host->get_number(ctx, "beta2");
    s->eps = host->get_number(ctx, "eps");
    s->amsgrad = host->get_bool(ctx, "amsgrad");
    *self = s;
    return RN_OK;
}

static void adam_core_destroy(void *self)
{
    adam_core *s = self;
    if (s) s->host->free(s);
}

static size_t adam_core_state_floats(void *self)
{
    const adam_core *s = self;
    return s->amsgrad ? 3 : 2;
}

/* This step's coefficients, with the weight decay applied as `mode` says; refuses a beta1 a
 * schedule moved out of [0, 1). Shared by step() and device_update(). */
static int adam_core_coef(adam_core *s, const rn_group *group, adam_wd_mode mode,
                          rn_adam_coef *c)
{
    double lr = group->lr, beta1 = group->momentum, wd = group->weight_decay;
    if (!(beta1 >= 0 && beta1 < 1)) {
        /* The setting is checked by the host; only a schedule can get here. */
        s->host->set_error(s->ctx, "group \"%s\": beta1 (momentum) must be in [0, 1), got %g",
                           group->name, beta1);
        return RN_ERR_CONFIG;
    }
    /* PyTorch keeps the step count as a float32 tensor and reads it back as a Python float. */
    double t = (double)(float)(group->step + 1);
    double bias_correction1 = 1 - pow(beta1, t);
    double bias_correction2 = 1 - pow(s->beta2, t);
    double step_size = lr / bias_correction1;
    double bc2_sqrt = sqrt(bias_correction2);
    *c = (rn_adam_coef){
        .wd = mode == ADAM_WD_L2 ? (float)wd : 0.0f,
        .decay = mode == ADAM_WD_DECOUPLED ? (float)(1 - lr * wd) : 1.0f,
        .beta1 = (float)beta1,
        .keep1 = (float)(1 - beta1),
        .beta2 = (float)s->beta2,
        .keep2 = (float)(1 - s->beta2),
        .bc2_sqrt = (float)bc2_sqrt,
        .eps = (float)s->eps,
        .neg_step = (float)-step_size,
    };
    return RN_OK;
}

/* One step of the group, with the weight decay applied as `mode` says. */
static int adam_core_step(void *self, rn_group *group, adam_wd_mode mode)
{
    adam_core *s = self;
    rn_adam_coef c;
    int rc = adam_core_coef(s, group, mode, &c);
    if (rc) return rc;
    for (size_t k = 0; k < group->n_params; k++) {
        rn_param *prm = &group->params[k];
        if (prm->numel <= 0) continue;
        if (!prm->state) {
            s->host->set_error(s->ctx, "parameter \"%s\" has no optimizer state", prm->name);
            return RN_ERR;
        }
        adam_core_job job = {
            .p = prm->value,
            .grad = prm->grad,
            .m = prm->state,
            .v = prm->state + prm->numel,
            .vmax = s->amsgrad ? prm->state + 2 * prm->numel : NULL,
            .c = c,
        };
        s->host->parallel_for(prm->numel, adam_core_range, &job);
    }
    return RN_OK;
}

/* The same step for the host to run on a device. */
static int adam_core_device_update(void *self, const rn_group *group, adam_wd_mode mode,
                                   rn_update *u)
{
    adam_core *s = self;
    u->kind = RN_UPDATE_ADAM;
    u->state[0] = 0;
    u->state[1] = 1;
    u->state[2] = s->amsgrad ? 2 : -1;
    return adam_core_coef(s, group, mode, &u->c.adam);
}

/* The library around one plugin descriptor, and its entry point. */
#define ADAM_CORE_LIBRARY(plugin_)                                                               \
    static const rn_plugin *const adam_core_plugins[] = {&plugin_};                              \
    static const rn_library adam_core_library = {                                                \
        .struct_size = sizeof(rn_library),                                                       \
        .abi_major = RN_ABI_MAJOR,                                                               \
        .abi_minor = RN_ABI_MINOR,                                                               \
        .build_signature = RN_BUILD_SIGNATURE_CPU,                                               \
        .plugins = adam_core_plugins,                                                            \
        .n_plugins = 1,                                                                          \
    };                                                                                           \
    RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)                             \
    {                                                                                            \
        return host->abi_major == RN_ABI_MAJOR ? &adam_core_library : NULL;                      \
    }

#endif
