/* lamb — Layer-wise Adaptive Moments for Batch training (You et al. 2020, "Large Batch
 * Optimization for Deep Learning: Training BERT in 76 minutes"), with the update of timm's
 * timm/optim/lamb.py (the NVLAMB variant, single-tensor path) under these fixed choices:
 * max_grad_norm = None (no global gradient-norm clipping: it needs every group's gradients, and one
 * instance sees one group; clip gradients in the loop instead), grad_averaging = True,
 * trust_clip = False, caution = False, decoupled_decay = False. bias_correction and always_adapt are
 * settings with timm's defaults (true, false):
 *
 *   t = group->step + 1
 *   bc1, bc2 = bias_correction ? (1 - beta1^t, 1 - beta2^t) : (1, 1)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)
 *   if wd != 0:                 u = u + wd * p                  (L2 added to the update)
 *   if wd != 0 or always_adapt: u = u * trust(||p||, ||u||)      (norms over the whole tensor)
 *   p = p - lr * u
 *
 * where trust(w, n) = w / n, or 1 when w or n is 0 (or NaN). As in timm, a tensor without weight
 * decay (biases, norms when the recipe gives them weight_decay 0) gets the plain Adam-style update
 * unless always_adapt is set. lr, beta1 and wd come from the group (the host fills them from the
 * settings "lr", "beta1" and "weight_decay" and from the schedule); beta2, eps, bias_correction and
 * always_adapt are this instance's settings. One instance serves one parameter group.
 *
 * Rounding, as PyTorch does it (float32 tensors, Python-double scalars; see adamw.c): the scalars
 * are computed in double and cast to float once; every tensor op is rounded to float, the
 * `add(x, alpha=s)`-style ops (m, v, u + wd*p, p - lr*u) as one FMA; the two norms are float32
 * tensors (rounded once from the exact value here) and w / n is a float division. The norms are
 * accumulated deterministically: fixed chunks of LAMB_CHUNK elements, each summed in order in
 * double (a float square is exact in double), then the chunk sums added in chunk order, so the
 * result does not depend on the thread count or on how the host splits the range. (PyTorch's own
 * float32 norm may round differently in the last bit; the effect on p is ~1e-7 * lr relative.)
 *
 * A step makes two passes over a tensor that needs the trust ratio: the first updates m and v and
 * sums p^2 and u^2; the second recomputes u from the new m and v (bit for bit the same) and updates
 * p. Without the trust ratio one pass does everything.
 *
 * Optimizer state: state_floats = 2 floats per element, stored per parameter as consecutive blocks
 * of numel floats: [exp_avg | exp_avg_sq], timm's state["exp_avg"] and ["exp_avg_sq"], zeroed by
 * the host before the first step and checkpointed by it. The chunk sums live in a scratch buffer of
 * 2 doubles per chunk owned by the instance (not state).
 */
#include <runner/plugin.h>

#include <math.h>

#include "../../kernels/optim_elem.h"

/* Elements per reduction chunk: fixed, so the summation order is too. */
#define LAMB_CHUNK 4096

typedef struct lamb {
    const rn_host *host;
    rn_ctx *ctx;
    double beta2, eps;
    int bias_correction, always_adapt;
    double *sums;     /* 2 per chunk: sum p^2, sum u^2 */
    int64_t sums_cap; /* chunks the buffer holds */
} lamb;

/* One tensor's update; the element math is kernels/optim_elem.h's, which the GPU runs too. */
typedef struct lamb_job {
    float *p;
    const float *grad;
    float *m, *v;
    int64_t n;
    rn_lamb_coef c;
    float ratio;        /* trust ratio (pass 2) */
    double *sums;       /* pass 1 with the trust ratio: 2 per chunk; NULL: one-pass update */
} lamb_job;

/* Moments for [begin, end); without sums also p; with sums, adds p^2 and u^2 to *sp and *su. */
static void lamb_moments(const lamb_job *j, int64_t begin, int64_t end, double *sp, double *su)
{
    double a = 0, b = 0;
    const rn_lamb_coef c = j->c; /* a local copy: the stores below cannot alias it */
    for (int64_t i = begin; i < end; i++) {
        rn_lamb_moments(&c, j->grad[i], &j->m[i], &j->v[i]);
        float p = j->p[i];
        float u = rn_lamb_update(&c, j->m[i], j->v[i], p);
        if (sp) {
            a += (double)p * p;
            b += (double)u * u;
        } else {
            j->p[i] = rn_fma_d(c.neg_lr, u, p);                     /* p.add_(u, alpha=-lr) */
        }
    }
    if (sp) *sp = a, *su = b;
}

