/* grad_norm plugin: the host's per-step "grad_norm" metric aggregated into grad_norm.mean and
 * grad_norm.max as running values over each epoch (checked after every step against the mean and
 * max of the norms so far), so the epoch's metrics row (rn_metrics_end_epoch, taken before
 * on_epoch_end) holds the whole epoch's mean and max; restart at each epoch and stage; NaN norms
 * skipped; the warn_above warning for exactly the steps above it; the error when the host sets no
 * grad_norm; and state_save/state_load mid-epoch giving the uninterrupted epoch's values. */
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

/* The host's optimizer step: grad_norm set, then on_step_end. */
static int step(rn_instance *inst, rn_metrics *m, int stage, int64_t epoch, int64_t s, double norm)
{
    const rn_callback_api *api = inst->plugin->api;
    rn_metrics_set(m, "grad_norm", norm);
    rn_event e = fake_event(stage, epoch, s, s, 4, 3);
    return api->on_step_end(inst->self, &e);
}

static rn_value *spec(void) { return pt_spec("callbacks[1]", "grad_norm"); }

int main(void)
{
    rn_registry *reg = pt_registry();
    rn_metrics m = {0};
    fake_run fr;
    fake_run_init(&fr);
    rn_run_view run = fake_view("/nonexistent", &m, &fr);
    rn_metrics_set(&m, "train.loss", 1);

    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_num(spec(), "warn_above", 5), &run);
    /* epoch 0: norms 1, 2, 3, 6 -> running mean 1, 1.5, 2, 3 and max 1, 2, 3, 6 */
    const double n0[] = {1, 2, 3, 6}, mean0[] = {1, 1.5, 2, 3}, max0[] = {1, 2, 3, 6};
    fake_capture cap;
    capture_begin(&cap, 2);
    for (int i = 0; i < 4; i++) {
        CHECK(step(&inst, &m, 0, 0, i + 1, n0[i]) == RN_CONTINUE);
        CHECK_NEAR(metric(&m, "grad_norm.mean"), mean0[i], 0, 1e-15);
        CHECK(metric(&m, "grad_norm.max") == max0[i]);
    }
    const char *out = capture_end(&cap);
    CHECK(strstr(out, "step 4: gradient norm 6 exceeds warn_above 5") != NULL);
    CHECK(strstr(out, "step 3") == NULL); /* 3 is not above 5: one warning only */
    /* the host's epoch end: the row is taken before on_epoch_end and holds the epoch's values */
    CHECK(rn_metrics_end_epoch(&m) == 0);
    double hist[4];
    CHECK(rn_metrics_history(&m, "grad_norm.mean", hist, 4) == 1 && hist[0] == 3);
    CHECK(rn_metrics_history(&m, "grad_norm.max", hist, 4) == 1 && hist[0] == 6);

    /* epoch 1: 0.5, NaN (skipped), 1.5 -> mean 0.5, 0.5, 1; max 0.5, 0.5, 1.5 */
    const double n1[] = {0.5, NAN, 1.5}, mean1[] = {0.5, 0.5, 1}, max1[] = {0.5, 0.5, 1.5};
    for (int i = 0; i < 3; i++) {
        CHECK(step(&inst, &m, 0, 1, 5 + i, n1[i]) == RN_CONTINUE);
        CHECK_NEAR(metric(&m, "grad_norm.mean"), mean1[i], 0, 1e-15);
        CHECK(metric(&m, "grad_norm.max") == max1[i]);
    }
    /* epoch 2 starting with a NaN: no measured step yet -> NaN, not epoch 1's values */
    CHECK(step(&inst, &m, 0, 2, 9, NAN) == RN_CONTINUE);
    CHECK(isnan(metric(&m, "grad_norm.mean")) && isnan(metric(&m, "grad_norm.max")));
    /* a new stage restarts even at the same epoch index */
    CHECK(step(&inst, &m, 0, 2, 10, 4) == RN_CONTINUE);
    CHECK(step(&inst, &m, 1, 2, 1, 2) == RN_CONTINUE);
    CHECK(metric(&m, "grad_norm.mean") == 2 && metric(&m, "grad_norm.max") == 2);
    rn_instance_destroy(&inst);

    /* state round trip after 2 steps of an epoch: the remaining 2 give the whole epoch's values */
    pt_create(&inst, reg, RN_KIND_CALLBACK, spec(), &run);
    const rn_callback_api *api = inst.plugin->api;
    step(&inst, &m, 0, 0, 1, 1);
    step(&inst, &m, 0, 0, 2, 2);
    size_t size = api->state_size(inst.self);
    void *buf = calloc(1, size);
    CHECK(api->state_save(inst.self, buf, size) == RN_OK);
    rn_instance_destroy(&inst);
    pt_create(&inst, reg, RN_KIND_CALLBACK, spec(), &run);
    CHECK(api->state_load(inst.self, buf, size) == RN_OK);
    step(&inst, &m, 0, 0, 3, 3);
    step(&inst, &m, 0, 0, 4, 6);
    CHECK(metric(&m, "grad_norm.mean") == 3 && metric(&m, "grad_norm.max") == 6);
    rn_instance_destroy(&inst);
    /* without it: only the last two steps (mean 4.5) */
    pt_create(&inst, reg, RN_KIND_CALLBACK, spec(), &run);
    step(&inst, &m, 0, 0, 3, 3);
    step(&inst, &m, 0, 0, 4, 6);
    CHECK(metric(&m, "grad_norm.mean") == 4.5);
    CHECK(api->state_load(inst.self, buf, size / 2) != RN_OK);
    free(buf);
    rn_instance_destroy(&inst);
    rn_metrics_free(&m);

    /* a host that sets no grad_norm */
    rn_metrics_set(&m, "train.loss", 1);
    pt_create(&inst, reg, RN_KIND_CALLBACK, spec(), &run);
    rn_event e = fake_event(0, 0, 1, 1, 4, 3);
    CHECK(api->on_step_end(inst.self, &e) == RN_ERR);
    printf("  no grad_norm: %s\n", rn_instance_error(&inst));
    CHECK(strstr(rn_instance_error(&inst), "\"grad_norm\"") != NULL);
    rn_instance_destroy(&inst);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_num(spec(), "warn_above", -1), err,
                          sizeof err));
    CHECK(strstr(err, "callbacks[1].warn_above") != NULL);
    rn_metrics_free(&m);
    rn_registry_free(reg);
    return rn_test_report("test_grad_norm");
}
