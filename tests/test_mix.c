/* cutmix, mixup and cutmix_or_mixup plugins (mix_common.h) against a direct reference: the test
 * recomputes each batch's permutation, coin, switch, lam and box from the same rn_uniform draws
 * (the Beta sampler and the permutation are the header's; timm's rand_bbox, cutmix_bbox_and_lam,
 * the Mixup blend and mixup_target are transcribed here) and compares x and soft_targets exactly
 * (tolerance 0: the blend is the same float expression), for batch sizes 1, 7 and 16 of 3x12x10
 * images, modes batch and elem, correct_lam on and off (off keeps the Beta lam, the box is the
 * same); labels are untouched and soft rows sum to 1 within 1e-6. The GPU kernel's way (each
 * pixel alone through kernels/augment_elem.h from mix_plan's per-sample parameters) gives the
 * same batches, bit for bit.
 * Statistics, all deterministic (fixed keys): over N = 20000 draws of Beta(a, a) for a = 0.2, 0.5,
 * 1, 2 the mean is 0.5 within 5 sd of the mean (sd^2 = 1/(4(2a+1)) / N) and the variance is
 * 1/(4(2a+1)) within 5 sd of the sample variance (sd^2 = var^2 (2 - 6/(2a+3)) / N, from the
 * excess kurtosis -6/(2a+3) of Beta(a, a)); the Kolmogorov-Smirnov distance to the closed-form
 * CDF (a = 1: x, a = 0.5: (2/pi) asin(sqrt(x))) is below 1.95/sqrt(N) (the 0.1% critical value).
 * Over 4000 batches: the apply rate at prob = 0.3 is 0.3 within 5 binomial sd; cutmix_or_mixup
 * with switch_prob = 0.25 picks CutMix (told from Mixup by whether pixels are blends) at 0.25
 * within 5 sd; the mean corrected CutMix lam read from the targets equals the mean of the
 * transcribed formula over the same draws exactly, and the mean Beta lam is 0.5 within 5 sd.
 * The pairing is a single cycle (no self-pairs), uniform over partners.
 * prob = 0 leaves x and targets bit-identical; in mode elem a sample's lam depends only on
 * (seed, epoch, sample id), not on its batch; the same input gives the same output; bad settings
 * (alpha 0, -1 or inf; prob 1.5, -0.1; switch_prob 2; mode "pair") are refused with their
 * key path; a batch without soft targets is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"
#include "../plugins/augment/mix_common.h"

enum { C = 3, H = 12, W = 10, S = C * H * W, K = 10, MAXN = 16 };

typedef struct ref_cfg {
    const char *id;
    double prob, switch_prob, cutmix_alpha, mixup_alpha;
    int correct_lam, elem;
} ref_cfg;

/* ---- the reference: timm/data/mixup.py transcribed, fed the documented draws ---- */