/* Pass 1. With sums, handles every fixed chunk that starts in [begin, end) — the whole chunk, even
 * past end — so each chunk is summed by exactly one call in one order, however the host splits. */
static void lamb_pass1(void *arg, int64_t begin, int64_t end)
{
    const lamb_job *j = arg;
    if (!j->sums) {
        lamb_moments(j, begin, end, NULL, NULL);
        return;
    }
    for (int64_t c = (begin + LAMB_CHUNK - 1) / LAMB_CHUNK; c * LAMB_CHUNK < end; c++) {
        int64_t lo = c * LAMB_CHUNK, hi = lo + LAMB_CHUNK < j->n ? lo + LAMB_CHUNK : j->n;
        lamb_moments(j, lo, hi, &j->sums[2 * c], &j->sums[2 * c + 1]);
    }
}

/* Pass 2: p = p - lr * (u * ratio). */
static void lamb_pass2(void *arg, int64_t begin, int64_t end)
{
    const lamb_job *j = arg;
    const rn_lamb_coef c = j->c;
    const float ratio = j->ratio;
    for (int64_t i = begin; i < end; i++) {
        float p = j->p[i];
        float u = rn_lamb_update(&c, j->m[i], j->v[i], p) * ratio; /* u.mul_(trust_ratio) */
        j->p[i] = rn_fma_d(c.neg_lr, u, p);                         /* p.add_(u, alpha=-lr) */
    }
}

static const rn_setting lamb_settings[] = {
    {"lr", RN_SETTING_NUMBER, 1e-3, NULL, 0, INFINITY, NULL,
     "learning rate: the base lr the schedule scales", 0},
    {"beta1", RN_SETTING_NUMBER, 0.9, NULL, 0, 1, NULL,
     "decay of the running mean of gradients, in [0, 1); a schedule may move it like momentum",
     RN_SETTING_MAX_EXCLUSIVE},
    {"beta2", RN_SETTING_NUMBER, 0.999, NULL, 0, 1, NULL,
     "decay of the running mean of squared gradients, in [0, 1)", RN_SETTING_MAX_EXCLUSIVE},
    {"eps", RN_SETTING_NUMBER, 1e-6, NULL, 0, INFINITY, NULL,
     "term added to the denominator for numerical stability, > 0", RN_SETTING_MIN_EXCLUSIVE},
    {"weight_decay", RN_SETTING_NUMBER, 1e-2, NULL, 0, INFINITY, NULL,
     "L2 term weight_decay * p added to the update before the trust ratio; 0 also skips the "
     "trust ratio unless always_adapt", 0},
    {"bias_correction", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,
     "divide the moments by 1 - beta^t as Adam does", 0},
    {"always_adapt", RN_SETTING_BOOL, 0, NULL, 1, 0, NULL,
     "apply the trust ratio to tensors with weight_decay 0 too (timm skips them by default)", 0},
};

static int lamb_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    lamb *s = host->alloc(sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    s->host = host;
    s->ctx = ctx;
    s->beta2 = host->get_number(ctx, "beta2");
    s->eps = host->get_number(ctx, "eps");
    s->bias_correction = host->get_bool(ctx, "bias_correction");
    s->always_adapt = host->get_bool(ctx, "always_adapt");
    *self = s;
    return RN_OK;
}

static void lamb_destroy(void *self)
{
    lamb *s = self;
    if (!s) return;
    if (s->sums) s->host->free(s->sums);
    s->host->free(s);
}

static size_t lamb_state_floats(void *self)
{
    (void)self;
    return 2;
}

/* Makes room for the chunk sums of an n-element tensor. */
static int lamb_reserve(lamb *s, int64_t n)
{
    int64_t chunks = (n + LAMB_CHUNK - 1) / LAMB_CHUNK;
    if (chunks <= s->sums_cap) return RN_OK;
    double *buf = s->host->alloc((size_t)chunks * 2 * sizeof *buf);
    if (!buf) {
        s->host->set_error(s->ctx, "out of memory for the trust-ratio sums of %lld elements",
                           (long long)n);
        return RN_ERR_NOMEM;
    }
    if (s->sums) s->host->free(s->sums);
    s->sums = buf;
    s->sums_cap = chunks;
    return RN_OK;
}

