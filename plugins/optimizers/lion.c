/* lion — EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
 * Algorithms"), with the update of the reference PyTorch implementation, lucidrains/lion-pytorch
 * (update_fn, decoupled_weight_decay = False):
 *
 *   p = p * (1 - lr * wd)
 *   update = sign(beta1 * m + (1 - beta1) * g)        sign(0) = 0, as torch.sign
 *   p = p - lr * update
 *   m = beta2 * m + (1 - beta2) * g
 *
 * lr, beta1 and wd come from the group (the host fills them from the settings "lr", "beta1" and
 * "weight_decay" and from the schedule, which may move beta1 as it moves SGD's momentum); beta2 is
 * this instance's setting. One instance serves one parameter group. Lion's update has the same
 * magnitude (lr) for every element, so it wants an lr ~3-10x smaller than AdamW's and a weight
 * decay ~3-10x larger to keep lr * wd the same.
 *
 * Rounding, as PyTorch does it (float32 tensors, Python-double scalars; see adamw.c):
 *   - the scalars 1 - lr*wd, beta1, 1 - beta1, beta2, 1 - beta2 and -lr are computed in double and
 *     cast to float once;
 *   - `m*beta1` and `m*beta2` are rounded to float, and the `add(g, alpha=1-beta)` that follows is
 *     one FMA on the AVX2 CPUs PyTorch's kernels run on (done as double arithmetic: a float
 *     product is exact in double);
 *   - p - lr * sign is exact up to one rounding whichever way it is computed.
 * A NaN in beta1*m + (1-beta1)*g gives sign 0 (torch 1.13's CPU sign does the same).
 *
 * Optimizer state: state_floats = 1 float per element, the momentum m (lion-pytorch's
 * state["exp_avg"]), zeroed by the host before the first step and checkpointed by it.
 */
#include <runner/plugin.h>

#include <math.h>

#include "../../kernels/optim_elem.h"

typedef struct lion {
    const rn_host *host;
    rn_ctx *ctx;
    double beta2;
} lion;

/* One tensor's update; the element math is kernels/optim_elem.h's, which the GPU runs too. */
typedef struct lion_job {
    float *p;
    const float *grad;
    float *m;
    rn_lion_coef c;
} lion_job;

static void lion_range(void *arg, int64_t begin, int64_t end)
{
    const lion_job *j = arg;
    const rn_lion_coef c = j->c; /* a local copy: the stores below cannot alias it */
    for (int64_t i = begin; i < end; i++) rn_lion_elem(&c, &j->p[i], j->grad[i], &j->m[i]);
}

static const rn_setting lion_settings[] = {
    {"lr", RN_SETTING_NUMBER, 1e-4, NULL, 0, INFINITY, NULL,
     "learning rate: the base lr the schedule scales (typically 3-10x below AdamW's)", 0},
    {"beta1", RN_SETTING_NUMBER, 0.9, NULL, 0, 1, NULL,
     "interpolation between momentum and gradient for the sign update, in [0, 1); a schedule may "
     "move it like momentum", RN_SETTING_MAX_EXCLUSIVE},
    {"beta2", RN_SETTING_NUMBER, 0.99, NULL, 0, 1, NULL,
     "decay of the momentum (running mean of gradients), in [0, 1)", RN_SETTING_MAX_EXCLUSIVE},
    {"weight_decay", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "decoupled weight decay: each step multiplies the parameters by 1 - lr * weight_decay", 0},
};

static int lion_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    lion *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    s->beta2 = host->get_number(ctx, "beta2");
    *self = s;
    return RN_OK;
}

static void lion_destroy(void *self)
{
    lion *s = self;
    if (s) s->host->free(s);
}

static size_t lion_state_floats(void *self)
{
    (void)self;
    return 1;
}

/* This step's coefficients; refuses a beta1 a schedule moved out of [0, 1). Shared by step()
 * and device_update(). */
static int lion_coef(lion *s, const rn_group *group, rn_lion_coef *c)
{
    double lr = group->lr, beta1 = group->momentum, wd = group->weight_decay;
    if (!(beta1 >= 0 && beta1 < 1)) {
        /* The setting is checked by the host; only a schedule can get here. */
        s->host->set_error(s->ctx, "group \"%s\": beta1 (momentum) must be in [0, 1), got %g",
                           group->name, beta1);
        return RN_ERR_CONFIG;
    }
    *c = (rn_lion_coef){
        .decay = (float)(1 - lr * wd),
        .beta1 = (float)beta1,
        .keep1 = (float)(1 - beta1),
        .beta2 = (float)s->beta2,
        .keep2 = (float)(1 - s->beta2),
        .neg_lr = (float)-lr,
    };
    return RN_OK;
}

static int lion_step(void *self, rn_group *group)
{
    lion *s = self;
    rn_lion_coef c;
    int rc = lion_coef(s, group, &c);
    if (rc) return rc;
    for (size_t k = 0; k < group->n_params; k++) {
        rn_param *prm = &group->params[k];
        if (prm->numel <= 0) continue;
        if (!prm->state) {
            s->host->set_error(s->ctx, "parameter \"%s\" has no optimizer state", prm->name);
            return RN_ERR;
        }
        lion_job job = {.p = prm->value, .grad = prm->grad, .m = prm->state, .c = c};
        s->host->parallel_for(prm->numel, lion_range, &job);
    }
    return RN_OK;
}

static int lion_device_update(void *self, const rn_group *group, rn_update *u)
{
    u->kind = RN_UPDATE_LION;
    u->state[0] = 0;
    u->state[1] = u->state[2] = -1;
    return lion_coef(self, group, &u->c.lion);
}

static const rn_optimizer_api lion_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = lion_state_floats,
    .step = lion_step,
    .device_update = lion_device_update,
};

static const rn_plugin lion_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "lion",
    .version = "1.0.0",
    .summary = "Lion: sign of interpolated momentum, decoupled weight decay (lucidrains/lion-pytorch)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = lion_settings,
    .n_settings = sizeof lion_settings / sizeof lion_settings[0],
    .create = lion_create,
    .destroy = lion_destroy,
    .api = &lion_api,
};

static const rn_plugin *const lion_plugins[] = {&lion_plugin};

static const rn_library lion_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = lion_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &lion_library : NULL;
}