static int clip(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* timm rand_bbox; np.random.randint(0, img_h) is floor(u * img_h) with u at counters 2 and 3. */
static void rand_bbox(int img_h, int img_w, double lam, uint64_t key, int box[4])
{
    double ratio = sqrt(1 - lam);
    int cut_h = (int)(img_h * ratio), cut_w = (int)(img_w * ratio);
    int cy = (int)(rn_uniform(key, 2) * img_h), cx = (int)(rn_uniform(key, 3) * img_w);
    box[0] = clip(cy - cut_h / 2, 0, img_h); /* yl */
    box[1] = clip(cy + cut_h / 2, 0, img_h); /* yh */
    box[2] = clip(cx - cut_w / 2, 0, img_w); /* xl */
    box[3] = clip(cx + cut_w / 2, 0, img_w); /* xh */
}

/* timm cutmix_bbox_and_lam (without ratio_minmax). */
static double cutmix_bbox_and_lam(int img_h, int img_w, double lam, int correct_lam, uint64_t key,
                                  int box[4])
{
    rand_bbox(img_h, img_w, lam, key, box);
    if (correct_lam) {
        int bbox_area = (box[1] - box[0]) * (box[3] - box[2]);
        lam = 1. - bbox_area / (double)(img_h * img_w);
    }
    return lam;
}

/* timm _params_per_batch / _params_per_elem for one key: lam (1 when not mixing). */
static double params(const ref_cfg *c, uint64_t key, int *use_cutmix)
{
    *use_cutmix = 0;
    if (!(rn_uniform(key, 0) < c->prob)) return 1.;
    *use_cutmix = rn_uniform(key, 1) < c->switch_prob;
    return mix_beta(*use_cutmix ? c->cutmix_alpha : c->mixup_alpha, key);
}

static uint64_t draw_key(uint64_t seed, int64_t epoch, int64_t id)
{
    return rn_mix64(rn_key3(seed, (uint64_t)epoch, (uint64_t)id) ^ MIX_DRAW_STREAM);
}

typedef struct ref_counts { int cutmix, mixup, kept, self; } ref_counts;

/* The reference over x (n*S) and t (n*K); lam_out[i] = the sample's lam (1 when unmixed). */
static void ref_apply(const ref_cfg *c, float *x, float *t, int n, const int64_t *ids,
                      int64_t epoch, uint64_t seed, double *lam_out, ref_counts *cnt)
{
    float xo[MAXN * S], to[MAXN * K];
    memcpy(xo, x, (size_t)n * S * sizeof *x);
    memcpy(to, t, (size_t)n * K * sizeof *t);
    int64_t perm[MAXN];
    mix_permutation(perm, n, rn_mix64(rn_key3(seed, (uint64_t)epoch, (uint64_t)ids[0]) ^
                                      MIX_PERM_STREAM));
    for (int i = 0; i < n; i++) {
        uint64_t key = draw_key(seed, epoch, c->elem ? ids[i] : ids[0]);
        int use_cutmix, j = (int)perm[i];
        double lam = params(c, key, &use_cutmix);
        if (lam_out) lam_out[i] = 1.0;
        if (!(rn_uniform(key, 0) < c->prob)) {
            if (cnt) cnt->kept++;
            continue;
        }
        if (j == i) {
            if (cnt) cnt->self++;
            continue;
        }
        if (use_cutmix) {
            int box[4];
            lam = cutmix_bbox_and_lam(H, W, lam, c->correct_lam, key, box);
            for (int ch = 0; ch < C; ch++)
                for (int y = box[0]; y < box[1]; y++)
                    for (int xx = box[2]; xx < box[3]; xx++)
                        x[i * S + (ch * H + y) * W + xx] = xo[j * S + (ch * H + y) * W + xx];
        } else {
            for (int k = 0; k < S; k++)
                x[i * S + k] = xo[i * S + k] * (float)lam + xo[j * S + k] * (float)(1 - lam);
        }
        for (int k = 0; k < K; k++)
            t[i * K + k] = to[i * K + k] * (float)lam + to[j * K + k] * (float)(1 - lam);
        if (lam_out) lam_out[i] = lam;
        if (cnt) use_cutmix ? cnt->cutmix++ : cnt->mixup++;
    }
}

/* ---- batches and instances ---- */

static void fill(float *x, float *t, int32_t *labels, const int64_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < S; k++) x[i * S + k] = (float)(ids[i] % 50) + 0.001f * (float)k;
        labels[i] = (int32_t)(ids[i] % K);
        for (int k = 0; k < K; k++) t[i * K + k] = k == labels[i] ? 1.0f : 0.0f;
    }
}

static rn_value *spec_of(const ref_cfg *c)
{
    rn_value *s = pt_num(pt_spec("data.augment[1]", c->id), "prob", c->prob);
    if (strcmp(c->id, "cutmix_or_mixup") == 0) {
        pt_num(s, "cutmix_alpha", c->cutmix_alpha);
        pt_num(s, "mixup_alpha", c->mixup_alpha);
        pt_num(s, "switch_prob", c->switch_prob);
    } else {
        pt_num(s, "alpha", strcmp(c->id, "cutmix") == 0 ? c->cutmix_alpha : c->mixup_alpha);
    }
    if (strcmp(c->id, "mixup") != 0) pt_bool(s, "correct_lam", c->correct_lam);
    return pt_str(s, "mode", c->elem ? "elem" : "batch");
}

static int run(const rn_instance *inst, float *x, float *t, const int32_t *labels,
               const int64_t *ids, int64_t n, int64_t c, int64_t h, int64_t w, int64_t classes,
               int64_t epoch, uint64_t seed)
{
    rn_batch b = {.struct_size = sizeof b, .x = x, .n = n, .c = c, .h = h, .w = w,
                  .labels = labels, .soft_targets = t, .classes = classes, .sample_ids = ids,
                  .epoch = epoch, .seed = seed, .normalized = 1};
    const rn_augment_api *api = inst->plugin->api;
    return api->apply(inst->self, &b);
}

