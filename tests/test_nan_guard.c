/* nan_guard plugin over a fake run whose "weights" are the global step they were trained to, so a
 * rollback shows which saved state came back: saves at the run's and stage's beginning and every
 * every_steps steps (1 + floor(S / k) over S steps), rollback = restore + scale_lr(factor)
 * compounding, the error after max_rollbacks naming the count, action "stop", the warnings (step,
 * lr, which value was not finite), and state_save/state_load keeping the rollback count and the
 * save schedule across a resume. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fake_run_ops.h"
#include "plugin_test_util.h"
#include "rn_test.h"

typedef struct ng_env {
    rn_metrics m;
    fake_run fr;
    rn_run_view run;
    rn_instance inst;
    const rn_callback_api *api;
} ng_env;

static void env_init(ng_env *t, rn_registry *reg, rn_value *spec)
{
    memset(t, 0, sizeof *t);
    fake_run_init(&t->fr);
    t->run = fake_view("/nonexistent", &t->m, &t->fr);
    pt_create(&t->inst, reg, RN_KIND_CALLBACK, spec, &t->run);
    t->api = t->inst.plugin->api;
}

static void env_free(ng_env *t)
{
    rn_instance_destroy(&t->inst);
    CHECK(t->fr.live_copies == 0);
    rn_metrics_free(&t->m);
}

static rn_value *spec(void) { return pt_spec("callbacks[1]", "nan_guard"); }

static int begin(ng_env *t, int64_t global)
{
    rn_event e = fake_event(0, 0, 0, global, 1000, 10);
    t->fr.weights = (double)global;
    int a = t->api->on_run_begin(t->inst.self, &e);
    int b = t->api->on_stage_begin(t->inst.self, &e);
    return a != RN_CONTINUE ? a : b;
}

/* Steps from+1 .. to: the weights become the step number, then on_step_end. */
static void steps(ng_env *t, int64_t from, int64_t to)
{
    for (int64_t s = from + 1; s <= to; s++) {
        t->fr.weights = (double)s;
        rn_event e = fake_event(0, 0, s, s, 1000, 10);
        CHECK(t->api->on_step_end(t->inst.self, &e) == RN_CONTINUE);
    }
}

/* The step after `global` is not finite. */
static int nonfinite(ng_env *t, int64_t global, double loss, double lr)
{
    rn_event e = fake_event(0, 0, global, global, 1000, 10);
    e.loss = loss;
    e.lr = lr;
    t->fr.weights = -1; /* whatever the failed step left */
    return t->api->on_nonfinite(t->inst.self, &e);
}

