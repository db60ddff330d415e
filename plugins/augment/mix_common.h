/* What cutmix, mixup and cutmix_or_mixup share: timm's Mixup (timm/data/mixup.py) on a batch with
 * soft targets. Each plugin is a mix_config (cutmix: switch_prob 1, mixup: switch_prob 0) plus its
 * settings; RN_MIX_PLUGIN gives the boilerplate. Header-only: each plugin stays its own .so against
 * include/runner/plugin.h alone.
 *
 * Mixing. Sample i mixes with partner j = perm[i], perm a random cyclic permutation of [0, n)
 * (Sattolo's algorithm: one cycle through the whole batch, so no sample is its own partner when
 * n > 1, and any n works, odd too; timm pairs i with n-1-i and needs n even; torchvision pairs
 * i with i-1). A one-sample batch is left as it is. From copies of the original x and soft rows:
 *   CutMix: x_i[:, yl:yh, xl:xh] = x_j[:, yl:yh, xl:xh], lam = 1 - box area / (H*W) when
 *           correct_lam, else the Beta draw (timm's rand_bbox + cutmix_bbox_and_lam)
 *   Mixup:  x_i = x_i * lam + x_j * (1 - lam), in float with both weights rounded to float first
 *           (as torch's x.mul_(lam).add_(x.flip(0).mul_(1 - lam)))
 *   targets: t_i = t_i * lam + t_j * (1 - lam), the same float expression (timm's mixup_target)
 * Mode "batch" (timm's default) draws one coin, one lam and one box for the batch; "elem" draws
 * them per sample, so a sample's lam depends only on (seed, epoch, sample id).
 *
 * Randomness (all from rn_uniform / rn_rand of plugin.h):
 *   base      = rn_key3(batch->seed, batch->epoch, sample_ids[0])            the batch's key
 *   perm key  = rn_mix64(base ^ MIX_PERM_STREAM): Sattolo, position i (n-1 down to 1) swapped
 *               with rn_rand(perm key, i) % i
 *   draw key  = rn_mix64(base ^ MIX_DRAW_STREAM) in mode "batch", per sample
 *               rn_mix64(rn_key3(seed, epoch, sample_id) ^ MIX_DRAW_STREAM) in mode "elem":
 *     counter 0           apply coin: mix when u < prob
 *     counter 1           switch coin: CutMix when u < switch_prob (else Mixup)
 *     counters 2, 3       box centre cy = floor(u * H), cx = floor(u * W) (timm's randint(0, H))
 *     counters 64..319    first Gamma(alpha) of the Beta, 320..575 the second; a Gamma block b:
 *       b                 U of the boost Gamma(alpha + 1) * U^(1/alpha) when alpha < 1
 *       b+1+3k, b+2+3k    Box-Muller normal of Marsaglia-Tsang attempt k (k = 0..84)
 *       b+3+3k            its acceptance uniform
 *     lam = G1 / (G1 + G2) ~ Beta(alpha, alpha), computed from log G1 and log G2 so that tiny
 *     alphas (G underflowing to 0) stay defined. Acceptance is above 95% per attempt, so 85
 *     failed attempts (then the Gamma's mode-like d is used) never happen in practice.
 */
#ifndef RN_MIX_COMMON_H
#define RN_MIX_COMMON_H

#include <runner/plugin.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../kernels/augment_elem.h"

#define MIX_PERM_STREAM 0x6d69782d7065726dull /* "mix-perm" */
#define MIX_DRAW_STREAM 0x6d69782d64726177ull /* "mix-draw" */
#define MIX_GAMMA1 64u
#define MIX_GAMMA2 320u
#define MIX_GAMMA_ATTEMPTS 85u

typedef struct mix_config {
    double prob;         /* probability of mixing a batch ("batch") or a sample ("elem") */
    double switch_prob;  /* probability of CutMix when mixing: 1 cutmix, 0 mixup */
    double cutmix_alpha; /* Beta(alpha, alpha) of lam for CutMix, > 0 */
    double mixup_alpha;  /* the same for Mixup */
    int correct_lam;     /* CutMix lam from the clipped box's area */
    int elem;            /* 1: mode "elem", 0: mode "batch" */
} mix_config;

/* One draw: for the batch ("batch") or one sample ("elem"). */
typedef struct mix_params {
    int mix;                /* 0: left as it is */
    int cutmix;             /* 1: paste the box, 0: blend */
    double lam;             /* weight of the sample itself (after the CutMix correction) */
    int64_t yl, yh, xl, xh; /* CutMix box: rows [yl, yh), columns [xl, xh) */
} mix_params;