/* 1. Plugin against the reference on batches of 1, 7 and 16; returns the largest row-sum error. */
/* What the GPU kernel (kernels/augment_kernels.cu) computes from the same batch: the plan of
 * mix_plan, then every pixel and target entry on its own through rn_mix_pixel / rn_mix_target,
 * reading the original batch. */
static void emulate_kernel(const ref_cfg *c, const float *x0, const float *t0, int n,
                           const int64_t *ids, int64_t epoch, uint64_t seed, float *kx, float *kt)
{
    mix m = {.host = rn_host_table()};
    m.cfg = (mix_config){c->prob, c->switch_prob, c->cutmix_alpha, c->mixup_alpha,
                         c->correct_lam, c->elem};
    int32_t labels[MAXN] = {0};
    rn_batch b = {.struct_size = sizeof b, .x = (float *)x0, .n = n, .c = C, .h = H, .w = W,
                  .labels = labels, .soft_targets = (float *)t0, .classes = K,
                  .sample_ids = ids, .epoch = epoch, .seed = seed};
    int rc = mix_plan(&m, &b, 0);
    CHECK(rc >= 0);
    for (int i = 0; i < n; i++) {
        rn_mix_sample keep = {RN_MIX_KEEP, i, 1.0f, 0.0f, 0, 0, 0, 0};
        const rn_mix_sample *p = rc == 1 ? &m.plan[i] : &keep;
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int at = (ch * H + y) * W + xx;
                    kx[i * S + at] = rn_mix_pixel(p, x0[i * S + at], x0[p->partner * S + at], y,
                                                  xx);
                }
        for (int k = 0; k < K; k++)
            kt[i * K + k] = rn_mix_target(p, t0[i * K + k], t0[p->partner * K + k]);
    }
    mix_destroy_scratch(&m);
}

static double check_reference(const rn_registry *reg, const ref_cfg *c, ref_counts *cnt)
{
    static const int sizes[3] = {1, 7, 16};
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(c), NULL);
    CHECK(((const rn_augment_api *)inst.plugin->api)->flags == RN_AUGMENT_SOFT_TARGETS);
    double worst = 0.0;
    int equal = 0, batches = 0;
    for (int si = 0; si < 3; si++)
        for (int rep = 0; rep < 12; rep++) {
            int n = sizes[si];
            int64_t ids[MAXN], epoch = rep % 4;
            uint64_t seed = 1000 + 7 * (uint64_t)rep;
            for (int i = 0; i < n; i++) ids[i] = 37 * rep + 5 * i + si;
            float x[MAXN * S], t[MAXN * K], rx[MAXN * S], rt[MAXN * K];
            int32_t labels[MAXN], labels0[MAXN];
            fill(x, t, labels, ids, n);
            memcpy(labels0, labels, sizeof labels);
            memcpy(rx, x, sizeof rx);
            memcpy(rt, t, sizeof rt);
            CHECK(run(&inst, x, t, labels, ids, n, C, H, W, K, epoch, seed) == RN_OK);
            float kx[MAXN * S], kt[MAXN * K];
            emulate_kernel(c, rx, rt, n, ids, epoch, seed, kx, kt);
            ref_apply(c, rx, rt, n, ids, epoch, seed, NULL, cnt);
            int same = memcmp(x, rx, (size_t)n * S * sizeof *x) == 0 &&
                       memcmp(t, rt, (size_t)n * K * sizeof *t) == 0;
            CHECK(same);
            CHECK(memcmp(x, kx, (size_t)n * S * sizeof *x) == 0 &&
                  memcmp(t, kt, (size_t)n * K * sizeof *t) == 0);
            equal += same;
            batches++;
            CHECK(memcmp(labels, labels0, (size_t)n * sizeof *labels) == 0);
            for (int i = 0; i < n; i++) {
                double sum = 0.0;
                for (int k = 0; k < K; k++) sum += t[i * K + k];
                if (fabs(sum - 1.0) > worst) worst = fabs(sum - 1.0);
            }
        }
    printf("  %-16s %-5s prob %.1f correct_lam %d: %d/%d batches bit-equal to the reference\n",
           c->id, c->elem ? "elem" : "batch", c->prob, c->correct_lam, equal, batches);
    rn_instance_destroy(&inst);
    return worst;
}