static void test_rollbacks(rn_registry *reg)
{
    ng_env t;
    env_init(&t, reg, spec()); /* rollback, factor 0.5, every 100, max 3 */
    CHECK(rn_callback_hook_present(t.api, on_nonfinite));
    CHECK(begin(&t, 0) == RN_CONTINUE);
    CHECK(t.fr.saves == 2); /* run and stage begin */
    steps(&t, 0, 250);
    CHECK(t.fr.saves == 4); /* + steps 100 and 200 */

    fake_capture cap;
    capture_begin(&cap, 2);
    CHECK(nonfinite(&t, 250, NAN, 0.1) == RN_CONTINUE);
    const char *out = capture_end(&cap);
    CHECK(t.fr.weights == 200 && t.fr.restores == 1);
    CHECK(t.fr.lr_scale == 0.5);
    CHECK(strstr(out, "step 251: the loss is nan at lr 0.1") && strstr(out, "after step 200") &&
          strstr(out, "rollback 1 of 3"));

    steps(&t, 250, 260); /* 60 steps since the save at 200: no new save */
    CHECK(t.fr.saves == 4);
    capture_begin(&cap, 2);
    CHECK(nonfinite(&t, 260, 2.5, 0.05) == RN_CONTINUE);
    out = capture_end(&cap);
    CHECK(strstr(out, "step 261: the gradient norm is not finite (loss 2.5) at lr 0.05") != NULL);
    CHECK(t.fr.weights == 200 && t.fr.lr_scale == 0.25);
    steps(&t, 260, 310); /* step 300 is 100 steps after 200: saved */
    CHECK(t.fr.saves == 5);
    CHECK(nonfinite(&t, 310, INFINITY, 0.025) == RN_CONTINUE);
    CHECK(t.fr.weights == 300 && t.fr.lr_scale == 0.125 && t.fr.restores == 3);

    /* a 4th non-finite step after 3 rollbacks is an error naming the count */
    CHECK(nonfinite(&t, 310, NAN, 0.0125) == RN_ERR);
    const char *msg = rn_instance_error(&t.inst);
    printf("  after max_rollbacks: %s\n", msg);
    CHECK(strstr(msg, "nan_guard: step 311: the loss is nan at lr 0.0125 after 3 rollbacks "
                      "(max_rollbacks = 3)") != NULL);
    CHECK(t.fr.restores == 3 && t.fr.scales == 3);
    env_free(&t);

    /* every_steps 7 over 50 steps: 1 + floor(50 / 7) = 8 saves (stage begin, 7 .. 49) */
    env_init(&t, reg, pt_int(spec(), "every_steps", 7));
    rn_event e = fake_event(0, 0, 0, 0, 1000, 10);
    CHECK(t.api->on_stage_begin(t.inst.self, &e) == RN_CONTINUE);
    steps(&t, 0, 50);
    CHECK(t.fr.saves == 8);
    /* the default factor 0.5, twice: 0.25; back to the save at step 49 */
    CHECK(nonfinite(&t, 50, NAN, 1) == RN_CONTINUE);
    CHECK(nonfinite(&t, 50, NAN, 1) == RN_CONTINUE);
    CHECK(fabs(t.fr.lr_scale - 0.25) < 1e-15 && t.fr.weights == 49);
    env_free(&t);

    /* factor 0.1 compounds */
    env_init(&t, reg, pt_num(spec(), "factor", 0.1));
    CHECK(begin(&t, 0) == RN_CONTINUE);
    CHECK(nonfinite(&t, 0, NAN, 1) == RN_CONTINUE);
    CHECK(nonfinite(&t, 0, NAN, 1) == RN_CONTINUE);
    CHECK(fabs(t.fr.lr_scale - 0.01) < 1e-15);
    env_free(&t);

    /* max_rollbacks 0: the first non-finite step is the error */
    env_init(&t, reg, pt_int(spec(), "max_rollbacks", 0));
    CHECK(begin(&t, 0) == RN_CONTINUE);
    CHECK(nonfinite(&t, 0, NAN, 1) == RN_ERR);
    CHECK(strstr(rn_instance_error(&t.inst), "after 0 rollbacks") != NULL);
    CHECK(t.fr.restores == 0);
    env_free(&t);
}

static void test_stop_and_errors(rn_registry *reg)
{
    ng_env t;
    env_init(&t, reg, pt_int(pt_str(spec(), "action", "stop"), "every_steps", 20));
    CHECK(begin(&t, 0) == RN_CONTINUE);
    steps(&t, 0, 50);
    fake_capture cap;
    capture_begin(&cap, 2);
    CHECK(nonfinite(&t, 50, NAN, 0.3) == RN_STOP_RUN);
    CHECK(strstr(capture_end(&cap), "step 51: the loss is nan at lr 0.3; restored the state after "
                                    "step 40 and stopping the run") != NULL);
    CHECK(t.fr.weights == 40 && t.fr.scales == 0);
    env_free(&t);

    /* no state saved yet: rollback cannot, stop still stops */
    env_init(&t, reg, spec());
    CHECK(nonfinite(&t, 0, NAN, 1) == RN_ERR);
    CHECK(strstr(rn_instance_error(&t.inst), "no good state was saved yet") != NULL);
    env_free(&t);
    env_init(&t, reg, pt_str(spec(), "action", "stop"));
    CHECK(nonfinite(&t, 0, NAN, 1) == RN_STOP_RUN);
    CHECK(t.fr.restores == 0);
    env_free(&t);

    /* a failing restore is an error */
    env_init(&t, reg, spec());
    CHECK(begin(&t, 0) == RN_CONTINUE);
    t.fr.fail_restore = 1;
    CHECK(nonfinite(&t, 0, NAN, 1) == RN_ERR);
    CHECK(strstr(rn_instance_error(&t.inst), "shape mismatch") != NULL);
    CHECK(t.fr.scales == 0);
    env_free(&t);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_num(spec(), "factor", 1), err, sizeof err));
    CHECK(strstr(err, "callbacks[1].factor: expected a number in (0, 1)") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_num(spec(), "factor", 0), err, sizeof err));
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_int(spec(), "every_steps", 0), err,
                          sizeof err));
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_str(spec(), "action", "skip"), err,
                          sizeof err));
    CHECK(strstr(err, "rollback|stop") != NULL);
}

