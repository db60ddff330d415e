/* early_stopping plugin against Lightning's EarlyStopping rule, worked by hand on fixed
 * sequences (each case says which epoch stops and why), with a fake run whose "weights" are the
 * epoch number they were trained to, so a restore shows which epoch came back: min_delta, mode
 * auto/min/max, patience, the bias-corrected EMA, restore at a stop and at a stage end, scope
 * "run", the reset at a new stage, non-finite values, the unknown-monitor error, and
 * state_save/state_load giving the uninterrupted run's decisions after every possible resume
 * point. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fake_run_ops.h"
#include "plugin_ctx.h"
#include "plugin_test_util.h"
#include "rn_test.h"

typedef struct es_env {
    rn_registry *reg;
    rn_metrics m;
    fake_run fr;
    rn_run_view run;
} es_env;

static void env_init(es_env *t, rn_registry *reg)
{
    memset(t, 0, sizeof *t);
    t->reg = reg;
    fake_run_init(&t->fr);
    rn_metrics_set(&t->m, "train.loss", 1);
    t->run = fake_view("/nonexistent", &t->m, &t->fr);
}

static void env_free(es_env *t) { rn_metrics_free(&t->m); }

static void make(es_env *t, rn_instance *inst, rn_value *spec)
{
    pt_create(inst, t->reg, RN_KIND_CALLBACK, spec, &t->run);
}

/* One epoch: the weights become `epoch` (as if trained to it), the metric is set, on_epoch_end. */
static int epoch(es_env *t, rn_instance *inst, int stage, int64_t ep, const char *metric,
                 double value)
{
    const rn_callback_api *api = inst->plugin->api;
    t->fr.weights = (double)(stage * 100 + ep);
    rn_metrics_set(&t->m, metric, value);
    rn_event e = fake_event(stage, ep, (ep + 1) * 10, (ep + 1) * 10, 10, 20);
    return api->on_epoch_end(inst->self, &e);
}

/* Runs seq from epoch 0 until a stop; returns the stopping epoch (-1: none) and the code. */
static int run_seq(es_env *t, rn_instance *inst, const char *metric, const double *seq, int n,
                   int *code)
{
    *code = RN_CONTINUE;
    for (int i = 0; i < n; i++) {
        int rc = epoch(t, inst, 0, i, metric, seq[i]);
        if (rc != RN_CONTINUE) {
            *code = rc;
            return i;
        }
    }
    return -1;
}

static rn_value *spec(void) { return pt_spec("callbacks[1]", "early_stopping"); }

/* The round trip's two set-ups: the defaults, and an EMA with a min_delta. */
static rn_value *variant_spec(int variant)
{
    rn_value *sp = pt_int(spec(), "patience", 3);
    if (variant) pt_num(pt_num(sp, "ema", 0.3), "min_delta", 0.01);
    return sp;
}

/* Defaults (min, patience 3, min_delta 0) on val.loss:
 *   e0 1.00 best   e1 0.80 best   e2 0.85 wait 1   e3 0.80 wait 2 (equal is no improvement)
 *   e4 0.79 best   e5 0.90 wait 1 e6 0.95 wait 2   e7 0.79 wait 3 -> stop at epoch 7,
 * restoring epoch 4. */
static const double seq_a[] = {1.0, 0.8, 0.85, 0.8, 0.79, 0.9, 0.95, 0.79, 0.7};

static void test_lightning_defaults(rn_registry *reg)
{
    es_env t;
    env_init(&t, reg);
    rn_instance inst;
    make(&t, &inst, spec());
    const rn_callback_api *api = inst.plugin->api;
    rn_event b = fake_event(0, 0, 0, 0, 10, 20);
    CHECK(api->on_stage_begin(inst.self, &b) == RN_CONTINUE);
    int code;
    fake_capture cap;
    capture_begin(&cap, 1);
    int stopped = run_seq(&t, &inst, "val.loss", seq_a, 9, &code);
    const char *out = capture_end(&cap);
    CHECK(stopped == 7);
    CHECK(code == RN_STOP_STAGE);
    CHECK(t.fr.saves == 3);    /* improvements at epochs 0, 1, 4 */
    CHECK(t.fr.restores == 1);
    CHECK(t.fr.weights == 4);  /* epoch 4's weights are back */
    CHECK(strstr(out, "restored the weights of epoch 4") != NULL);
    CHECK(strstr(out, "epoch 7: val.loss did not improve") != NULL);
    /* the stage end after a stop does not restore again */
    rn_event end = fake_event(0, 19, 200, 200, 10, 20);
    CHECK(api->on_stage_end(inst.self, &end) == RN_CONTINUE);
    CHECK(t.fr.restores == 1);
    rn_instance_destroy(&inst);
    CHECK(t.fr.live_copies == 0);

    /* min_delta 0.05: e0 1.0 best; e1 0.8 < 0.95 best; e2 0.85 wait 1; e3 0.8 wait 2;
     * e4 0.79 + 0.05 = 0.84 is not < 0.8: wait 3 -> stop at epoch 4, restoring epoch 1. */
    fake_run_init(&t.fr);
    make(&t, &inst, pt_num(spec(), "min_delta", 0.05));
    CHECK(run_seq(&t, &inst, "val.loss", seq_a, 9, &code) == 4);
    CHECK(t.fr.weights == 1);
    rn_instance_destroy(&inst);

    /* patience 1: e2 is the first epoch without improvement -> stop at epoch 2. */
    fake_run_init(&t.fr);
    make(&t, &inst, pt_int(spec(), "patience", 1));
    CHECK(run_seq(&t, &inst, "val.loss", seq_a, 9, &code) == 2);
    CHECK(t.fr.weights == 1);
    rn_instance_destroy(&inst);
    env_free(&t);
}