/* correct_lam = false: the same box as with true, the targets mixed by the Beta lam. */
static void check_uncorrected(const rn_registry *reg)
{
    ref_cfg on = {"cutmix", 1.0, 1.0, 1.0, 1.0, 1, 0}, off = on;
    off.correct_lam = 0;
    rn_instance a, b;
    pt_create(&a, reg, RN_KIND_AUGMENT, spec_of(&on), NULL);
    pt_create(&b, reg, RN_KIND_AUGMENT, spec_of(&off), NULL);
    int differ = 0, beta_ok = 0, mixed = 0;
    for (int rep = 0; rep < 40; rep++) {
        enum { N = 7 };
        int64_t ids[N];
        for (int i = 0; i < N; i++) ids[i] = 100 * rep + i; /* labels i: all distinct */
        float xa[N * S], ta[N * K], xb[N * S], tb[N * K];
        int32_t labels[N];
        fill(xa, ta, labels, ids, N);
        fill(xb, tb, labels, ids, N);
        CHECK(run(&a, xa, ta, labels, ids, N, C, H, W, K, 3, 77) == RN_OK);
        CHECK(run(&b, xb, tb, labels, ids, N, C, H, W, K, 3, 77) == RN_OK);
        CHECK(memcmp(xa, xb, sizeof xa) == 0);
        double beta = mix_beta(1.0, draw_key(77, 3, ids[0]));
        int64_t perm[N];
        mix_permutation(perm, N, rn_mix64(rn_key3(77, 3, (uint64_t)ids[0]) ^ MIX_PERM_STREAM));
        for (int i = 0; i < N; i++) {
            if (perm[i] == i) continue;
            mixed++;
            beta_ok += tb[i * K + labels[i]] == (float)beta;
            differ += ta[i * K + labels[i]] != tb[i * K + labels[i]];
        }
    }
    printf("  correct_lam off: x equal to correct_lam on in 40 batches; %d/%d mixed rows carry "
           "the Beta lam exactly; %d rows differ from the corrected lam\n", beta_ok, mixed,
           differ);
    CHECK(mixed > 0 && beta_ok == mixed);
    CHECK(differ > 0);
    rn_instance_destroy(&a);
    rn_instance_destroy(&b);
}

/* ---- 2. statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_beta(double a)
{
    enum { N = 20000 };
    static double v[N];
    double sum = 0.0, sum2 = 0.0;
    for (int k = 0; k < N; k++) {
        v[k] = mix_beta(a, rn_mix64(rn_key3(4321, (uint64_t)(a * 1000), (uint64_t)k)));
        sum += v[k];
    }
    double mean = sum / N;
    for (int k = 0; k < N; k++) sum2 += (v[k] - mean) * (v[k] - mean);
    double var = sum2 / (N - 1), var0 = 1.0 / (4.0 * (2.0 * a + 1.0));
    double mean_bound = 5.0 * sqrt(var0 / N);
    double var_bound = 5.0 * var0 * sqrt((2.0 - 6.0 / (2.0 * a + 3.0)) / N);
    printf("  Beta(%.1f, %.1f) over %d keys: mean %.5f (0.5 +- %.5f), var %.5f (%.5f +- %.5f)",
           a, a, N, mean, mean_bound, var, var0, var_bound);
    CHECK_NEAR(mean, 0.5, mean_bound, 0);
    CHECK_NEAR(var, var0, var_bound, 0);
    int inside = 1;
    for (int k = 0; k < N; k++) inside &= v[k] >= 0.0 && v[k] <= 1.0;
    CHECK(inside);
    if (a != 1.0 && a != 0.5) {
        printf("\n");
        return;
    }
    qsort(v, N, sizeof *v, cmp_double);
    double ks = 0.0;
    for (int k = 0; k < N; k++) {
        double cdf = a == 1.0 ? v[k] : 2.0 / M_PI * asin(sqrt(v[k]));
        double d = fmax((k + 1.0) / N - cdf, cdf - (double)k / N);
        if (d > ks) ks = d;
    }
    printf(", KS %.5f (< %.5f)\n", ks, 1.95 / sqrt(N));
    CHECK(ks < 1.95 / sqrt(N));
}

enum { BATCHES = 4000, SN = 16, SH = 4, SW = 4 };

/* Sample i of SN is the constant i + 1 (1x4x4) with label i of SN classes. */
static void fill_small(float *x, float *t, int32_t *labels, int64_t *ids, int rep)
{
    for (int i = 0; i < SN; i++) {
        for (int k = 0; k < SH * SW; k++) x[i * SH * SW + k] = (float)(i + 1);
        labels[i] = i;
        ids[i] = (int64_t)rep * SN + i;
        for (int k = 0; k < SN; k++) t[i * SN + k] = k == i ? 1.0f : 0.0f;
    }
}

