/* lion plugin vs the reference Lion update (lucidrains/lion-pytorch, written out in float32 torch
 * ops in scripts/fixtures/make_lion_lamb_fixture.py, since torch 1.13 has no Lion): one optimizer
 * with two parameter groups of different settings (the second with weight_decay 0), 30 steps with
 * a changing lr and, in the second group, a changing beta1 (tests/fixtures/lion_steps.txt). Here one
 * plugin instance per group, as the host makes them, fed the same gradients (about one in ten
 * exactly 0, so sign(0) = 0 is exercised on the first step); parameters compared after each step to
 * 1e-6 relative (+1e-7 absolute for values near 0), and the worst difference is reported. Also:
 * settings validation with key paths, defaults, state_floats 1, a scheduled beta1 of 1 refused at
 * step time, and a tensor large enough for parallel_for gives bit-identical results to a serial
 * reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim_fixture.h"
#include "plugin_test_util.h"
#include "rn_test.h"

#define STEPS 30

static void check_fixture(const rn_registry *reg)
{
    int n_groups;
    FILE *f = of_open("lion_steps.txt", 1, 2, 2, &n_groups);
    static of_group gs[2];
    static double beta2[2];
    for (int k = 0; k < n_groups; k++) {
        of_group *x = &gs[k];
        of_scan_group(f, x, k, "lr %lf beta1 %lf beta2 %lf weight_decay %lf", &x->lr,
                      &x->momentum, &beta2[k], &x->wd);

        /* Each group is its own optimizer instance with its own settings. */
        rn_value *spec = pt_spec("optimizer", "lion");
        pt_num(spec, "lr", x->lr);
        pt_num(spec, "beta1", x->momentum);
        pt_num(spec, "beta2", beta2[k]);
        pt_num(spec, "weight_decay", x->wd);
        of_create(x, reg, spec, 1);
    }
    /* The host fills lr / momentum (beta1 here) / weight_decay from the settings. */
    of_read_inits(f, gs, n_groups, "beta1");
    of_run_steps(f, gs, n_groups, STEPS, "beta1");
    for (int k = 0; k < n_groups; k++) {
        char what[64];
        snprintf(what, sizeof what, "weight_decay %g", gs[k].wd);
        of_print_group(&gs[k], k, STEPS, what);
    }
}

/* The update as the plugin's header describes it, one element at a time. */
static void reference_step(float *p, const float *gr, float *m, int64_t n, double lr, double b1,
                           double b2, double wd)
{
    float decay = (float)(1 - lr * wd), fb1 = (float)b1, k1 = (float)(1 - b1);
    float fb2 = (float)b2, k2 = (float)(1 - b2), neg = (float)-lr;
    for (int64_t i = 0; i < n; i++) {
        float g = gr[i];
        float pi = p[i] * decay;
        float c = (float)((double)k1 * g + (double)(m[i] * fb1));
        float s = c > 0 ? 1.0f : c < 0 ? -1.0f : 0.0f;
        p[i] = (float)((double)neg * s + pi);
        m[i] = (float)((double)k2 * g + (double)(m[i] * fb2));
    }
}

/* parallel_for chunks must not change a single bit. */
static void check_large(const rn_registry *reg)
{
    enum { N = 200003 };
    rn_value *spec = pt_spec("optimizer", "lion");
    pt_num(pt_num(spec, "lr", 3e-4), "weight_decay", 0.5);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    const rn_optimizer_api *api = inst.plugin->api;
    float *p = malloc(N * sizeof *p), *gr = malloc(N * sizeof *gr);
    float *st = calloc(N, sizeof *st), *rst = calloc(N, sizeof *rst);
    float *rp = malloc(N * sizeof *rp);
    for (int i = 0; i < N; i++) p[i] = rp[i] = (float)sin(i * 0.37);
    rn_param prm = {"big", p, gr, st, N};
    rn_group g = {sizeof g, "all", &prm, 1, 3e-4, 0.9, 0.5, 0};
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < N; i++)
            gr[i] = i % 97 == 0 ? 0.0f : (float)(cos(i * 0.11 + t) * (t == 2 ? 1e-4 : 1.0));
        g.step = t;
        CHECK(api->step(inst.self, &g) == RN_OK);
        reference_step(rp, gr, rst, N, 3e-4, 0.9, 0.99, 0.5);
    }
    int same = memcmp(p, rp, N * sizeof *p) == 0 && memcmp(st, rst, N * sizeof *st) == 0;
    CHECK(same);

    /* A schedule that drives beta1 out of [0, 1) is refused at step time. */
    g.momentum = 1.0;
    CHECK(api->step(inst.self, &g) == RN_ERR_CONFIG);
    free(p), free(gr), free(st), free(rst), free(rp);
    rn_instance_destroy(&inst);
}

static void check_settings(const rn_registry *reg)
{
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "beta1", 1.0), "optimizer.beta1", "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "beta1", -0.1), "optimizer.beta1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "beta2", 1.0), "optimizer.beta2", "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "weight_decay", -1e-3),
                 "optimizer.weight_decay");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "lr", -1e-4), "optimizer.lr");
    EXPECT_ERROR(pt_bool(pt_spec("optimizer", "lion"), "beta2", 1), "optimizer.beta2");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "momentum", 0.9), "optimizer.momentum");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "lion"), "eps", 1e-8), "optimizer.eps");

    /* Defaults: lr 1e-4, beta1 0.9, beta2 0.99, weight_decay 0. */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, pt_spec("optimizer", "lion"), NULL);
    double lr = 0, b1 = 0, b2 = 0, wd = -1;
    CHECK(rn_instance_number(&inst, "lr", &lr) && lr == 1e-4);
    CHECK(rn_instance_number(&inst, "beta1", &b1) && b1 == 0.9);
    CHECK(rn_instance_number(&inst, "beta2", &b2) && b2 == 0.99);
    CHECK(rn_instance_number(&inst, "weight_decay", &wd) && wd == 0);
    CHECK(!rn_instance_number(&inst, "momentum", &wd));
    CHECK(((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self) == 1);
    rn_instance_destroy(&inst);

    /* beta1 = 0 and beta2 = 0 are in range. */
    pt_create(&inst, reg, RN_KIND_OPTIMIZER,
              pt_num(pt_num(pt_spec("optimizer", "lion"), "beta1", 0), "beta2", 0), NULL);
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    check_settings(reg);
    check_fixture(reg);
    check_large(reg);
    rn_registry_free(reg);
    return rn_test_report("test_lion");
}
