/* adam plugin vs torch.optim.Adam (1.13, foreach=False): one PyTorch optimizer with two parameter
 * groups of different settings (the second with L2 weight decay and AMSGrad), 30 steps with a
 * changing lr and, in the second group, a changing beta1 (tests/fixtures/adam_steps.txt, from
 * scripts/fixtures/make_adam_rmsprop_fixture.py). Here one plugin instance per group, as the host
 * makes them, fed the same gradients; parameters compared after each step to 1e-6 relative (+1e-7
 * absolute for values near 0). In practice they agree bit for bit (reported, not required: another
 * compiler's or CPU's rounding choices may differ by an ulp). Also: settings validation (beta1 = 1,
 * beta2 = 1, eps = 0, weight_decay < 0 and an unknown key refused with the key path), defaults,
 * state_floats 2 vs 3, a beta1 pushed out of range by a schedule, and a tensor large enough for
 * parallel_for gives bit-identical results to a serial reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim_fixture.h"
#include "plugin_test_util.h"
#include "rn_test.h"

/* The update as the plugin's header describes it, one element at a time. */
static void reference_step(float *p, const float *gr, float *m, float *v, float *vmax, int64_t n,
                           double lr, double b1, double b2, double eps, double wd, int64_t step)
{
    double t = (double)(step + 1);
    float fwd = (float)wd, fb1 = (float)b1, k1 = (float)(1 - b1);
    float fb2 = (float)b2, k2 = (float)(1 - b2), feps = (float)eps;
    float bc2 = (float)sqrt(1 - pow(b2, t)), neg = (float)(-lr / (1 - pow(b1, t)));
    for (int64_t i = 0; i < n; i++) {
        float g = (float)((double)fwd * p[i] + (double)gr[i]);
        m[i] = (float)((double)k1 * g + (double)(m[i] * fb1));
        v[i] = (float)((double)(k2 * g) * g + (double)(v[i] * fb2));
        float vv = v[i];
        if (vmax) {
            if (vv > vmax[i]) vmax[i] = vv;
            vv = vmax[i];
        }
        p[i] = p[i] + (neg * m[i]) / (sqrtf(vv) / bc2 + feps);
    }
}


static void check_settings(const rn_registry *reg)
{
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "beta1", 1.0), "optimizer.beta1", "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "beta1", -0.1), "optimizer.beta1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "beta2", 1.0), "optimizer.beta2", "1");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "eps", 0.0), "optimizer.eps", "0");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "weight_decay", -1e-3),
                 "optimizer.weight_decay");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "lr", -1.0), "optimizer.lr");
    EXPECT_ERROR(pt_num(pt_spec("optimizer", "adam"), "momentum", 0.9), "optimizer.momentum");
    EXPECT_ERROR(pt_str(pt_spec("optimizer", "adam"), "amsgrad", "yes"), "optimizer.amsgrad");

    /* Defaults: lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0, no amsgrad. */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, pt_spec("optimizer", "adam"), NULL);
    double lr = 0, b1 = 0, b2 = 0, eps = 0, wd = -1;
    CHECK(rn_instance_number(&inst, "lr", &lr) && lr == 1e-3);
    CHECK(rn_instance_number(&inst, "beta1", &b1) && b1 == 0.9);
    CHECK(rn_instance_number(&inst, "beta2", &b2) && b2 == 0.999);
    CHECK(rn_instance_number(&inst, "eps", &eps) && eps == 1e-8);
    CHECK(rn_instance_number(&inst, "weight_decay", &wd) && wd == 0);
    CHECK(!rn_instance_number(&inst, "momentum", &wd));
    CHECK(((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self) == 2);
    rn_instance_destroy(&inst);

    pt_create(&inst, reg, RN_KIND_OPTIMIZER,
              pt_bool(pt_spec("optimizer", "adam"), "amsgrad", 1), NULL);
    CHECK(((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self) == 3);
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    check_settings(reg);
    of_check_adam_fixture(reg, "adam_steps.txt", "adam");
    of_check_large_adam(reg, "adam", reference_step, 0);
    of_check_large_adam(reg, "adam", reference_step, 1);
    rn_registry_free(reg);
    return rn_test_report("test_adam");
}