/* Mixing rate at prob 0.3 (mixup, mode batch): a batch is mixed when some target row moved. */
static void check_apply_rate(const rn_registry *reg)
{
    ref_cfg c = {"mixup", 0.3, 0.0, 1.0, 1.0, 0, 0};
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
    int mixed = 0;
    for (int rep = 0; rep < BATCHES; rep++) {
        float x[SN * SH * SW], t[SN * SN];
        int32_t labels[SN];
        int64_t ids[SN];
        fill_small(x, t, labels, ids, rep);
        CHECK(run(&inst, x, t, labels, ids, SN, 1, SH, SW, SN, 1, 555) == RN_OK);
        int moved = 0;
        for (int i = 0; i < SN; i++) moved |= t[i * SN + i] != 1.0f;
        mixed += moved;
    }
    double rate = (double)mixed / BATCHES, bound = 5.0 * sqrt(0.3 * 0.7 / BATCHES);
    printf("  apply rate at prob 0.3 over %d batches: %.4f (0.3 +- %.4f)\n", BATCHES, rate, bound);
    CHECK_NEAR(rate, 0.3, bound, 0);
    rn_instance_destroy(&inst);
}

/* CutMix share of cutmix_or_mixup at switch_prob 0.25: Mixup leaves blends (non-integers). */
static void check_switch_rate(const rn_registry *reg)
{
    ref_cfg c = {"cutmix_or_mixup", 1.0, 0.25, 1.0, 1.0, 1, 0};
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
    int cut = 0, cut_ref = 0;
    for (int rep = 0; rep < BATCHES; rep++) {
        float x[SN * SH * SW], t[SN * SN];
        int32_t labels[SN];
        int64_t ids[SN];
        fill_small(x, t, labels, ids, rep);
        CHECK(run(&inst, x, t, labels, ids, SN, 1, SH, SW, SN, 0, 909) == RN_OK);
        int blend = 0;
        for (int k = 0; k < SN * SH * SW; k++) blend |= x[k] != floorf(x[k]);
        cut += !blend;
        cut_ref += rn_uniform(draw_key(909, 0, ids[0]), 1) < 0.25;
    }
    double rate = (double)cut / BATCHES, bound = 5.0 * sqrt(0.25 * 0.75 / BATCHES);
    printf("  CutMix share at switch_prob 0.25 over %d batches: %.4f (0.25 +- %.4f; the switch "
           "coins alone give %.4f)\n", BATCHES, rate, bound, (double)cut_ref / BATCHES);
    CHECK_NEAR(rate, 0.25, bound, 0);
    CHECK(cut == cut_ref);
    rn_instance_destroy(&inst);
}

/* Mean corrected CutMix lam (read from the targets) against the transcribed formula. */
static void check_cutmix_lam(const rn_registry *reg)
{
    ref_cfg c = {"cutmix", 1.0, 1.0, 1.0, 1.0, 1, 0};
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
    double got = 0.0, want = 0.0, beta = 0.0;
    int counted = 0;
    for (int rep = 0; rep < BATCHES; rep++) {
        enum { N = 8 };
        int64_t ids[N], perm[N];
        float x[N * S], t[N * K];
        int32_t labels[N];
        for (int i = 0; i < N; i++) ids[i] = (int64_t)rep * 10 + i; /* labels i: distinct */
        fill(x, t, labels, ids, N);
        CHECK(run(&inst, x, t, labels, ids, N, C, H, W, K, 2, 31) == RN_OK);
        uint64_t key = draw_key(31, 2, ids[0]);
        double lam = mix_beta(1.0, key);
        beta += lam;
        int box[4];
        double corrected = cutmix_bbox_and_lam(H, W, lam, 1, key, box);
        mix_permutation(perm, N, rn_mix64(rn_key3(31, 2, (uint64_t)ids[0]) ^ MIX_PERM_STREAM));
        int i = 0;
        while (i < N && perm[i] == i) i++;
        if (i == N) continue;
        got += t[i * K + labels[i]];
        want += (float)corrected;
        counted++;
    }
    double bound = 5.0 * sqrt(1.0 / 12.0 / BATCHES);
    printf("  CutMix over %d batches: mean corrected lam %.6f, formula on the same draws %.6f; "
           "mean Beta lam %.5f (0.5 +- %.5f)\n", counted, got / counted, want / counted,
           beta / BATCHES, bound);
    CHECK(counted > BATCHES - 10);
    CHECK(got == want);
    CHECK_NEAR(beta / BATCHES, 0.5, bound, 0);
    rn_instance_destroy(&inst);
}

