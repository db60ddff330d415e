/* rmsprop plugin vs torch.optim.RMSprop (1.13, foreach=False): one PyTorch optimizer with two
 * parameter groups of different settings (the second with L2 weight decay, momentum and centered),
 * 30 steps with a changing lr and, in the second group, a changing momentum that is 0 on two steps
 * (tests/fixtures/rmsprop_steps.txt, from scripts/fixtures/make_adam_rmsprop_fixture.py). Here one
 * plugin instance per group, as the host makes them, fed the same gradients; parameters compared
 * after each step to 1e-6 relative (+1e-7 absolute for values near 0). In practice they agree bit
 * for bit (reported, not required: another compiler's or CPU's rounding choices may differ by an
 * ulp). Also: settings validation (alpha > 1, momentum = 1, eps = 0, weight_decay < 0 and an
 * unknown key refused with the key path), defaults, state_floats for each option, a momentum
 * raised by a schedule on an instance without a buffer, and a tensor large enough for parallel_for
 * gives bit-identical results to a serial reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim_fixture.h"
#include "plugin_test_util.h"
#include "rn_test.h"

#define STEPS 30

/* The settings of each fixture group beyond of_group's lr / momentum / wd. */
typedef struct fx_settings {
    double alpha, eps;
    int centered;
} fx_settings;

static size_t expected_state_floats(double momentum, int centered)
{
    return 1 + (momentum > 0) + (centered != 0);
}

static void check_fixture(const rn_registry *reg)
{
    int n_groups;
    FILE *f = of_open("rmsprop_steps.txt", 0, 2, 2, &n_groups);
    static of_group gs[2];
    static fx_settings cs[2];
    for (int k = 0; k < n_groups; k++) {
        of_group *x = &gs[k];
        fx_settings *c = &cs[k];
        of_scan_group(f, x, k,
                      "lr %lf alpha %lf eps %lf weight_decay %lf momentum %lf centered %d", &x->lr,
                      &c->alpha, &c->eps, &x->wd, &x->momentum, &c->centered);

        /* Each group is its own optimizer instance with its own settings. */
        rn_value *spec = pt_spec("optimizer", "rmsprop");
        pt_num(spec, "lr", x->lr);
        pt_num(spec, "alpha", c->alpha);
        pt_num(spec, "eps", c->eps);
        pt_num(spec, "weight_decay", x->wd);
        pt_num(spec, "momentum", x->momentum);
        pt_bool(spec, "centered", c->centered);
        of_create(x, reg, spec, expected_state_floats(x->momentum, c->centered));
    }
    /* The host fills lr / momentum / weight_decay from the settings. */
    of_read_inits(f, gs, n_groups, "momentum");
    of_run_steps(f, gs, n_groups, STEPS, "momentum");
    for (int k = 0; k < n_groups; k++) {
        char what[96];
        snprintf(what, sizeof what, "weight_decay %g, momentum %g, centered %d", gs[k].wd,
                 gs[k].momentum, cs[k].centered);
        of_print_group(&gs[k], k, STEPS, what);
    }
}

/* The update as the plugin's header describes it, one element at a time. */
static void reference_step(float *p, const float *gr, float *sq, float *buf, float *ga, int64_t n,
                           double lr, double alpha, double eps, double wd, double momentum)
{
    float fwd = (float)wd, fa = (float)alpha, keep = (float)(1 - alpha), feps = (float)eps;
    float fm = (float)momentum, neg = (float)-lr;
    for (int64_t i = 0; i < n; i++) {
        float g = (float)((double)fwd * p[i] + (double)gr[i]);
        sq[i] = (float)((double)(keep * g) * g + (double)(sq[i] * fa));
        float avg;
        if (ga) {
            ga[i] = (float)((double)keep * g + (double)(ga[i] * fa));
            avg = sqrtf((float)((double)-ga[i] * ga[i] + (double)sq[i]));
        } else {
            avg = sqrtf(sq[i]);
        }
        avg += feps;
        if (buf) {
            buf[i] = buf[i] * fm + g / avg;
            p[i] = (float)((double)neg * buf[i] + (double)p[i]);
        } else {
            p[i] = p[i] + (neg * g) / avg;
        }
    }
}

