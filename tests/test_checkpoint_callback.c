/* checkpoint callback plugin (tests/test_checkpoint.c is the core's checkpoint format): which files
 * it asks the host to write at each epoch end, worked out by hand for a fixed metric sequence
 * (best only when strictly better, NaN never; last every time; epoch-N with N counted over the
 * run's stages; every_epochs gating all three), that only the newest `keep` epoch files remain in
 * the run directory, the unknown-monitor and write errors, and state_save/state_load: a run
 * resumed after any epoch writes and deletes exactly what the uninterrupted one does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_run_ops.h"
#include "plugin_test_util.h"
#include "rn_test.h"

typedef struct ck_env {
    rn_registry *reg;
    char dir[64];
    rn_metrics m;
    fake_run fr;
    rn_run_view run;
} ck_env;

static void env_init(ck_env *t, rn_registry *reg)
{
    memset(t, 0, sizeof *t);
    t->reg = reg;
    snprintf(t->dir, sizeof t->dir, "/tmp/rn_ckpt_cb_XXXXXX");
    if (!mkdtemp(t->dir)) exit(2);
    fake_run_init(&t->fr);
    t->fr.dir = t->dir;
    rn_metrics_set(&t->m, "train.loss", 1);
    t->run = fake_view(t->dir, &t->m, &t->fr);
}

static int exists(const ck_env *t, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    return access(path, F_OK) == 0;
}

static void env_free(ck_env *t)
{
    char path[256];
    for (int n = 0; n <= 20; n++) {
        snprintf(path, sizeof path, "%s/epoch-%d.safetensors", t->dir, n);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/best.safetensors", t->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/last.safetensors", t->dir);
    unlink(path);
    CHECK(rmdir(t->dir) == 0); /* nothing else was left behind */
    rn_metrics_free(&t->m);
}

static rn_value *spec(void) { return pt_spec("callbacks[2]", "checkpoint"); }

/* Epoch `ep` of stage `stage` ends with the monitor at value. */
static int epoch_end(ck_env *t, rn_instance *inst, int stage, int64_t ep, const char *metric,
                     double value)
{
    const rn_callback_api *api = inst->plugin->api;
    if (metric) rn_metrics_set(&t->m, metric, value);
    rn_event e = fake_event(stage, ep, (ep + 1) * 5, (ep + 1) * 5, 5, 10);
    return api->on_epoch_end(inst->self, &e);
}

/* val.loss per epoch (N = 1..7):
 *   N1 1.0 best   N2 0.8 best   N3 0.9   N4 0.7 best   N5 0.7 (equal: not better)
 *   N6 NaN (never better)   N7 0.6 best */
static const double seq[] = {1.0, 0.8, 0.9, 0.7, 0.7, NAN, 0.6};

static void test_defaults(rn_registry *reg)
{
    ck_env t;
    env_init(&t, reg);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, spec(), &t.run);
    for (int i = 0; i < 7; i++) CHECK(epoch_end(&t, &inst, 0, i, "val.loss", seq[i]) == RN_CONTINUE);
    const char *expect = "best.safetensors last.safetensors best.safetensors last.safetensors "
                         "last.safetensors best.safetensors last.safetensors last.safetensors "
                         "last.safetensors best.safetensors last.safetensors ";
    CHECK(strcmp(t.fr.written, expect) == 0);
    if (strcmp(t.fr.written, expect) != 0) fprintf(stderr, "  wrote: %s\n", t.fr.written);
    CHECK(exists(&t, "best.safetensors") && exists(&t, "last.safetensors"));
    CHECK(!exists(&t, "epoch-1.safetensors")); /* keep = 0: no epoch files */
    rn_instance_destroy(&inst);

    /* mode auto on an accuracy is max: 0.5 best, 0.4, 0.6 best */
    t.fr.written[0] = 0;
    pt_create(&inst, reg, RN_KIND_CALLBACK,
              pt_bool(pt_str(spec(), "monitor", "val.acc"), "save_last", 0), &t.run);
    epoch_end(&t, &inst, 0, 0, "val.acc", 0.5);
    epoch_end(&t, &inst, 0, 1, "val.acc", 0.4);
    epoch_end(&t, &inst, 0, 2, "val.acc", 0.6);
    CHECK(strcmp(t.fr.written, "best.safetensors best.safetensors ") == 0);
    rn_instance_destroy(&inst);
    env_free(&t);
}