/* ---- 3. prob 0, elem independence, determinism ---- */

static void check_prob0(const rn_registry *reg)
{
    static const char *ids_of[3] = {"cutmix", "mixup", "cutmix_or_mixup"};
    int identical = 0;
    for (int p = 0; p < 3; p++)
        for (int elem = 0; elem < 2; elem++) {
            ref_cfg c = {ids_of[p], 0.0, 0.5, 1.0, 1.0, 1, elem};
            rn_instance inst;
            pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
            int64_t ids[MAXN];
            for (int i = 0; i < MAXN; i++) ids[i] = 3 * i;
            float x[MAXN * S], t[MAXN * K], x0[MAXN * S], t0[MAXN * K];
            int32_t labels[MAXN];
            fill(x, t, labels, ids, MAXN);
            memcpy(x0, x, sizeof x);
            memcpy(t0, t, sizeof t);
            CHECK(run(&inst, x, t, labels, ids, MAXN, C, H, W, K, 0, 12) == RN_OK);
            int same = memcmp(x, x0, sizeof x) == 0 && memcmp(t, t0, sizeof t) == 0;
            CHECK(same);
            identical += same;
            rn_instance_destroy(&inst);
        }
    printf("  prob 0: %d/6 (plugin, mode) pairs leave x and targets bit-identical\n", identical);
}

/* lam of each sample of a batch (from its target row; labels distinct), -1 when paired with
 * itself or unmixed (row still one-hot). */
static void lams_of(const rn_instance *inst, const int64_t *ids, int n, int64_t epoch,
                    double *lam)
{
    enum { KK = 64 };
    float x[MAXN * S], t[MAXN * KK];
    int32_t labels[MAXN];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < S; k++) x[i * S + k] = (float)(ids[i] % 50) + 0.001f * (float)k;
        labels[i] = (int32_t)(ids[i] % KK);
        for (int k = 0; k < KK; k++) t[i * KK + k] = k == labels[i] ? 1.0f : 0.0f;
    }
    CHECK(run(inst, x, t, labels, ids, n, C, H, W, KK, epoch, 4040) == RN_OK);
    for (int i = 0; i < n; i++) {
        float v = t[i * KK + labels[i]];
        lam[i] = v == 1.0f ? -1.0 : v;
    }
}

static void check_elem(const rn_registry *reg)
{
    ref_cfg c = {"cutmix_or_mixup", 1.0, 0.5, 1.0, 1.0, 1, 1};
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
    /* batch A: ids 0..15; batch B: ids 15..0 interleaved with others, then the same epoch */
    int64_t a[MAXN], b[MAXN];
    for (int i = 0; i < MAXN; i++) a[i] = i;
    for (int i = 0; i < MAXN; i++) b[i] = i % 2 ? 40 + i : MAXN - 1 - i;
    double la[MAXN], lb[MAXN];
    lams_of(&inst, a, MAXN, 5, la);
    lams_of(&inst, b, MAXN, 5, lb);
    int compared = 0, equal = 0, distinct = 0;
    for (int i = 0; i < MAXN; i++) {
        if (la[i] >= 0 && la[i] != la[0]) distinct++;
        for (int k = 0; k < MAXN; k++) {
            if (b[k] != a[i] || la[i] < 0 || lb[k] < 0) continue;
            compared++;
            equal += la[i] == lb[k];
        }
    }
    printf("  elem: %d samples in two different batches, %d with the same lam; %d samples of "
           "batch A have a lam other than sample 0's\n", compared, equal, distinct);
    CHECK(compared >= 4 && equal == compared);
    CHECK(distinct > 0);
    /* the same lam comes from the sample's own key: the reference's per-sample lam */
    double lam_ref[MAXN];
    float x[MAXN * S], t[MAXN * K];
    int32_t labels[MAXN];
    fill(x, t, labels, a, MAXN);
    ref_apply(&c, x, t, MAXN, a, 5, 4040, lam_ref, NULL);
    int match = 0, known = 0;
    for (int i = 0; i < MAXN; i++)
        if (la[i] >= 0) known++, match += la[i] == (float)lam_ref[i];
    CHECK(known > 0 && match == known);
    rn_instance_destroy(&inst);

    /* mode batch: every mixed sample of the batch shares one lam */
    ref_cfg cb = c;
    cb.elem = 0;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec_of(&cb), NULL);
    lams_of(&inst, a, MAXN, 5, la);
    int shared = 1, mixed = 0;
    double first = -1.0;
    for (int i = 0; i < MAXN; i++) {
        if (la[i] < 0) continue;
        if (mixed++ == 0) first = la[i];
        shared &= la[i] == first;
    }
    printf("  batch: %d mixed samples share one lam: %s\n", mixed, shared ? "yes" : "no");
    CHECK(mixed > 0 && shared);
    rn_instance_destroy(&inst);
}