/* An accuracy rises. patience 2 on {0.5, 0.6, 0.6, 0.55, 0.7}:
 *   max: e0 best, e1 best, e2 wait 1 (equal), e3 wait 2 -> stop at 3, restoring epoch 1;
 *   min: e0 best, e1 wait 1, e2 wait 2 -> stop at 2, restoring epoch 0. */
static void test_modes(rn_registry *reg)
{
    static const double acc[] = {0.5, 0.6, 0.6, 0.55, 0.7};
    const struct {
        const char *metric, *mode;
        int stop;
        double weights;
    } cases[] = {
        {"val.acc", "auto", 3, 1},      {"val.accuracy", "auto", 3, 1},
        {"val.f1", "auto", 3, 1},       {"val.acc", "max", 3, 1},
        {"val.acc", "min", 2, 0},       {"val.loss_of_acc_x", "auto", 2, 0},
        {"val.loss", "max", 3, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        es_env t;
        env_init(&t, reg);
        rn_instance inst;
        make(&t, &inst,
             pt_str(pt_str(pt_int(spec(), "patience", 2), "monitor", cases[i].metric), "mode",
                    cases[i].mode));
        int code;
        int stop = run_seq(&t, &inst, cases[i].metric, acc, 5, &code);
        CHECK(stop == cases[i].stop);
        CHECK(t.fr.weights == cases[i].weights);
        if (stop != cases[i].stop) fprintf(stderr, "  case %zu stopped at %d\n", i, stop);
        rn_instance_destroy(&inst);
        env_free(&t);
    }
}

/* ema = 0.5, patience 1, on {1.0, 0.5, 0.6, 0.4, 0.9}. Raw values stop at epoch 2 (0.6 > 0.5).
 * Smoothed, m_t = 0.5 m_{t-1} + 0.5 x_t over 1 - 0.5^t:
 *   e0 0.5/0.5 = 1   e1 0.5/0.75 = 0.6667   e2 0.55/0.875 = 0.628571   e3 0.475/0.9375 = 0.506667
 *   e4 0.6875/0.96875 = 0.709677 -> wait 1 -> stop at epoch 4, restoring epoch 3. */
static void test_ema(rn_registry *reg)
{
    static const double seq[] = {1.0, 0.5, 0.6, 0.4, 0.9};
    es_env t;
    env_init(&t, reg);
    rn_instance inst;
    int code;
    make(&t, &inst, pt_int(spec(), "patience", 1));
    CHECK(run_seq(&t, &inst, "val.loss", seq, 5, &code) == 2);
    rn_instance_destroy(&inst);
    make(&t, &inst, pt_num(pt_int(spec(), "patience", 1), "ema", 0.5));
    CHECK(run_seq(&t, &inst, "val.loss", seq, 5, &code) == 4);
    CHECK(t.fr.weights == 3);
    rn_instance_destroy(&inst);
    /* min_delta applies to the smoothed value: 0.628571 + 0.05 is not below 0.6667, so e2 is
     * the first epoch without improvement -> stop at 2, restoring epoch 1. */
    make(&t, &inst, pt_num(pt_num(pt_int(spec(), "patience", 1), "ema", 0.5), "min_delta", 0.05));
    CHECK(run_seq(&t, &inst, "val.loss", seq, 5, &code) == 2);
    CHECK(t.fr.weights == 1);
    rn_instance_destroy(&inst);
    env_free(&t);
}

static void test_scope_stage_end_reset(rn_registry *reg)
{
    es_env t;
    env_init(&t, reg);
    rn_instance inst;
    int code;
    /* scope run: the same stop (epoch 7) asks to stop the run */
    make(&t, &inst, pt_str(spec(), "scope", "run"));
    CHECK(run_seq(&t, &inst, "val.loss", seq_a, 9, &code) == 7);
    CHECK(code == RN_STOP_RUN);
    rn_instance_destroy(&inst);

    /* a stage that ends without a stop: the best epoch (1) comes back at its end */
    fake_run_init(&t.fr);
    make(&t, &inst, spec());
    const rn_callback_api *api = inst.plugin->api;
    CHECK(run_seq(&t, &inst, "val.loss", seq_a, 3, &code) == -1);
    CHECK(t.fr.weights == 2 && t.fr.restores == 0);
    fake_capture cap;
    capture_begin(&cap, 1);
    rn_event end = fake_event(0, 2, 30, 30, 10, 3);
    CHECK(api->on_stage_end(inst.self, &end) == RN_CONTINUE);
    CHECK(strstr(capture_end(&cap), "restored the weights of epoch 1") != NULL);
    CHECK(t.fr.weights == 1 && t.fr.restores == 1);

    /* the next stage starts afresh: stage 0 left best 0.8, wait 1; stage 1's {5, 6, 7, 8} is
     * best, wait 1, wait 2, wait 3 -> stop at its epoch 3, restoring its epoch 0 (without the
     * reset, 5 and 6 would make wait 3 at its epoch 1) */
    rn_event b1 = fake_event(1, 0, 0, 30, 10, 3);
    CHECK(api->on_stage_begin(inst.self, &b1) == RN_CONTINUE);
    CHECK(epoch(&t, &inst, 1, 0, "val.loss", 5) == RN_CONTINUE);
    CHECK(epoch(&t, &inst, 1, 1, "val.loss", 6) == RN_CONTINUE);
    CHECK(epoch(&t, &inst, 1, 2, "val.loss", 7) == RN_CONTINUE);
    CHECK(epoch(&t, &inst, 1, 3, "val.loss", 8) == RN_STOP_STAGE);
    CHECK(t.fr.weights == 100); /* stage 1, epoch 0 */
    rn_instance_destroy(&inst);

    /* restore_best = false: no saves, no restores */
    fake_run_init(&t.fr);
    make(&t, &inst, pt_bool(spec(), "restore_best", 0));
    CHECK(run_seq(&t, &inst, "val.loss", seq_a, 9, &code) == 7);
    CHECK(t.fr.saves == 0 && t.fr.restores == 0 && t.fr.weights == 7);
    rn_instance_destroy(&inst);
    env_free(&t);
}

static void test_nonfinite_and_errors(rn_registry *reg)
{
    es_env t;
    env_init(&t, reg);
    rn_instance inst;
    int code;
    /* check_finite (default): NaN at epoch 2 stops at once, restoring epoch 1 */
    const double nan_seq[] = {1.0, 0.8, NAN, 0.5, 0.4, 0.3};
    make(&t, &inst, spec());
    CHECK(run_seq(&t, &inst, "val.loss", nan_seq, 6, &code) == 2);
    CHECK(t.fr.weights == 1);
    rn_instance_destroy(&inst);
    /* check_finite = false, patience 1: the NaN epoch is just an epoch without improvement */
    make(&t, &inst, pt_int(pt_bool(spec(), "check_finite", 0), "patience", 1));
    CHECK(run_seq(&t, &inst, "val.loss", nan_seq, 6, &code) == 2);
    rn_instance_destroy(&inst);
    make(&t, &inst, pt_int(pt_bool(spec(), "check_finite", 0), "patience", 2));
    CHECK(run_seq(&t, &inst, "val.loss", nan_seq, 6, &code) == -1);
    rn_instance_destroy(&inst);

    /* an unknown monitor at the first check lists the metrics */
    make(&t, &inst, pt_str(spec(), "monitor", "val.los"));
    const rn_callback_api *api = inst.plugin->api;
    rn_metrics_set(&t.m, "val.loss", 1);
    rn_event e = fake_event(0, 0, 10, 10, 10, 2);
    CHECK(api->on_epoch_end(inst.self, &e) < 0);
    const char *msg = rn_instance_error(&inst);
    printf("  unknown monitor: %s\n", msg);
    CHECK(strstr(msg, "early_stopping") && strstr(msg, "\"val.los\"") &&
          strstr(msg, "train.loss, val.loss"));
    rn_instance_destroy(&inst);

    /* a failing save_state is an error */
    make(&t, &inst, spec());
    t.fr.fail_save = 1;
    CHECK(epoch(&t, &inst, 0, 0, "val.loss", 1) < 0);
    CHECK(strstr(rn_instance_error(&inst), "disk full") != NULL);
    t.fr.fail_save = 0;
    rn_instance_destroy(&inst);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_num(spec(), "ema", 1), err, sizeof err));
    CHECK(strstr(err, "callbacks[1].ema") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_str(spec(), "mode", "up"), err, sizeof err));
    CHECK(strstr(err, "auto|min|max") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_str(spec(), "scope", "epoch"), err,
                          sizeof err));
    env_free(&t);
}