static void test_keep_and_every(rn_registry *reg)
{
    ck_env t;
    env_init(&t, reg);
    rn_instance inst;
    /* keep 3, two stages of 4 and 3 epochs: N runs 1..7 over both; epoch 5, 6, 7 remain */
    pt_create(&inst, reg, RN_KIND_CALLBACK,
              pt_bool(pt_bool(pt_int(spec(), "keep", 3), "save_best", 0), "save_last", 0),
              &t.run);
    for (int i = 0; i < 4; i++) CHECK(epoch_end(&t, &inst, 0, i, NULL, 0) == RN_CONTINUE);
    for (int i = 0; i < 3; i++) CHECK(epoch_end(&t, &inst, 1, i, NULL, 0) == RN_CONTINUE);
    CHECK(strcmp(t.fr.written, "epoch-1.safetensors epoch-2.safetensors epoch-3.safetensors "
                               "epoch-4.safetensors epoch-5.safetensors epoch-6.safetensors "
                               "epoch-7.safetensors ") == 0);
    for (int n = 1; n <= 7; n++) {
        char name[64];
        snprintf(name, sizeof name, "epoch-%d.safetensors", n);
        CHECK(exists(&t, name) == (n >= 5));
    }
    CHECK(!exists(&t, "best.safetensors") && !exists(&t, "last.safetensors"));
    rn_instance_destroy(&inst);
    env_free(&t);

    /* every_epochs 2, keep 2, defaults otherwise: checkpoints at N = 2, 4, 6 only; best is judged
     * only then (N2 0.8 best, N4 0.7 best, N6 NaN not) */
    env_init(&t, reg);
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_int(pt_int(spec(), "every_epochs", 2), "keep", 2),
              &t.run);
    for (int i = 0; i < 7; i++) CHECK(epoch_end(&t, &inst, 0, i, "val.loss", seq[i]) == RN_CONTINUE);
    CHECK(strcmp(t.fr.written,
                 "best.safetensors last.safetensors epoch-2.safetensors "
                 "best.safetensors last.safetensors epoch-4.safetensors "
                 "last.safetensors epoch-6.safetensors ") == 0);
    CHECK(!exists(&t, "epoch-2.safetensors"));
    CHECK(exists(&t, "epoch-4.safetensors") && exists(&t, "epoch-6.safetensors"));
    rn_instance_destroy(&inst);
    env_free(&t);
}

static void test_errors(rn_registry *reg)
{
    ck_env t;
    env_init(&t, reg);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, spec(), &t.run);
    rn_metrics_set(&t.m, "test.loss", 1);
    CHECK(epoch_end(&t, &inst, 0, 0, NULL, 0) == RN_ERR_CONFIG);
    const char *msg = rn_instance_error(&inst);
    printf("  unknown monitor: %s\n", msg);
    CHECK(strstr(msg, "checkpoint") && strstr(msg, "\"val.loss\"") &&
          strstr(msg, "train.loss, test.loss"));
    rn_instance_destroy(&inst);

    /* without save_best the monitor is not needed */
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_bool(spec(), "save_best", 0), &t.run);
    CHECK(epoch_end(&t, &inst, 0, 0, NULL, 0) == RN_CONTINUE);
    CHECK(strcmp(t.fr.written, "last.safetensors ") == 0);
    /* a failed write is an error carrying the host's message */
    t.fr.fail_checkpoint = 1;
    CHECK(epoch_end(&t, &inst, 0, 1, NULL, 0) < 0);
    CHECK(strstr(rn_instance_error(&inst), "last.safetensors") &&
          strstr(rn_instance_error(&inst), "no space left"));
    rn_instance_destroy(&inst);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", -1), err, sizeof err));
    CHECK(strstr(err, "callbacks[2].keep") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK, pt_int(spec(), "every_epochs", 0), err,
                          sizeof err));
    CHECK(strstr(err, "callbacks[2].every_epochs") != NULL);
    env_free(&t);
}

/* 9 epochs, keep 2, every epoch. Reference: the whole run's writes after epoch k, and the files
 * left at the end; a run resumed after epoch k (state_save, new instance, state_load) must write
 * the same names after k and leave the same files. */