static void check_determinism(const rn_registry *reg)
{
    static const char *ids_of[3] = {"cutmix", "mixup", "cutmix_or_mixup"};
    int same_all = 1;
    for (int p = 0; p < 3; p++)
        for (int elem = 0; elem < 2; elem++) {
            ref_cfg c = {ids_of[p], 1.0, 0.5, 0.7, 1.3, 1, elem};
            rn_instance one, two;
            pt_create(&one, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
            pt_create(&two, reg, RN_KIND_AUGMENT, spec_of(&c), NULL);
            int64_t ids[MAXN];
            for (int i = 0; i < MAXN; i++) ids[i] = 90 + 7 * i;
            float x1[MAXN * S], t1[MAXN * K], x2[MAXN * S], t2[MAXN * K], x3[MAXN * S],
                t3[MAXN * K];
            int32_t labels[MAXN];
            fill(x1, t1, labels, ids, MAXN);
            memcpy(x2, x1, sizeof x1), memcpy(t2, t1, sizeof t1);
            memcpy(x3, x1, sizeof x1), memcpy(t3, t1, sizeof t1);
            CHECK(run(&one, x1, t1, labels, ids, MAXN, C, H, W, K, 9, 8) == RN_OK);
            CHECK(run(&one, x2, t2, labels, ids, MAXN, C, H, W, K, 9, 8) == RN_OK);
            CHECK(run(&two, x3, t3, labels, ids, MAXN, C, H, W, K, 9, 8) == RN_OK);
            int same = !memcmp(x1, x2, sizeof x1) && !memcmp(t1, t2, sizeof t1) &&
                       !memcmp(x1, x3, sizeof x1) && !memcmp(t1, t3, sizeof t1);
            CHECK(same);
            same_all &= same;
            rn_instance_destroy(&one);
            rn_instance_destroy(&two);
        }
    printf("  determinism: same (seed, epoch, ids) give the same output twice and across "
           "instances: %s\n", same_all ? "yes" : "no");
}

/* ---- 4. refusals ---- */

static void refused(const rn_registry *reg, rn_value *spec, const char *key)
{
    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec, err, sizeof err));
    printf("  %s: %s\n", key, err);
    CHECK(strstr(err, key) != NULL);
}

