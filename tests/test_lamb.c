/* lamb plugin vs timm's Lamb (timm/optim/lamb.py without grad-norm clipping, written out in float32
 * torch ops in scripts/fixtures/make_lion_lamb_fixture.py, since torch 1.13 has no LAMB): one
 * optimizer with three parameter groups of different settings, 30 steps with a changing lr and, in
 * group 1, a changing beta1 (tests/fixtures/lamb_steps.txt):
 *   group 0: weight_decay 0.01 -> trust ratio applied; its first tensor starts at 0 with a zero
 *            gradient on step 0 (both norms 0: ratio 1);
 *   group 1: weight_decay 0, always_adapt false -> no trust ratio (timm's rule);
 *   group 2: weight_decay 0, always_adapt true, bias_correction false; its second tensor has a
 *            zero gradient on step 0 (update norm 0: ratio 1).
 * One plugin instance per group, as the host makes them, fed the same gradients; parameters
 * compared after each step to 1e-6 relative (+1e-7 absolute for values near 0), and the worst
 * difference is reported. Also: settings validation with key paths, defaults, state_floats 2, a
 * scheduled beta1 of 1 refused at step time, and thread-count independence: a large tensor gives
 * the same bits as a serial reference of the documented fixed-chunk reduction, with the host's
 * team at 1, 2 and 3 threads, and (the plugin loaded directly with a stand-in parallel_for) when
 * the host splits the range into reversed ranges that are not multiples of the reduction chunk. */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "optim_fixture.h"
#include "plugin_test_util.h"
#include "rn_test.h"

/* From libgomp, which the host links; weak so the test still builds and runs without it. */
extern void omp_set_num_threads(int n) __attribute__((weak));
extern int omp_get_max_threads(void) __attribute__((weak));

#define MAX_GROUPS 4
#define STEPS 30
#define CHUNK 4096 /* lamb.c's LAMB_CHUNK: part of the documented summation order */

/* The settings of each fixture group beyond of_group's lr / momentum (beta1) / wd. */
typedef struct fx_settings {
    double beta2, eps;
    int bias_correction, always_adapt;
} fx_settings;

static void check_fixture(const rn_registry *reg)
{
    int n_groups;
    FILE *f = of_open("lamb_steps.txt", 1, 2, MAX_GROUPS, &n_groups);
    static of_group gs[MAX_GROUPS];
    static fx_settings cs[MAX_GROUPS];
    for (int k = 0; k < n_groups; k++) {
        of_group *x = &gs[k];
        fx_settings *c = &cs[k];
        of_scan_group(f, x, k,
                      "lr %lf beta1 %lf beta2 %lf eps %lf weight_decay %lf bias_correction %d "
                      "always_adapt %d",
                      &x->lr, &x->momentum, &c->beta2, &c->eps, &x->wd, &c->bias_correction,
                      &c->always_adapt);

        /* Each group is its own optimizer instance with its own settings. */
        rn_value *spec = pt_spec("optimizer", "lamb");
        pt_num(spec, "lr", x->lr);
        pt_num(spec, "beta1", x->momentum);
        pt_num(spec, "beta2", c->beta2);
        pt_num(spec, "eps", c->eps);
        pt_num(spec, "weight_decay", x->wd);
        pt_bool(spec, "bias_correction", c->bias_correction);
        pt_bool(spec, "always_adapt", c->always_adapt);
        of_create(x, reg, spec, 2);
    }
    /* The host fills lr / momentum (beta1 here) / weight_decay from the settings. */
    of_read_inits(f, gs, n_groups, "beta1");
    of_run_steps(f, gs, n_groups, STEPS, "beta1");
    for (int k = 0; k < n_groups; k++) {
        char what[96];
        snprintf(what, sizeof what, "weight_decay %g, always_adapt %d, bias_correction %d",
                 gs[k].wd, cs[k].always_adapt, cs[k].bias_correction);
        of_print_group(&gs[k], k, STEPS, what);
    }
}

/* The update as the plugin's header describes it, serially: norms summed over fixed chunks of
 * CHUNK elements in double, chunk sums added in order. */