/* This step's coefficients and whether the trust ratio applies; refuses a beta1 a schedule moved
 * out of [0, 1). Shared by step() and device_update(). */
static int lamb_coef(lamb *s, const rn_group *group, rn_lamb_coef *c, int *adapt)
{
    double lr = group->lr, beta1 = group->momentum, wd = group->weight_decay;
    if (!(beta1 >= 0 && beta1 < 1)) {
        /* The setting is checked by the host; only a schedule can get here. */
        s->host->set_error(s->ctx, "group \"%s\": beta1 (momentum) must be in [0, 1), got %g",
                           group->name, beta1);
        return RN_ERR_CONFIG;
    }
    double t = (double)(group->step + 1);
    double bc1 = 1, bc2 = 1;
    if (s->bias_correction) {
        bc1 = 1 - pow(beta1, t);
        bc2 = 1 - pow(s->beta2, t);
    }
    *adapt = wd != 0 || s->always_adapt;
    *c = (rn_lamb_coef){
        .beta1 = (float)beta1,
        .keep1 = (float)(1 - beta1),
        .beta2 = (float)s->beta2,
        .keep2 = (float)(1 - s->beta2),
        .bc1 = (float)bc1,
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)s->eps,
        .wd = (float)wd,
        .has_wd = wd != 0,
        .neg_lr = (float)-lr,
    };
    return RN_OK;
}

static int lamb_step(void *self, rn_group *group)
{
    lamb *s = self;
    rn_lamb_coef c;
    int adapt, rc = lamb_coef(s, group, &c, &adapt);
    if (rc) return rc;
    for (size_t k = 0; k < group->n_params; k++) {
        rn_param *prm = &group->params[k];
        if (prm->numel <= 0) continue;
        if (!prm->state) {
            s->host->set_error(s->ctx, "parameter \"%s\" has no optimizer state", prm->name);
            return RN_ERR;
        }
        lamb_job job = {
            .p = prm->value,
            .grad = prm->grad,
            .m = prm->state,
            .v = prm->state + prm->numel,
            .n = prm->numel,
            .c = c,
            .ratio = 1.0f,
            .sums = NULL,
        };
        if (!adapt) {
            s->host->parallel_for(prm->numel, lamb_pass1, &job);
            continue;
        }
        rc = lamb_reserve(s, prm->numel);
        if (rc) return rc;
        job.sums = s->sums;
        s->host->parallel_for(prm->numel, lamb_pass1, &job);
        int64_t chunks = (prm->numel + LAMB_CHUNK - 1) / LAMB_CHUNK;
        double sp = 0, su = 0;
        for (int64_t ck = 0; ck < chunks; ck++) {
            sp += s->sums[2 * ck];
            su += s->sums[2 * ck + 1];
        }
        float w_norm = (float)sqrt(sp), u_norm = (float)sqrt(su); /* p.norm(), update.norm() */
        job.ratio = w_norm > 0 && u_norm > 0 ? w_norm / u_norm : 1.0f;
        s->host->parallel_for(prm->numel, lamb_pass2, &job);
    }
    return RN_OK;
}

static int lamb_device_update(void *self, const rn_group *group, rn_update *u)
{
    u->kind = RN_UPDATE_LAMB;
    u->state[0] = 0;
    u->state[1] = 1;
    u->state[2] = -1;
    return lamb_coef(self, group, &u->c.lamb, &u->lamb_adapt);
}

static const rn_optimizer_api lamb_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = lamb_state_floats,
    .step = lamb_step,
    .device_update = lamb_device_update,
};

static const rn_plugin lamb_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "lamb",
    .version = "1.0.0",
    .summary = "LAMB: Adam moments with a per-tensor trust ratio ||p|| / ||update|| (timm Lamb)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = lamb_settings,
    .n_settings = sizeof lamb_settings / sizeof lamb_settings[0],
    .create = lamb_create,
    .destroy = lamb_destroy,
    .api = &lamb_api,
};

static const rn_plugin *const lamb_plugins[] = {&lamb_plugin};

static const rn_library lamb_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = lamb_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &lamb_library : NULL;
}
