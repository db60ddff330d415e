/* rmsprop — RMSprop with L2 weight decay, momentum and the centered variant, with exactly
 * torch.optim.RMSprop's update (PyTorch 1.13, its single-tensor CPU path, foreach=False):
 *
 *   g = grad + wd * p                              (coupled L2, as torch.optim.RMSprop)
 *   sq = alpha * sq + (1 - alpha) * g * g
 *   if centered:
 *       ga = alpha * ga + (1 - alpha) * g
 *       avg = sqrt(sq - ga * ga) + eps
 *   else:
 *       avg = sqrt(sq) + eps
 *   if momentum > 0:
 *       buf = momentum * buf + g / avg             (buf starts at 0, unlike SGD's)
 *       p = p - lr * buf
 *   else:
 *       p = p - lr * g / avg
 *
 * lr, momentum and wd come from the group (the host fills them from the settings "lr",
 * "momentum" and "weight_decay" and from the schedule); alpha, eps and centered are this
 * instance's settings. One instance serves one parameter group. The momentum buffer exists when
 * the momentum setting is > 0 (PyTorch creates it on the first step when the group's momentum is
 * > 0); a schedule may move the momentum, and while it is 0 the buffer is left untouched, as in
 * PyTorch.
 *
 * Rounding, as PyTorch does it (float32 tensors, Python-double scalars):
 *   - the scalars wd, alpha, 1 - alpha, eps, momentum and -lr are cast to float once, as PyTorch
 *     casts a Python scalar to the tensor's type;
 *   - every tensor op is rounded to float, except that the kernels PyTorch runs on AVX2 CPUs fuse
 *     `g + wd*p` (grad.add(p, alpha=wd)), `sq*alpha + ((1-alpha)*g)*g` (addcmul_),
 *     `ga*alpha + (1-alpha)*g` (add_ with alpha), `sq + (-ga)*ga` (addcmul with value -1) and
 *     `p + (-lr)*buf` (add_ with alpha) into one FMA each, as adamw.c and sgd.c explain (checked
 *     against torch 1.13 with the fixture of tests/test_rmsprop.c). The FMA is done as double
 *     arithmetic (a float product is exact in double), which differs from a true fmaf only on
 *     double-rounding ties.
 *   - addcdiv is self + ((value * t1) / t2), rounded after each op, as PyTorch's kernel:
 *     buf*momentum + g/avg with momentum, p + ((-lr * g) / avg) without.
 *
 * Optimizer state: state_floats = 1 + (momentum > 0) + centered floats per element, stored per
 * parameter as consecutive blocks of numel floats:
 *   [square_avg | momentum_buffer (momentum setting > 0 only) | grad_avg (centered only)],
 * the same tensors as PyTorch's state["square_avg"], ["momentum_buffer"], ["grad_avg"]. The host
 * zeroes them before the first step (as PyTorch does) and checkpoints them.
 */
#include <runner/plugin.h>

#include <math.h>

#include "../../kernels/optim_elem.h"

typedef struct rmsprop {
    const rn_host *host;
    rn_ctx *ctx;
    double alpha, eps;
    double momentum; /* the setting: decides whether a momentum buffer exists */
    int centered;
} rmsprop;

/* One tensor's update; the element math is kernels/optim_elem.h's, which the GPU runs too. */
typedef struct rmsprop_job {
    float *p;
    const float *grad;
    float *sq, *buf, *ga; /* buf is NULL without momentum, ga without centered */
    rn_rmsprop_coef c;
} rmsprop_job;

static void rmsprop_range(void *arg, int64_t begin, int64_t end)
{
    const rmsprop_job *j = arg;
    const rn_rmsprop_coef c = j->c; /* a local copy: the stores below cannot alias it */
    float *buf = j->buf, *ga = j->ga;
    if (buf && ga)
        for (int64_t i = begin; i < end; i++)
            rn_rmsprop_elem(&c, &j->p[i], j->grad[i], &j->sq[i], &buf[i], &ga[i]);
    else if (buf)
        for (int64_t i = begin; i < end; i++)
            rn_rmsprop_elem(&c, &j->p[i], j->grad[i], &j->sq[i], &buf[i], NULL);
    else if (ga)
        for (int64_t i = begin; i < end; i++)
            rn_rmsprop_elem(&c, &j->p[i], j->grad[i], &j->sq[i], NULL, &ga[i]);
    else
        for (int64_t i = begin; i < end; i++)
            rn_rmsprop_elem(&c, &j->p[i], j->grad[i], &j->sq[i], NULL, NULL);
}