static void reference_step(float *p, const float *gr, float *m, float *v, int64_t n, double lr,
                           double b1, double b2, double eps, double wd, int always_adapt,
                           int64_t step)
{
    double t = (double)(step + 1);
    float fb1 = (float)b1, k1 = (float)(1 - b1), fb2 = (float)b2, k2 = (float)(1 - b2);
    float bc1 = (float)(1 - pow(b1, t)), bc2 = (float)sqrt(1 - pow(b2, t));
    float feps = (float)eps, fwd = (float)wd, neg = (float)-lr;
    float *u = malloc((size_t)n * sizeof *u);
    double sp = 0, su = 0;
    for (int64_t lo = 0; lo < n; lo += CHUNK) {
        double a = 0, b = 0;
        for (int64_t i = lo; i < n && i < lo + CHUNK; i++) {
            float g = gr[i];
            m[i] = (float)((double)k1 * g + (double)(m[i] * fb1));
            v[i] = (float)((double)(k2 * g) * g + (double)(v[i] * fb2));
            u[i] = (m[i] / bc1) / (sqrtf(v[i]) / bc2 + feps);
            if (wd != 0) u[i] = (float)((double)fwd * p[i] + u[i]);
            a += (double)p[i] * p[i];
            b += (double)u[i] * u[i];
        }
        sp += a;
        su += b;
    }
    float ratio = 1.0f;
    if (wd != 0 || always_adapt) {
        float wn = (float)sqrt(sp), un = (float)sqrt(su);
        if (wn > 0 && un > 0) ratio = wn / un;
    }
    for (int64_t i = 0; i < n; i++) p[i] = (float)((double)neg * (u[i] * ratio) + p[i]);
    free(u);
}

/* The same bits from any thread count and from a serial reference. */
static void check_large(const rn_registry *reg, double wd, int always_adapt)
{
    enum { N = 200003 }; /* 49 chunks, the last one partial */
    rn_value *spec = pt_spec("optimizer", "lamb");
    pt_num(pt_num(spec, "lr", 1e-2), "weight_decay", wd);
    pt_bool(spec, "always_adapt", always_adapt);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    const rn_optimizer_api *api = inst.plugin->api;
    float *gr = malloc(N * sizeof *gr), *rp = malloc(N * sizeof *rp);
    float *rst = calloc(2 * N, sizeof *rst);
    float *p = malloc(N * sizeof *p), *st = malloc(2 * N * sizeof *st);
    int default_threads = omp_get_max_threads ? omp_get_max_threads() : 0;
    for (int i = 0; i < N; i++) rp[i] = (float)sin(i * 0.37);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < N; i++) gr[i] = (float)(cos(i * 0.11 + t) * (t == 2 ? 1e-4 : 1.0));
        reference_step(rp, gr, rst, rst + N, N, 1e-2, 0.9, 0.999, 1e-6, wd, always_adapt, t);
    }
    int thread_counts[] = {1, 2, 3};
    int runs = omp_set_num_threads ? 3 : 1;
    for (int r = 0; r < runs; r++) {
        if (omp_set_num_threads) omp_set_num_threads(thread_counts[r]);
        for (int i = 0; i < N; i++) p[i] = (float)sin(i * 0.37);
        memset(st, 0, 2 * N * sizeof *st);
        rn_param prm = {"big", p, gr, st, N};
        rn_group g = {sizeof g, "all", &prm, 1, 1e-2, 0.9, wd, 0};
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < N; i++)
                gr[i] = (float)(cos(i * 0.11 + t) * (t == 2 ? 1e-4 : 1.0));
            g.step = t;
            CHECK(api->step(inst.self, &g) == RN_OK);
        }
        int same = memcmp(p, rp, N * sizeof *p) == 0 && memcmp(st, rst, 2 * N * sizeof *st) == 0;
        CHECK(same);
        printf("  large tensor, weight_decay %g, always_adapt %d, %d thread(s): %s the serial "
               "reference\n", wd, always_adapt, omp_set_num_threads ? thread_counts[r] : -1,
               same ? "bit-equal to" : "DIFFERS from");
        if (r == runs - 1) {
            /* A schedule that drives beta1 out of [0, 1) is refused at step time. */
            g.momentum = 1.0;
            CHECK(api->step(inst.self, &g) == RN_ERR_CONFIG);
        }
    }
    if (omp_set_num_threads && default_threads > 0) omp_set_num_threads(default_threads);
    free(p), free(gr), free(st), free(rst), free(rp);
    rn_instance_destroy(&inst);
}

/* A host whose parallel_for splits [0, n) into odd-sized ranges (not multiples of the reduction
 * chunk) run in reverse order: the plugin, loaded directly, must still give the serial bits. */