static void check_refusals(const rn_registry *reg)
{
    refused(reg, pt_num(pt_spec("data.augment[2]", "cutmix"), "alpha", 0),
            "data.augment[2].alpha");
    refused(reg, pt_num(pt_spec("data.augment[2]", "mixup"), "alpha", -1),
            "data.augment[2].alpha");
    refused(reg, pt_num(pt_spec("data.augment[2]", "cutmix"), "prob", 1.5),
            "data.augment[2].prob");
    refused(reg, pt_num(pt_spec("data.augment[2]", "cutmix"), "alpha", INFINITY),
            "data.augment[2].alpha");
    refused(reg, pt_num(pt_spec("data.augment[2]", "mixup"), "prob", -0.1),
            "data.augment[2].prob");
    refused(reg, pt_num(pt_spec("data.augment[2]", "cutmix_or_mixup"), "switch_prob", 2),
            "data.augment[2].switch_prob");
    refused(reg, pt_num(pt_spec("data.augment[2]", "cutmix_or_mixup"), "mixup_alpha", 0),
            "data.augment[2].mixup_alpha");
    refused(reg, pt_str(pt_spec("data.augment[2]", "cutmix"), "mode", "pair"),
            "data.augment[2].mode");

    static const char *ids_of[3] = {"cutmix", "mixup", "cutmix_or_mixup"};
    for (int p = 0; p < 3; p++) {
        rn_instance inst;
        pt_create(&inst, reg, RN_KIND_AUGMENT, pt_spec("data.augment[1]", ids_of[p]), NULL);
        int64_t ids[1] = {0};
        float x[S] = {0};
        int32_t labels[1] = {0};
        int rc = run(&inst, x, NULL, labels, ids, 1, C, H, W, K, 0, 1);
        const char *err = rn_instance_error(&inst);
        if (p == 0) printf("  no soft targets: %s\n", err);
        CHECK(rc == RN_ERR_CONFIG);
        CHECK(strstr(err, "needs soft targets") != NULL);
        rn_instance_destroy(&inst);
    }
}

/* The pairing is one cycle through the batch: no sample is its own partner (n > 1), and
 * following partners from 0 visits all n samples; over 2000 batches of 7 each sample's partner is
 * each of the other 6 at rate 1/6 within 5 sd. */
static void check_pairing(void)
{
    enum { N7 = 7, T = 2000 };
    int64_t perm[N7];
    int count[N7][N7] = {{0}};
    int bad = 0;
    for (uint64_t t = 0; t < T; t++) {
        mix_permutation(perm, N7, rn_mix64(t ^ MIX_PERM_STREAM));
        int64_t at = 0, steps = 0;
        do {
            at = perm[at];
            steps++;
        } while (at != 0 && steps <= N7);
        bad += steps != N7;
        for (int i = 0; i < N7; i++) count[i][perm[i]]++;
    }
    CHECK(bad == 0);
    double sd = sqrt((1.0 / 6) * (5.0 / 6) / T);
    for (int i = 0; i < N7; i++)
        for (int j = 0; j < N7; j++)
            if (i == j)
                CHECK(count[i][j] == 0);
            else
                CHECK_NEAR((double)count[i][j] / T, 1.0 / 6, 5 * sd, 0.0);
    int64_t one = -1;
    mix_permutation(&one, 1, 5);
    CHECK(one == 0);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    check_pairing();

    static const ref_cfg cfgs[] = {
        {"cutmix", 0.8, 1.0, 1.0, 1.0, 1, 0},
        {"cutmix", 0.8, 1.0, 0.5, 1.0, 1, 1},
        {"cutmix", 0.8, 1.0, 1.0, 1.0, 0, 0},
        {"cutmix", 1.0, 1.0, 2.0, 1.0, 0, 1},
        {"mixup", 0.8, 0.0, 1.0, 1.0, 0, 0},
        {"mixup", 0.8, 0.0, 1.0, 0.2, 0, 1},
        {"cutmix_or_mixup", 0.8, 0.5, 1.0, 0.4, 1, 0},
        {"cutmix_or_mixup", 0.9, 0.5, 0.3, 1.0, 1, 1},
        {"cutmix_or_mixup", 1.0, 0.5, 1.0, 1.0, 0, 1},
    };
    ref_counts cnt = {0, 0, 0, 0};
    double worst = 0.0;
    for (size_t k = 0; k < sizeof cfgs / sizeof *cfgs; k++)
        worst = fmax(worst, check_reference(reg, &cfgs[k], &cnt));
    printf("  reference paths: %d CutMix, %d Mixup, %d unmixed by the coin, %d paired with "
           "themselves; largest |row sum - 1| %.3g (bound 1e-6)\n", cnt.cutmix, cnt.mixup,
           cnt.kept, cnt.self, worst);
    CHECK(cnt.cutmix > 0 && cnt.mixup > 0 && cnt.kept > 0 && cnt.self > 0);
    CHECK(worst <= 1e-6);
    check_uncorrected(reg);

    check_beta(0.2);
    check_beta(0.5);
    check_beta(1.0);
    check_beta(2.0);
    check_apply_rate(reg);
    check_switch_rate(reg);
    check_cutmix_lam(reg);

    check_prob0(reg);
    check_elem(reg);
    check_determinism(reg);
    check_refusals(reg);
    rn_registry_free(reg);
    return rn_test_report("test_mix");
}