/* Resume after every epoch k: state_save, a new instance, state_load, the rest of the sequence.
 * Each must decide at every later epoch what the uninterrupted run decided; a fresh instance
 * (no state_load) must decide differently after some k, or the state would not matter. */
static void test_state_round_trip(rn_registry *reg)
{
    static const double seq[] = {1.0, 0.8, 0.85, 0.8, 0.79, 0.9, 0.95, 0.79, 0.78, 0.7, 0.9, 0.9};
    enum { N = sizeof seq / sizeof seq[0] };
    es_env t;
    env_init(&t, reg);
    for (int variant = 0; variant < 2; variant++) {
        rn_instance inst;
        make(&t, &inst, variant_spec(variant));
        const rn_callback_api *api = inst.plugin->api;
        int ref[N];
        int ref_n = N;
        for (int i = 0; i < N; i++) {
            ref[i] = epoch(&t, &inst, 0, i, "val.loss", seq[i]);
            if (ref[i] != RN_CONTINUE) {
                ref_n = i + 1;
                break;
            }
        }
        CHECK(ref_n < N); /* it does stop */
        rn_instance_destroy(&inst);

        int fresh_differs = 0;
        for (int k = 1; k < ref_n; k++) {
            make(&t, &inst, variant_spec(variant));
            for (int i = 0; i < k; i++) epoch(&t, &inst, 0, i, "val.loss", seq[i]);
            size_t size = api->state_size(inst.self);
            void *buf = calloc(1, size);
            CHECK(api->state_save(inst.self, buf, size) == RN_OK);
            rn_instance_destroy(&inst);

            rn_instance resumed, fresh;
            make(&t, &resumed, variant_spec(variant));
            make(&t, &fresh, variant_spec(variant));
            CHECK(api->state_size(resumed.self) == size);
            CHECK(api->state_load(resumed.self, buf, size) == RN_OK);
            free(buf);
            /* a resumed run may begin the stage again: the loaded counters stay */
            rn_event b = fake_event(0, k, k * 10, k * 10, 10, 20);
            CHECK(api->on_stage_begin(resumed.self, &b) == RN_CONTINUE);
            for (int i = k; i < ref_n; i++) {
                int rc = epoch(&t, &resumed, 0, i, "val.loss", seq[i]);
                CHECK(rc == ref[i]);
                if (rc != ref[i])
                    fprintf(stderr, "  variant %d resume at %d: epoch %d gave %d, expected %d\n",
                            variant, k, i, rc, ref[i]);
                if (epoch(&t, &fresh, 0, i, "val.loss", seq[i]) != ref[i]) fresh_differs = 1;
            }
            rn_instance_destroy(&resumed);
            rn_instance_destroy(&fresh);
        }
        CHECK(fresh_differs);
    }

    /* another plugin's state, or a truncated one, is refused */
    rn_instance inst;
    make(&t, &inst, spec());
    const rn_callback_api *api = inst.plugin->api;
    size_t size = api->state_size(inst.self);
    unsigned char *buf = calloc(1, size);
    CHECK(api->state_save(inst.self, buf, size) == RN_OK);
    CHECK(api->state_load(inst.self, buf, size - 8) != RN_OK);
    CHECK(strstr(rn_instance_error(&inst), "state_load") != NULL);
    inst.ctx->error[0] = 0;
    memcpy(buf, "checkpoint", 11);
    CHECK(api->state_load(inst.self, buf, size) != RN_OK);
    CHECK(strstr(rn_instance_error(&inst), "expected the state of early_stopping") != NULL);
    free(buf);
    rn_instance_destroy(&inst);
    env_free(&t);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    test_lightning_defaults(reg);
    test_modes(reg);
    test_ema(reg);
    test_scope_stage_end_reset(reg);
    test_nonfinite_and_errors(reg);
    test_state_round_trip(reg);
    rn_registry_free(reg);
    return rn_test_report("test_early_stopping");
}