static const rn_setting rmsprop_settings[] = {
    {"lr", RN_SETTING_NUMBER, 1e-2, NULL, 0, INFINITY, NULL,
     "learning rate: the base lr the schedule scales", 0},
    {"alpha", RN_SETTING_NUMBER, 0.99, NULL, 0, 1, NULL,
     "decay of the running mean of squared gradients, in [0, 1]", 0},
    {"eps", RN_SETTING_NUMBER, 1e-8, NULL, 0, INFINITY, NULL,
     "term added to the denominator for numerical stability, > 0", RN_SETTING_MIN_EXCLUSIVE},
    {"weight_decay", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "L2 penalty added to the gradient (coupled, as in torch.optim.RMSprop)", 0},
    {"momentum", RN_SETTING_NUMBER, 0, NULL, 0, 1, NULL,
     "momentum factor, in [0, 1); 0 keeps no momentum buffer", RN_SETTING_MAX_EXCLUSIVE},
    {"centered", RN_SETTING_BOOL, 0, NULL, 1, 0, NULL,
     "centered RMSprop: normalize by an estimate of the gradient's variance (1 more state float)",
     0},
};

static int rmsprop_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    rmsprop *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    s->alpha = host->get_number(ctx, "alpha");
    s->eps = host->get_number(ctx, "eps");
    s->momentum = host->get_number(ctx, "momentum");
    s->centered = host->get_bool(ctx, "centered");
    *self = s;
    return RN_OK;
}

static void rmsprop_destroy(void *self)
{
    rmsprop *s = self;
    if (s) s->host->free(s);
}

static size_t rmsprop_state_floats(void *self)
{
    const rmsprop *s = self;
    return 1u + (s->momentum > 0 ? 1u : 0u) + (s->centered ? 1u : 0u);
}

/* This step's coefficients and which state blocks it uses (*use_buf: the momentum buffer); refuses
 * what a schedule cannot ask of this instance. Shared by step() and device_update(). */
static int rmsprop_coef(rmsprop *s, const rn_group *group, rn_rmsprop_coef *c, int *use_buf)
{
    double momentum = group->momentum;
    int has_buf = s->momentum > 0;
    if (!(momentum >= 0 && momentum < 1)) {
        /* The setting is checked by the host; only a schedule can get here. */
        s->host->set_error(s->ctx, "group \"%s\": momentum must be in [0, 1), got %g",
                           group->name, momentum);
        return RN_ERR_CONFIG;
    }
    if (momentum > 0 && !has_buf) {
        /* A scheduler raised the momentum of an instance created without a buffer. */
        s->host->set_error(s->ctx, "group \"%s\": momentum %g asked for, but the optimizer was "
                           "created with momentum = 0 (no momentum buffer); set momentum > 0",
                           group->name, momentum);
        return RN_ERR_CONFIG;
    }
    *use_buf = has_buf && momentum > 0; /* PyTorch leaves the buffer alone while momentum is 0 */
    *c = (rn_rmsprop_coef){
        .wd = (float)group->weight_decay,
        .alpha = (float)s->alpha,
        .keep = (float)(1 - s->alpha),
        .eps = (float)s->eps,
        .momentum = (float)momentum,
        .neg_lr = (float)-group->lr,
    };
    return RN_OK;
}

static int rmsprop_step(void *self, rn_group *group)
{
    rmsprop *s = self;
    int has_buf = s->momentum > 0, use_buf = 0;
    rn_rmsprop_coef c;
    int rc = rmsprop_coef(s, group, &c, &use_buf);
    if (rc) return rc;
    for (size_t k = 0; k < group->n_params; k++) {
        rn_param *prm = &group->params[k];
        if (prm->numel <= 0) continue;
        if (!prm->state) {
            s->host->set_error(s->ctx, "parameter \"%s\" has no optimizer state", prm->name);
            return RN_ERR;
        }
        float *ga_block = prm->state + (has_buf ? 2 : 1) * prm->numel;
        rmsprop_job job = {
            .p = prm->value,
            .grad = prm->grad,
            .sq = prm->state,
            .buf = use_buf ? prm->state + prm->numel : NULL,
            .ga = s->centered ? ga_block : NULL,
            .c = c,
        };
        s->host->parallel_for(prm->numel, rmsprop_range, &job);
    }
    return RN_OK;
}

static int rmsprop_device_update(void *self, const rn_group *group, rn_update *u)
{
    rmsprop *s = self;
    int has_buf = s->momentum > 0, use_buf = 0;
    int rc = rmsprop_coef(s, group, &u->c.rmsprop, &use_buf);
    u->kind = RN_UPDATE_RMSPROP;
    u->state[0] = 0;
    u->state[1] = use_buf ? 1 : -1;
    u->state[2] = s->centered ? (has_buf ? 2 : 1) : -1;
    return rc;
}

static const rn_optimizer_api rmsprop_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = rmsprop_state_floats,
    .step = rmsprop_step,
    .device_update = rmsprop_device_update,
};

static const rn_plugin rmsprop_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "rmsprop",
    .version = "1.0.0",
    .summary = "RMSprop with momentum, centering and weight decay (torch.optim.RMSprop)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = rmsprop_settings,
    .n_settings = sizeof rmsprop_settings / sizeof rmsprop_settings[0],
    .create = rmsprop_create,
    .destroy = rmsprop_destroy,
    .api = &rmsprop_api,
};

static const rn_plugin *const rmsprop_plugins[] = {&rmsprop_plugin};

static const rn_library rmsprop_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = rmsprop_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &rmsprop_library : NULL;
}