static void test_state_round_trip(rn_registry *reg)
{
    static const double s9[] = {1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.6, 0.65, 0.61};
    enum { N = 9 };
    char ref_after[N][sizeof ((fake_run *)0)->written];
    ck_env t;
    env_init(&t, reg);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", 2), &t.run);
    for (int i = 0; i < N; i++) {
        epoch_end(&t, &inst, 0, i, "val.loss", s9[i]);
        snprintf(ref_after[i], sizeof ref_after[i], "%s", t.fr.written);
    }
    rn_instance_destroy(&inst);
    CHECK(exists(&t, "epoch-8.safetensors") && exists(&t, "epoch-9.safetensors") &&
          !exists(&t, "epoch-7.safetensors"));
    env_free(&t);

    int fresh_differs = 0;
    for (int k = 1; k < N; k++) {
        env_init(&t, reg);
        pt_create(&inst, reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", 2), &t.run);
        const rn_callback_api *api = inst.plugin->api;
        for (int i = 0; i < k; i++) epoch_end(&t, &inst, 0, i, "val.loss", s9[i]);
        size_t size = api->state_size(inst.self);
        void *buf = calloc(1, size);
        CHECK(api->state_save(inst.self, buf, size) == RN_OK);
        rn_instance_destroy(&inst);

        rn_instance resumed;
        pt_create(&resumed, reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", 2), &t.run);
        CHECK(api->state_size(resumed.self) == size);
        CHECK(api->state_load(resumed.self, buf, size) == RN_OK);
        for (int i = k; i < N; i++) epoch_end(&t, &resumed, 0, i, "val.loss", s9[i]);
        CHECK(strcmp(t.fr.written, ref_after[N - 1]) == 0);
        if (strcmp(t.fr.written, ref_after[N - 1]) != 0)
            fprintf(stderr, "  resume at %d wrote %s\n  expected %s\n", k, t.fr.written,
                    ref_after[N - 1]);
        CHECK(exists(&t, "epoch-8.safetensors") && exists(&t, "epoch-9.safetensors"));
        for (int n = 1; n <= 7; n++) {
            char name[64];
            snprintf(name, sizeof name, "epoch-%d.safetensors", n);
            CHECK(!exists(&t, name));
        }
        rn_instance_destroy(&resumed);

        /* without the state: another sequence of writes */
        size_t before = strlen(t.fr.written);
        rn_instance fresh;
        pt_create(&fresh, reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", 2), &t.run);
        for (int i = k; i < N; i++) epoch_end(&t, &fresh, 0, i, "val.loss", s9[i]);
        if (strcmp(t.fr.written + before, ref_after[N - 1] + strlen(ref_after[k - 1])) != 0)
            fresh_differs++;
        rn_instance_destroy(&fresh);
        free(buf);
        env_free(&t);
    }
    CHECK(fresh_differs == N - 1);

    /* a state saved with keep 3 loaded with keep 1: the older files go now, the newest stays */
    env_init(&t, reg);
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", 3), &t.run);
    const rn_callback_api *api = inst.plugin->api;
    for (int i = 0; i < 3; i++) epoch_end(&t, &inst, 0, i, "val.loss", s9[i]);
    size_t size = api->state_size(inst.self);
    void *buf = calloc(1, size);
    CHECK(api->state_save(inst.self, buf, size) == RN_OK);
    rn_instance_destroy(&inst);
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_int(spec(), "keep", 1), &t.run);
    CHECK(api->state_load(inst.self, buf, size) == RN_OK);
    CHECK(!exists(&t, "epoch-1.safetensors") && !exists(&t, "epoch-2.safetensors") &&
          exists(&t, "epoch-3.safetensors"));
    epoch_end(&t, &inst, 0, 3, "val.loss", s9[3]);
    CHECK(!exists(&t, "epoch-3.safetensors") && exists(&t, "epoch-4.safetensors"));
    /* a truncated state is refused */
    CHECK(api->state_load(inst.self, buf, 20) != RN_OK);
    CHECK(strstr(rn_instance_error(&inst), "state_load") != NULL);
    free(buf);
    rn_instance_destroy(&inst);
    env_free(&t);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    test_defaults(reg);
    test_keep_and_every(reg);
    test_errors(reg);
    test_state_round_trip(reg);
    rn_registry_free(reg);
    return rn_test_report("test_checkpoint_callback");
}