/* The scripted run: begin, 30 steps, a rollback, 9 steps, then for each later step one of
 * "step" / "nonfinite" events. Returns, per event after the resume point, the code of a
 * non-finite step or whether the step saved (10 + saved). */
enum { EVENTS = 12 };
static const int script[EVENTS] = {0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1}; /* 1: non-finite */

static void play(ng_env *t, int from, int64_t *global, int *codes)
{
    for (int i = from; i < EVENTS; i++) {
        if (script[i]) {
            codes[i] = nonfinite(t, *global, NAN, 0.1);
        } else {
            int before = t->fr.saves;
            ++*global;
            steps(t, *global - 1, *global);
            codes[i] = 10 + (t->fr.saves - before);
        }
    }
}

static void test_state_round_trip(rn_registry *reg)
{
    /* uninterrupted */
    ng_env t;
    env_init(&t, reg, pt_int(spec(), "every_steps", 4));
    CHECK(begin(&t, 0) == RN_CONTINUE);
    steps(&t, 0, 30);
    CHECK(nonfinite(&t, 30, NAN, 0.1) == RN_CONTINUE);
    steps(&t, 30, 39);
    int64_t global = 39;
    int ref[EVENTS];
    play(&t, 0, &global, ref);
    env_free(&t);
    /* by hand: saves at 0, 4, ..., 28, 32, 36 (every 4 since the stage begin); rollbacks 2 and
     * 3 at events 2 and 7 continue, the 4th non-finite step (event 9) is the error, and so is
     * every later one; steps 40 and 44 (events 0 and 5) save */
    const int expect[EVENTS] = {11, 10, RN_CONTINUE, 10, 10, 11, 10, RN_CONTINUE, 10, RN_ERR, 10,
                                RN_ERR};
    for (int i = 0; i < EVENTS; i++) CHECK(ref[i] == expect[i]);

    int fresh_differs = 0;
    for (int k = 0; k < EVENTS; k++) {
        env_init(&t, reg, pt_int(spec(), "every_steps", 4));
        CHECK(begin(&t, 0) == RN_CONTINUE);
        steps(&t, 0, 30);
        CHECK(nonfinite(&t, 30, NAN, 0.1) == RN_CONTINUE);
        steps(&t, 30, 39);
        global = 39;
        int codes[EVENTS];
        /* play up to event k, then save the state */
        for (int i = 0; i < k; i++) {
            if (script[i]) {
                codes[i] = nonfinite(&t, global, NAN, 0.1);
            } else {
                ++global;
                steps(&t, global - 1, global);
            }
        }
        size_t size = t.api->state_size(t.inst.self);
        void *buf = calloc(1, size);
        CHECK(t.api->state_save(t.inst.self, buf, size) == RN_OK);
        env_free(&t);

        ng_env r;
        env_init(&r, reg, pt_int(spec(), "every_steps", 4));
        CHECK(r.api->state_load(r.inst.self, buf, size) == RN_OK);
        rn_event e = fake_event(0, 0, global, global, 1000, 10);
        r.fr.weights = (double)global;
        CHECK(r.api->on_run_begin(r.inst.self, &e) == RN_CONTINUE); /* the resumed run begins */
        int64_t g2 = global;
        play(&r, k, &g2, codes);
        for (int i = k; i < EVENTS; i++) {
            CHECK(codes[i] == ref[i]);
            if (codes[i] != ref[i])
                fprintf(stderr, "  resume at event %d: event %d gave %d, expected %d\n", k, i,
                        codes[i], ref[i]);
        }
        env_free(&r);

        ng_env f;
        env_init(&f, reg, pt_int(spec(), "every_steps", 4));
        f.fr.weights = (double)global;
        CHECK(f.api->on_run_begin(f.inst.self, &e) == RN_CONTINUE);
        g2 = global;
        play(&f, k, &g2, codes);
        for (int i = k; i < EVENTS; i++) fresh_differs += codes[i] != ref[i];
        env_free(&f);
        free(buf);
    }
    CHECK(fresh_differs > 0);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    test_rollbacks(reg);
    test_stop_and_errors(reg);
    test_state_round_trip(reg);
    rn_registry_free(reg);
    return rn_test_report("test_nan_guard");
}