typedef struct mix {
    const rn_host *host;
    rn_ctx *ctx;
    mix_config cfg;
    /* scratch, grown to the largest batch seen (host->alloc, freed in destroy) */
    float *x0, *t0;         /* the original x (n*c*h*w) and soft rows (n*classes) */
    int64_t *perm;          /* n partners */
    rn_mix_sample *plan;    /* n per-sample parameters */
    size_t x0_cap, t0_cap, perm_cap; /* elements each holds (plan: perm_cap) */
} mix;

/* log of a Gamma(alpha, 1) draw from counters [block, block + 256) of key (Marsaglia-Tsang). */
static inline double mix_gamma_log(double alpha, uint64_t key, uint64_t block)
{
    double a = alpha < 1.0 ? alpha + 1.0 : alpha;
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d), lg = log(d);
    for (uint64_t k = 0; k < MIX_GAMMA_ATTEMPTS; k++) {
        uint64_t at = block + 1 + 3 * k;
        double r = sqrt(-2.0 * log(1.0 - rn_uniform(key, at)));
        double z = r * cos(2.0 * M_PI * rn_uniform(key, at + 1));
        double v = 1.0 + c * z;
        if (v <= 0.0) continue;
        v = v * v * v;
        if (log(rn_uniform(key, at + 2)) < 0.5 * z * z + d - d * v + d * log(v)) {
            lg = log(d * v);
            break;
        }
    }
    /* Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha); 1 - U is in (0, 1], so the log is finite */
    if (alpha < 1.0) lg += log(1.0 - rn_uniform(key, block)) / alpha;
    return lg;
}

/* lam ~ Beta(alpha, alpha) = G1 / (G1 + G2) = 1 / (1 + exp(log G2 - log G1)). */
static inline double mix_beta(double alpha, uint64_t key)
{
    double diff = mix_gamma_log(alpha, key, MIX_GAMMA2) - mix_gamma_log(alpha, key, MIX_GAMMA1);
    if (diff != diff) return 0.5; /* both logs infinite: only for alpha below ~1e-308 */
    return 1.0 / (1.0 + exp(diff));
}

/* perm = a uniformly random cyclic permutation of [0, n) (i -> perm[i] visits every sample once),
 * Sattolo's algorithm with counter = the position filled. */
static inline void mix_permutation(int64_t *perm, int64_t n, uint64_t key)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rn_rand(key, (uint64_t)i) % (uint64_t)i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static inline int64_t mix_clip(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The draw for `key` on H x W images (see the counters above). */
static inline void mix_draw(const mix_config *cfg, uint64_t key, int64_t H, int64_t W,
                            mix_params *p)
{
    memset(p, 0, sizeof *p);
    p->lam = 1.0;
    if (!(rn_uniform(key, 0) < cfg->prob)) return;
    p->mix = 1;
    p->cutmix = rn_uniform(key, 1) < cfg->switch_prob;
    p->lam = mix_beta(p->cutmix ? cfg->cutmix_alpha : cfg->mixup_alpha, key);
    if (!p->cutmix) return;
    double ratio = sqrt(1.0 - p->lam);
    int64_t cut_h = (int64_t)((double)H * ratio), cut_w = (int64_t)((double)W * ratio);
    int64_t cy = (int64_t)(rn_uniform(key, 2) * (double)H);
    int64_t cx = (int64_t)(rn_uniform(key, 3) * (double)W);
    p->yl = mix_clip(cy - cut_h / 2, 0, H);
    p->yh = mix_clip(cy + cut_h / 2, 0, H);
    p->xl = mix_clip(cx - cut_w / 2, 0, W);
    p->xh = mix_clip(cx + cut_w / 2, 0, W);
    if (cfg->correct_lam)
        p->lam = 1.0 - (double)((p->yh - p->yl) * (p->xh - p->xl)) / ((double)H * (double)W);
}

static inline int mix_create_with(const rn_host *host, rn_ctx *ctx, const mix_config *cfg,
                                  void **self)
{
    mix *m = host->alloc(sizeof *m);
    if (!m) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    m->host = host;
    m->ctx = ctx;
    m->cfg = *cfg;
    *self = m;
    return RN_OK;
}

/* Frees the scratch buffers (not m itself). */
static inline void mix_destroy_scratch(mix *m)
{
    m->host->free(m->x0);
    m->host->free(m->t0);
    m->host->free(m->perm);
    m->host->free(m->plan);
}

static inline void mix_destroy(void *self)
{
    mix *m = self;
    if (!m) return;
    mix_destroy_scratch(m);
    m->host->free(m);
}

/* Grows the scratch to n samples of `sample` floats and K classes (+1: never 0 bytes); 0 or -1. */
static inline int mix_reserve(mix *m, int64_t n, int64_t sample, int64_t K)
{
    const rn_host *host = m->host;
    size_t nx = (size_t)(n * sample) + 1, nt = (size_t)(n * K) + 1, np = (size_t)n;
    if (nx > m->x0_cap) {
        host->free(m->x0);
        m->x0 = host->alloc(nx * sizeof *m->x0);
        m->x0_cap = m->x0 ? nx : 0;
    }
    if (nt > m->t0_cap) {
        host->free(m->t0);
        m->t0 = host->alloc(nt * sizeof *m->t0);
        m->t0_cap = m->t0 ? nt : 0;
    }
    if (np > m->perm_cap) {
        host->free(m->perm);
        host->free(m->plan);
        m->perm = host->alloc(np * sizeof *m->perm);
        m->plan = host->alloc(np * sizeof *m->plan);
        m->perm_cap = m->perm && m->plan ? np : 0;
    }
    return m->x0 && m->t0 && m->perm && m->plan ? 0 : -1;
}

/* dst = a * wa + b * wb over n floats (kernels/augment_elem.h's blend, the GPU's too). */
static inline void mix_blend(float *dst, const float *a, const float *b, int64_t n, float wa,
                             float wb)
{
    for (int64_t k = 0; k < n; k++) dst[k] = rn_mix_blend(a[k], b[k], wa, wb);
}

/* Sample i (c planes of H x W at x) takes rows [yl, yh), columns [xl, xh) of src. */
static inline void mix_paste(float *x, const float *src, int64_t c, int64_t H, int64_t W,
                             const rn_mix_sample *p)
{
    size_t row = (size_t)(p->xh - p->xl) * sizeof *x;
    if (row == 0) return;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t y = p->yl; y < p->yh; y++) {
            int64_t at = (ch * H + y) * W + p->xl;
            memcpy(x + at, src + at, row);
        }
}

