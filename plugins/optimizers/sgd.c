/* sgd — stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, with
 * exactly torch.optim.SGD's update (its single-tensor CPU path: float32 values, and each
 * `a.add(b, alpha=s)` rounded once, so results match PyTorch bit for bit):
 *
 *   g = grad + wd * p
 *   if momentum != 0:
 *       buf = g                                      on the group's first step (group->step == 0)
 *       buf = momentum * buf + (1 - dampening) * g   afterwards
 *       g = nesterov ? g + momentum * buf : buf
 *   p = p - lr * g
 *
 * lr, momentum and wd come from the group (the host fills them from the settings and the
 * schedule); dampening and nesterov are this instance's settings. The momentum buffer is the
 * parameter's optimizer state (1 float per element when the momentum setting is > 0), so
 * checkpoints carry it and a resumed run continues exactly.
 */
#include <runner/plugin.h>

#include <math.h>

#include "../../kernels/optim_elem.h"

typedef struct sgd {
    const rn_host *host;
    rn_ctx *ctx;
    double momentum; /* the setting: decides whether a momentum buffer exists */
    double dampening;
    int nesterov;
} sgd;

/* One tensor's update; the element math is kernels/optim_elem.h's, which the GPU runs too. */
typedef struct sgd_job {
    float *p;
    const float *grad;
    float *buf; /* NULL without momentum */
    rn_sgd_coef c;
} sgd_job;

/* ~35 ms per step for 11M parameters on the 2 cores here; hardware FMA would take ~23 ms but needs
 * per-CPU dispatch, which is not worth it next to a forward/backward pass. */
static void sgd_range(void *arg, int64_t begin, int64_t end)
{
    const sgd_job *j = arg;
    const rn_sgd_coef c = j->c; /* a local copy: the stores below cannot alias it */
    if (j->buf)
        for (int64_t i = begin; i < end; i++) rn_sgd_elem(&c, &j->p[i], j->grad[i], &j->buf[i]);
    else
        for (int64_t i = begin; i < end; i++) rn_sgd_elem(&c, &j->p[i], j->grad[i], NULL);
}

static const rn_setting sgd_settings[] = {
    {"lr", RN_SETTING_NUMBER, 0.01, NULL, 0, INFINITY, NULL,
     "learning rate: the base lr the schedule scales", 0},
    {"momentum", RN_SETTING_NUMBER, 0, NULL, 0, 1, NULL,
     "momentum factor; 0 keeps no momentum buffer", RN_SETTING_MAX_EXCLUSIVE},
    {"dampening", RN_SETTING_NUMBER, 0, NULL, 0, 1, NULL,
     "dampening of the gradient added to the momentum buffer, in [0, 1]", 0},
    {"nesterov", RN_SETTING_BOOL, 0, NULL, 1, 0, NULL,
     "Nesterov momentum (needs momentum > 0 and dampening = 0)", 0},
    {"weight_decay", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "L2 penalty added to the gradient (coupled, as in torch.optim.SGD)", 0},
};

static int sgd_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double momentum = host->get_number(ctx, "momentum");
    double dampening = host->get_number(ctx, "dampening");
    int nesterov = host->get_bool(ctx, "nesterov");
    if (nesterov && (momentum <= 0 || dampening != 0)) {
        host->set_error(ctx, "nesterov = true needs momentum > 0 and dampening = 0, got "
                        "momentum = %g and dampening = %g", momentum, dampening);
        return RN_ERR_CONFIG;
    }
    sgd *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    s->momentum = momentum;
    s->dampening = dampening;
    s->nesterov = nesterov;
    *self = s;
    return RN_OK;
}

static void sgd_destroy(void *self)
{
    sgd *s = self;
    if (s) s->host->free(s);
}

static size_t sgd_state_floats(void *self)
{
    const sgd *s = self;
    return s->momentum > 0 ? 1 : 0;
}

/* This step's coefficients, and whether it uses the momentum buffer; refuses a momentum the
 * instance has no buffer for. Shared by step() and device_update(). */
static int sgd_coef(sgd *s, const rn_group *group, rn_sgd_coef *c, int *has_buf)
{
    *has_buf = s->momentum > 0;
    if (group->momentum != 0 && !*has_buf) {
        /* A scheduler raised the momentum of an instance created without a buffer. */
        s->host->set_error(s->ctx, "group \"%s\": momentum %g asked for, but the optimizer was "
                           "created with momentum = 0 (no momentum buffer); set momentum > 0",
                           group->name, group->momentum);
        return RN_ERR_CONFIG;
    }
    if (*has_buf && group->momentum == 0)
        *has_buf = 0; /* PyTorch keeps the buffer untouched while momentum is 0 */
    *c = (rn_sgd_coef){
        .lr = (float)group->lr,
        .wd = (float)group->weight_decay,
        .momentum = (float)group->momentum,
        .keep = (float)(1.0 - s->dampening),
        .first = group->step == 0,
        .nesterov = s->nesterov,
    };
    return RN_OK;
}

static int sgd_step(void *self, rn_group *group)
{
    sgd *s = self;
    rn_sgd_coef c;
    int has_buf, rc = sgd_coef(s, group, &c, &has_buf);
    if (rc) return rc;
    for (size_t k = 0; k < group->n_params; k++) {
        rn_param *prm = &group->params[k];
        sgd_job job = {.p = prm->value, .grad = prm->grad, .buf = has_buf ? prm->state : NULL,
                       .c = c};
        if (has_buf && !prm->state) {
            s->host->set_error(s->ctx, "parameter \"%s\" has no momentum state", prm->name);
            return RN_ERR;
        }
        s->host->parallel_for(prm->numel, sgd_range, &job);
    }
    return RN_OK;
}

static int sgd_device_update(void *self, const rn_group *group, rn_update *u)
{
    int has_buf, rc = sgd_coef(self, group, &u->c.sgd, &has_buf);
    u->kind = RN_UPDATE_SGD;
    u->state[0] = has_buf ? 0 : -1;
    u->state[1] = u->state[2] = -1;
    return rc;
}

static const rn_optimizer_api sgd_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = sgd_state_floats,
    .step = sgd_step,
    .device_update = sgd_device_update,
};

static const rn_plugin sgd_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "sgd",
    .version = "1.0.0",
    .summary = "SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = sgd_settings,
    .n_settings = sizeof sgd_settings / sizeof sgd_settings[0],
    .create = sgd_create,
    .destroy = sgd_destroy,
    .api = &sgd_api,
};

static const rn_plugin *const sgd_plugins[] = {&sgd_plugin};

static const rn_library sgd_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = sgd_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &sgd_library : NULL;
}
