/* adam — Adam with L2 weight decay added to the gradient (and the AMSGrad variant), with exactly
 * torch.optim.Adam's update (PyTorch 1.13, its single-tensor CPU path, foreach=False):
 *
 *   t = group->step + 1
 *   g = grad + wd * p                              (coupled L2, as torch.optim.Adam; see adamw for
 *                                                   decoupled decay)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   vmax = max(vmax, v)                            amsgrad only; then vmax replaces v below
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   p = p - lr / (1 - beta1^t) * m / denom
 *
 * lr, beta1 and wd come from the group (the host fills them from the settings "lr", "beta1" and
 * "weight_decay" and from the schedule, which may move beta1 as it moves SGD's momentum); beta2,
 * eps and amsgrad are this instance's settings. One instance serves one parameter group.
 *
 * Rounding, as PyTorch does it (float32 tensors, Python-double scalars):
 *   - the scalars wd, beta1, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2^t), eps and
 *     -lr / (1 - beta1^t) are computed in double and cast to float once, as PyTorch casts a
 *     Python scalar to the tensor's type;
 *   - every tensor op is rounded to float, except that the kernels PyTorch runs on AVX2 CPUs fuse
 *     `g + wd*p` (grad.add(p, alpha=wd)), `m*beta1 + (1-beta1)*g` and `v*beta2 + ((1-beta2)*g)*g`
 *     into one FMA each (as in adamw.c and sgd.c; checked against torch 1.13 with the fixture of
 *     tests/test_adam.c). The FMA is done as double arithmetic (a float product is exact in
 *     double), which differs from a true fmaf only on double-rounding ties.
 *   - addcdiv is p + ((-step_size * m) / denom), rounded after each op, as PyTorch's kernel.
 *
 * Optimizer state: state_floats = 2 (3 with amsgrad) floats per element, stored per parameter as
 * consecutive blocks of numel floats: [exp_avg | exp_avg_sq | max_exp_avg_sq (amsgrad only)],
 * the same tensors as PyTorch's state["exp_avg"], ["exp_avg_sq"], ["max_exp_avg_sq"]. The host
 * zeroes them before the first step (as PyTorch does) and checkpoints them.
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct adam {
    const rn_host *host;
    rn_ctx *ctx;
    double beta2, eps;
    int amsgrad;
} adam;

/* One tensor's update; the coefficients are float, as PyTorch casts its Python scalars. */
typedef struct adam_job {
    float *p;
    const float *grad;
    float *m, *v, *vmax; /* vmax is NULL without amsgrad */
    float wd;            /* L2 coefficient added to the gradient */
    float beta1, keep1;  /* beta1, 1 - beta1 */
    float beta2, keep2;  /* beta2, 1 - beta2 */
    float bc2_sqrt;      /* sqrt(1 - beta2^t) */
    float eps;
    float neg_step;      /* -lr / (1 - beta1^t) */
} adam_job;

/* c + a * x rounded once (see the header comment). */
static inline float fma_d(float a, float x, float c)
{
    return (float)((double)a * (double)x + (double)c);
}

static void adam_range(void *arg, int64_t begin, int64_t end)
{
    const adam_job *j = arg;
    for (int64_t i = begin; i < end; i++) {
        float g = j->grad[i];
        float p = j->p[i];
        if (j->wd != 0.0f) g = fma_d(j->wd, p, g);             /* grad.add(p, alpha=wd) */
        float m = fma_d(j->keep1, g, j->m[i] * j->beta1);       /* exp_avg.mul_(b1).add_(g, 1-b1) */
        float v = fma_d(j->keep2 * g, g, j->v[i] * j->beta2);   /* exp_avg_sq.mul_(b2).addcmul_ */
        j->m[i] = m;
        j->v[i] = v;
        if (j->vmax) {
            float vm = j->vmax[i];
            if (v > vm || isnan(v)) vm = v;                     /* torch.maximum propagates NaN */
            j->vmax[i] = vm;
            v = vm;
        }
        float denom = sqrtf(v) / j->bc2_sqrt + j->eps;         /* (v.sqrt() / bc2_sqrt).add_(eps) */
        j->p[i] = p + (j->neg_step * m) / denom;                 /* addcdiv_(m, denom, -step_size) */
    }
}

static const rn_setting adam_settings[] = {
    {"lr", RN_SETTING_NUMBER, 1e-3, NULL, 0, INFINITY, NULL,
     "learning rate: the base lr the schedule scales", 0},
    {"beta1", RN_SETTING_NUMBER, 0.9, NULL, 0, 1, NULL,
     "decay of the running mean of gradients, in [0, 1); a schedule may move it like momentum",
     RN_SETTING_MAX_EXCLUSIVE},
    {"beta2", RN_SETTING_NUMBER, 0.999, NULL, 0, 1, NULL,
     "decay of the running mean of squared gradients, in [0, 1)", RN_SETTING_MAX_EXCLUSIVE},
    {"eps", RN_SETTING_NUMBER, 1e-8, NULL, 0, INFINITY, NULL,
     "term added to the denominator for numerical stability, > 0", RN_SETTING_MIN_EXCLUSIVE},
    {"weight_decay", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "L2 penalty added to the gradient (coupled, as in torch.optim.Adam; use adamw for decoupled)",
     0},
    {"amsgrad", RN_SETTING_BOOL, 0, NULL, 1, 0, NULL,
     "AMSGrad: normalize by the running maximum of the squared-gradient mean (1 more state float)",
     0},
};

static int adam_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    adam *s = host->alloc(sizeof *s);
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

static void adam_destroy(void *self)
{
    adam *s = self;
    if (s) s->host->free(s);
}

static size_t adam_state_floats(void *self)
{
    const adam *s = self;
    return s->amsgrad ? 3 : 2;
}

static int adam_step(void *self, rn_group *group)
{
    adam *s = self;
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
    for (size_t k = 0; k < group->n_params; k++) {
        rn_param *prm = &group->params[k];
        if (prm->numel <= 0) continue;
        if (!prm->state) {
            s->host->set_error(s->ctx, "parameter \"%s\" has no optimizer state", prm->name);
            return RN_ERR;
        }
        adam_job job = {
            .p = prm->value,
            .grad = prm->grad,
            .m = prm->state,
            .v = prm->state + prm->numel,
            .vmax = s->amsgrad ? prm->state + 2 * prm->numel : NULL,
            .wd = (float)wd,
            .beta1 = (float)beta1,
            .keep1 = (float)(1 - beta1),
            .beta2 = (float)s->beta2,
            .keep2 = (float)(1 - s->beta2),
            .bc2_sqrt = (float)bc2_sqrt,
            .eps = (float)s->eps,
            .neg_step = (float)-step_size,
        };
        s->host->parallel_for(prm->numel, adam_range, &job);
    }
    return RN_OK;
}

static const rn_optimizer_api adam_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = adam_state_floats,
    .step = adam_step,
};

static const rn_plugin adam_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "adam",
    .version = "1.0.0",
    .summary = "Adam with L2 weight decay and optional AMSGrad (torch.optim.Adam)",
    .devices = RN_DEVICE_CPU,
    .settings = adam_settings,
    .n_settings = sizeof adam_settings / sizeof adam_settings[0],
    .create = adam_create,
    .destroy = adam_destroy,
    .api = &adam_api,
};

static const rn_plugin *const adam_plugins[] = {&adam_plugin};

static const rn_library adam_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = adam_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &adam_library : NULL;
}