/* parallel_for chunks must not change a single bit. */
static void check_large(const rn_registry *reg, double momentum, int centered)
{
    enum { N = 200003 };
    rn_value *spec = pt_spec("optimizer", "rmsprop");
    pt_num(pt_num(spec, "lr", 1e-2), "weight_decay", 5e-2);
    pt_num(spec, "momentum", momentum);
    pt_bool(spec, "centered", centered);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    const rn_optimizer_api *api = inst.plugin->api;
    size_t sf = api->state_floats(inst.self);
    CHECK(sf == expected_state_floats(momentum, centered));
    float *p = malloc(N * sizeof *p), *gr = malloc(N * sizeof *gr);
    float *st = calloc(sf * N, sizeof *st), *rst = calloc(sf * N, sizeof *rst);
    float *rp = malloc(N * sizeof *rp);
    for (int i = 0; i < N; i++) p[i] = rp[i] = (float)sin(i * 0.37);
    rn_param prm = {"big", p, gr, st, N};
    rn_group g = {sizeof g, "all", &prm, 1, 1e-2, momentum, 5e-2, 0};
    float *rbuf = momentum > 0 ? rst + N : NULL;
    float *rga = centered ? rst + (momentum > 0 ? 2 : 1) * N : NULL;
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < N; i++) gr[i] = (float)(cos(i * 0.11 + t) * (t == 2 ? 1e-4 : 1.0));
        g.step = t;
        CHECK(api->step(inst.self, &g) == RN_OK);
        reference_step(rp, gr, rst, rbuf, rga, N, 1e-2, 0.99, 1e-8, 5e-2, momentum);
    }
    int same = memcmp(p, rp, N * sizeof *p) == 0 && memcmp(st, rst, sf * N * sizeof *st) == 0;
    CHECK(same);

    /* A schedule that raises the momentum of an instance without a buffer, or pushes it to 1, is
     * refused. */
    g.momentum = momentum > 0 ? 1.0 : 0.5;
    char *before = malloc(N * sizeof *p);
    memcpy(before, p, N * sizeof *p);
    CHECK(api->step(inst.self, &g) == RN_ERR_CONFIG);
    CHECK(memcmp(before, p, N * sizeof *p) == 0);
    free(before);
    free(p), free(gr), free(st), free(rst), free(rp);
    rn_instance_destroy(&inst);
}

static size_t state_floats_of(const rn_registry *reg, double momentum, int centered)
{
    rn_instance inst;
    rn_value *spec = pt_spec("optimizer", "rmsprop");
    pt_num(spec, "momentum", momentum);
    pt_bool(spec, "centered", centered);
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    size_t sf = ((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self);
    rn_instance_destroy(&inst);
    return sf;
}

static void check_settings(const rn_registry *reg)
{
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "alpha", 1.5), "optimizer.alpha", "1.5");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "alpha", -0.1), "optimizer.alpha");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "momentum", 1.0), "optimizer.momentum",
                 "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "momentum", -0.5), "optimizer.momentum");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "eps", 0.0), "optimizer.eps", "0");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "weight_decay", -1e-3),
                 "optimizer.weight_decay");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "lr", -1.0), "optimizer.lr");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "rmsprop"), "beta1", 0.9), "optimizer.beta1");
    EXPECT_ERROR(pt_str(pt_spec("optimizer", "rmsprop"), "centered", "yes"),
                 "optimizer.centered");

    /* Alpha's range is closed at both ends, as in PyTorch (alpha = 0 and 1 are accepted). */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER,
              pt_num(pt_spec("optimizer", "rmsprop"), "alpha", 1.0), NULL);
    rn_instance_destroy(&inst);
    pt_create(&inst, reg, RN_KIND_OPTIMIZER,
              pt_num(pt_spec("optimizer", "rmsprop"), "alpha", 0.0), NULL);
    rn_instance_destroy(&inst);

    /* Defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, not centered. */
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, pt_spec("optimizer", "rmsprop"), NULL);
    double lr = 0, alpha = 0, eps = 0, wd = -1, m = -1;
    CHECK(rn_instance_number(&inst, "lr", &lr) && lr == 1e-2);
    CHECK(rn_instance_number(&inst, "alpha", &alpha) && alpha == 0.99);
    CHECK(rn_instance_number(&inst, "eps", &eps) && eps == 1e-8);
    CHECK(rn_instance_number(&inst, "weight_decay", &wd) && wd == 0);
    CHECK(rn_instance_number(&inst, "momentum", &m) && m == 0);
    CHECK(!rn_instance_number(&inst, "beta1", &m));
    CHECK(((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self) == 1);
    rn_instance_destroy(&inst);

    /* square_avg, + momentum_buffer with momentum > 0, + grad_avg when centered. */
    CHECK(state_floats_of(reg, 0, 0) == 1);
    CHECK(state_floats_of(reg, 0.9, 0) == 2);
    CHECK(state_floats_of(reg, 0, 1) == 2);
    CHECK(state_floats_of(reg, 0.5, 1) == 3);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    check_settings(reg);
    check_fixture(reg);
    check_large(reg, 0, 0);
    check_large(reg, 0.9, 0);
    check_large(reg, 0, 1);
    check_large(reg, 0.9, 1);
    rn_registry_free(reg);
    return rn_test_report("test_rmsprop");
}