/* The batch's per-sample parameters into m->plan (and the partners into m->perm): what the CPU
 * loop below and the GPU kernel (kernels/augment_kernels.cu) both apply. Returns 0 when nothing
 * mixes, 1 when plan holds n entries, or -1 when out of memory. The pixel and target scratch
 * (x0, t0) the CPU loop needs is grown only with `scratch`. */
static inline int mix_plan(mix *m, const rn_batch *b, int scratch)
{
    int64_t n = b->n, H = b->h, W = b->w;
    uint64_t base = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[0]);
    mix_params batch;
    if (!m->cfg.elem) {
        mix_draw(&m->cfg, rn_mix64(base ^ MIX_DRAW_STREAM), H, W, &batch);
        if (!batch.mix) return 0;
    }
    if (mix_reserve(m, n, scratch ? b->c * H * W : 0, scratch ? b->classes : 0)) return -1;
    mix_permutation(m->perm, n, rn_mix64(base ^ MIX_PERM_STREAM));
    for (int64_t i = 0; i < n; i++) {
        mix_params own;
        const mix_params *p = &batch;
        if (m->cfg.elem) {
            uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[i]);
            mix_draw(&m->cfg, rn_mix64(key ^ MIX_DRAW_STREAM), H, W, &own);
            p = &own;
        }
        rn_mix_sample *s = &m->plan[i];
        s->partner = (int32_t)m->perm[i];
        s->mode = !p->mix || m->perm[i] == i ? RN_MIX_KEEP
                                             : p->cutmix ? RN_MIX_PASTE : RN_MIX_BLEND;
        s->wa = (float)p->lam;
        s->wb = (float)(1.0 - p->lam);
        s->yl = (int32_t)p->yl, s->yh = (int32_t)p->yh;
        s->xl = (int32_t)p->xl, s->xh = (int32_t)p->xh;
    }
    return 1;
}