static double odd_number(rn_ctx *ctx, const char *key)
{
    (void)ctx;
    return !strcmp(key, "beta2") ? 0.999 : !strcmp(key, "eps") ? 1e-6 : 0;
}
static int odd_bool(rn_ctx *ctx, const char *key)
{
    (void)ctx;
    return !strcmp(key, "bias_correction");
}
static void odd_set_error(rn_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
static void *odd_alloc(size_t bytes) { return calloc(1, bytes); }
static void odd_parallel_for(int64_t n, void (*fn)(void *, int64_t, int64_t), void *arg)
{
    const int64_t grain = 1000 + 7;
    for (int64_t begin = (n - 1) / grain * grain; begin >= 0; begin -= grain)
        fn(arg, begin, begin + grain < n ? begin + grain : n);
}

static void check_odd_split(void)
{
    enum { N = 200003 };
    char path[1024];
    snprintf(path, sizeof path, "%s/lamb.so", getenv("RN_PLUGIN_DIR"));
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(so != NULL);
    if (!so) return;
    rn_plugin_entry_fn entry = (rn_plugin_entry_fn)(uintptr_t)dlsym(so, "rn_plugin_entry");
    rn_host host = *rn_host_table();
    host.get_number = odd_number;
    host.get_bool = odd_bool;
    host.set_error = odd_set_error;
    host.alloc = odd_alloc;
    host.free = free;
    host.parallel_for = odd_parallel_for;
    const rn_library *lib = entry ? entry(&host) : NULL;
    CHECK(lib && lib->n_plugins == 1);
    if (!lib) {
        dlclose(so);
        return;
    }
    const rn_plugin *pl = lib->plugins[0];
    const rn_optimizer_api *api = pl->api;
    void *self = NULL;
    CHECK(pl->create(&host, NULL, &self) == RN_OK);
    float *p = malloc(N * sizeof *p), *gr = malloc(N * sizeof *gr), *rp = malloc(N * sizeof *rp);
    float *st = calloc(2 * N, sizeof *st), *rst = calloc(2 * N, sizeof *rst);
    for (int i = 0; i < N; i++) p[i] = rp[i] = (float)sin(i * 0.37);
    rn_param prm = {"big", p, gr, st, N};
    rn_group g = {sizeof g, "all", &prm, 1, 1e-2, 0.9, 5e-2, 0};
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < N; i++) gr[i] = (float)(cos(i * 0.13 + t) * (t == 1 ? 1e-3 : 1.0));
        g.step = t;
        CHECK(api->step(self, &g) == RN_OK);
        reference_step(rp, gr, rst, rst + N, N, 1e-2, 0.9, 0.999, 1e-6, 5e-2, 0, t);
    }
    int same = memcmp(p, rp, N * sizeof *p) == 0 && memcmp(st, rst, 2 * N * sizeof *st) == 0;
    CHECK(same);
    printf("  large tensor, host splitting into reversed ranges of 1007: %s the serial reference\n",
           same ? "bit-equal to" : "DIFFERS from");
    pl->destroy(self);
    free(p), free(gr), free(rp), free(st), free(rst);
    dlclose(so);
}

static void check_settings(const rn_registry *reg)
{
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "beta1", 1.0), "optimizer.beta1", "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "beta2", 1.0), "optimizer.beta2", "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "eps", 0.0), "optimizer.eps", "0");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "weight_decay", -1e-3),
                 "optimizer.weight_decay");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "bias_correction", 1.0),
                 "optimizer.bias_correction");
    EXPECT_ERROR(pt_str(pt_spec("optimizer", "lamb"), "always_adapt", "yes"),
                 "optimizer.always_adapt");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "momentum", 0.9), "optimizer.momentum");
    /* Global grad-norm clipping is not part of this variant. */
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lamb"), "max_grad_norm", 1.0),
                 "optimizer.max_grad_norm");

    /* Defaults: lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-6, weight_decay 0.01, bias correction on,
     * always_adapt off. */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, pt_spec("optimizer", "lamb"), NULL);
    double lr = 0, b1 = 0, b2 = 0, eps = 0, wd = 0;
    CHECK(rn_instance_number(&inst, "lr", &lr) && lr == 1e-3);
    CHECK(rn_instance_number(&inst, "beta1", &b1) && b1 == 0.9);
    CHECK(rn_instance_number(&inst, "beta2", &b2) && b2 == 0.999);
    CHECK(rn_instance_number(&inst, "eps", &eps) && eps == 1e-6);
    CHECK(rn_instance_number(&inst, "weight_decay", &wd) && wd == 1e-2);
    CHECK(!rn_instance_number(&inst, "momentum", &wd));
    CHECK(((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self) == 2);
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    check_settings(reg);
    check_fixture(reg);
    check_large(reg, 5e-2, 0);
    check_large(reg, 0, 1);
    check_large(reg, 0, 0);
    check_odd_split();
    rn_registry_free(reg);
    return rn_test_report("test_lamb");
}
