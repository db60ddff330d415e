/* lr_monitor plugin over a fake run with three groups: with interval "step" every step sets
 * lr.<group> and momentum.<group> to what host->group_at reports (names made valid metric names);
 * with "epoch" only the first step of each epoch (of each stage) does, so the epoch's value is the
 * lr it started with; log_momentum = false sets no momentum metrics; a run that reports no groups
 * is an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fake_run_ops.h"
#include "plugin_test_util.h"
#include "rn_test.h"

static double metric(const rn_metrics *m, const char *name)
{
    double v;
    return rn_metrics_get(m, name, &v) ? v : -999;
}

static void setup(fake_run *fr)
{
    fake_run_init(fr);
    fr->n_groups = 3;
    fr->group_names[0] = "default";
    fr->group_names[1] = "head.no_decay";
    fr->group_names[2] = "fc.*"; /* not a valid metric name as it is */
    fr->lr[0] = 0.1, fr->lr[1] = 1, fr->lr[2] = 0;
    fr->momentum[0] = 0.9, fr->momentum[1] = 0.8, fr->momentum[2] = 0;
}

static int step(rn_instance *inst, int stage, int64_t epoch, int64_t s)
{
    const rn_callback_api *api = inst->plugin->api;
    rn_event e = fake_event(stage, epoch, s, s, 4, 3);
    return api->on_step_end(inst->self, &e);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    rn_metrics m = {0};
    fake_run fr;
    setup(&fr);
    rn_run_view run = fake_view("/nonexistent", &m, &fr);

    /* interval "step" (default), log_momentum (default true) */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "lr_monitor"), &run);
    CHECK(step(&inst, 0, 0, 1) == RN_CONTINUE);
    CHECK(m.n == 6);
    CHECK(metric(&m, "lr.default") == 0.1 && metric(&m, "momentum.default") == 0.9);
    CHECK(metric(&m, "lr.head.no_decay") == 1 && metric(&m, "momentum.head.no_decay") == 0.8);
    CHECK(metric(&m, "lr.fc._") == 0 && metric(&m, "momentum.fc._") == 0);
    fr.lr[0] = 0.05;
    fr.momentum[1] = 0.85;
    CHECK(step(&inst, 0, 0, 2) == RN_CONTINUE);
    CHECK(metric(&m, "lr.default") == 0.05 && metric(&m, "momentum.head.no_decay") == 0.85);
    CHECK(m.n == 6);
    rn_instance_destroy(&inst);
    rn_metrics_free(&m);

    /* interval "epoch": the value of each epoch's first step holds through the epoch */
    setup(&fr);
    pt_create(&inst, reg, RN_KIND_CALLBACK,
              pt_bool(pt_str(pt_spec("callbacks[1]", "lr_monitor"), "interval", "epoch"),
                      "log_momentum", 0),
              &run);
    const double lrs[] = {0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01, 0.005, 0.001};
    /* 4 steps per epoch, 3 epochs; the recorded value of epoch e is lrs[4 e] */
    for (int s = 1; s <= 12; s++) {
        fr.lr[0] = lrs[s - 1];
        CHECK(step(&inst, 0, (s - 1) / 4, s) == RN_CONTINUE);
        CHECK(metric(&m, "lr.default") == lrs[((s - 1) / 4) * 4]);
    }
    CHECK(m.n == 3); /* no momentum metrics */
    CHECK(metric(&m, "momentum.default") == -999);
    /* a new stage's epoch 0 is a new epoch */
    fr.lr[0] = 0.5;
    CHECK(step(&inst, 1, 0, 1) == RN_CONTINUE);
    CHECK(metric(&m, "lr.default") == 0.5);
    fr.lr[0] = 0.4;
    CHECK(step(&inst, 1, 0, 2) == RN_CONTINUE);
    CHECK(metric(&m, "lr.default") == 0.5);
    rn_instance_destroy(&inst);

    /* no groups reported (a host without run actions) is an error, not silence */
    rn_run_view no_ops = {.run_dir = "/nonexistent", .seed = 1, .metrics = &m};
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "lr_monitor"), &no_ops);
    CHECK(step(&inst, 0, 0, 1) == RN_ERR);
    printf("  no groups: %s\n", rn_instance_error(&inst));
    CHECK(strstr(rn_instance_error(&inst), "group_count") != NULL);
    rn_instance_destroy(&inst);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK,
                          pt_str(pt_spec("callbacks[1]", "lr_monitor"), "interval", "batch"), err,
                          sizeof err));
    CHECK(strstr(err, "callbacks[1].interval") && strstr(err, "step|epoch"));
    rn_metrics_free(&m);
    rn_registry_free(reg);
    return rn_test_report("test_lr_monitor");
}