static inline int mix_apply(void *self, rn_batch *b)
{
    mix *m = self;
    const rn_host *host = m->host;
    if (!b->soft_targets) {
        host->set_error(m->ctx, "needs soft targets (batch->soft_targets is NULL: the host must "
                        "supply them to a plugin flagged RN_AUGMENT_SOFT_TARGETS)");
        return RN_ERR_CONFIG;
    }
    if (b->n <= 0) return RN_OK;
    int rc = mix_plan(m, b, 1);
    if (rc < 0) {
        host->set_error(m->ctx, "out of memory for a batch of %lld", (long long)b->n);
        return RN_ERR_NOMEM;
    }
    if (rc == 0) return RN_OK;
    int64_t n = b->n, H = b->h, W = b->w, sample = b->c * H * W, K = b->classes;
    memcpy(m->x0, b->x, (size_t)(n * sample) * sizeof *m->x0);
    memcpy(m->t0, b->soft_targets, (size_t)(n * K) * sizeof *m->t0);
    for (int64_t i = 0; i < n; i++) {
        const rn_mix_sample *p = &m->plan[i];
        int64_t j = p->partner;
        if (p->mode == RN_MIX_KEEP) continue;
        if (p->mode == RN_MIX_PASTE)
            mix_paste(b->x + i * sample, m->x0 + j * sample, b->c, H, W, p);
        else
            mix_blend(b->x + i * sample, m->x0 + i * sample, m->x0 + j * sample, sample, p->wa,
                      p->wb);
        mix_blend(b->soft_targets + i * K, m->t0 + i * K, m->t0 + j * K, K, p->wa, p->wb);
    }
    return RN_OK;
}

/* The batch's device plan (plugin ABI 1.2): mix_plan's parameters, or nothing (kind NONE) when
 * the batch does not mix. */
static inline int mix_device_plan(void *self, const rn_batch *b, rn_augment_op *op)
{
    mix *m = self;
    op->kind = RN_AUGMENT_OP_NONE;
    if (b->n <= 0) return RN_OK;
    int rc = mix_plan(m, b, 0);
    if (rc < 0) {
        m->host->set_error(m->ctx, "out of memory for a batch of %lld", (long long)b->n);
        return RN_ERR_NOMEM;
    }
    if (rc == 0) return RN_OK; /* the batch is not mixed: nothing for the device to do */
    op->kind = RN_AUGMENT_OP_MIX;
    memcpy(op->mix, m->plan, (size_t)b->n * sizeof *op->mix);
    return RN_OK;
}

/* The plugin ID (a string literal) with SETTINGS (an array) and CREATE (which fills a mix_config
 * and calls mix_create_with). */
#define RN_MIX_PLUGIN(ID, SUMMARY, SETTINGS, CREATE)                                             \
    static int mix_apply_hook(void *self, rn_batch *b) { return mix_apply(self, b); }           \
    static const rn_augment_api mix_api = {.struct_size = sizeof(rn_augment_api),              \
                                           .apply = mix_apply_hook,                             \
                                           .flags = RN_AUGMENT_SOFT_TARGETS,                    \
                                           .device_plan = mix_device_plan};                     \
    static const rn_plugin mix_plugin = {                                                       \
        .struct_size = sizeof(rn_plugin), .kind = RN_KIND_AUGMENT, .id = ID,                    \
        .version = "1.0.0", .summary = SUMMARY, .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,      \
        .settings = SETTINGS, .n_settings = sizeof SETTINGS / sizeof *SETTINGS,                 \
        .create = CREATE, .destroy = mix_destroy, .api = &mix_api};                             \
    static const rn_plugin *const mix_plugins[] = {&mix_plugin};                                \
    static const rn_library mix_library = {                                                     \
        .struct_size = sizeof(rn_library), .abi_major = RN_ABI_MAJOR,                           \
        .abi_minor = RN_ABI_MINOR, .build_signature = RN_BUILD_SIGNATURE_CPU,                   \
        .plugins = mix_plugins, .n_plugins = 1};                                                \
    RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)                            \
    {                                                                                           \
        return host->abi_major == RN_ABI_MAJOR ? &mix_library : NULL;                           \
    }

/* Settings every mixing plugin has. */
#define MIX_SETTING_PROB                                                                        \
    {"prob", RN_SETTING_NUMBER, 1.0, NULL, 0, 1, NULL,                                          \
     "probability of mixing a batch (mode batch) or a sample (mode elem)", 0}
#define MIX_SETTING_CORRECT_LAM                                                                 \
    {"correct_lam", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,                                       \
     "CutMix lam = 1 - area of the box clipped to the image / image area (timm correct_lam)", 0}
#define MIX_SETTING_MODE                                                                        \
    {"mode", RN_SETTING_STRING, 0, "batch", 1, 0, "batch|elem",                                 \
     "batch: one lam and box per batch; elem: per sample (timm's modes)", 0}
#define MIX_SETTING_ALPHA(NAME, DOC)                                                            \
    {NAME, RN_SETTING_NUMBER, 1.0, NULL, 0, INFINITY, NULL, DOC,                                \
     RN_SETTING_MIN_EXCLUSIVE | RN_SETTING_MAX_EXCLUSIVE}

#endif
