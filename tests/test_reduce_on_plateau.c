/* The reduce_on_plateau scheduler plugin vs PyTorch 1.13's ReduceLROnPlateau: for each case of
 * tests/fixtures/schedulers/reduce_on_plateau.txt (scripts/fixtures/make_plateau_fixture.py drives
 * a real SGD optimizer with two groups and calls sched.step(metric) after every epoch of a scripted
 * 60-epoch metric sequence), the metric is fed through an rn_metrics the way the training loop
 * does (rn_metrics_set, then rn_metrics_end_epoch at each epoch's end) and values() at every step
 * of epoch e (4 steps per epoch) must give PyTorch's lr of epoch e to 1e-12 relative. Also: purity
 * (with the whole history recorded, epochs evaluated in any order give bit-equal answers), the
 * unknown-monitor error, base_lr before any history, a history longer than the create() buffer,
 * and settings validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

#define MAX_E 200
#define MAX_G 4

typedef struct plateau_case {
    char name[64], metric[64];
    int epochs, spe, groups;
    double base[MAX_G];
    double seq[MAX_E];
    double lr[MAX_G][MAX_E];
    rn_value *spec;
} plateau_case;

static void read_values(FILE *f, int n, double *out)
{
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%lf", &out[i]) != 1) {
            fprintf(stderr, "fixture: expected %d numbers\n", n);
            exit(2);
        }
}

/* Reads the next case; returns 0 at the end of the file. */
static int read_case(FILE *f, plateau_case *c)
{
    char word[64];
    for (;;) {
        if (fscanf(f, " %63s", word) != 1) return 0;
        if (word[0] != '#') break;
        int ch;
        while ((ch = fgetc(f)) != '\n' && ch != EOF) {}
    }
    if (strcmp(word, "case") != 0) exit(2);
    if (fscanf(f, " %63s epochs %d steps_per_epoch %d groups %d base", c->name, &c->epochs,
               &c->spe, &c->groups) != 4 ||
        c->epochs > MAX_E || c->groups > MAX_G || c->spe < 1)
        exit(2);
    read_values(f, c->groups, c->base);
    c->metric[0] = '\0';
    c->spec = pt_spec("schedule", "reduce_on_plateau");
    for (;;) {
        if (fscanf(f, " %63s", word) != 1) exit(2);
        if (strcmp(word, "end") == 0) break;
        if (strcmp(word, "set") == 0) {
            char type[4], key[64], val[256];
            if (fscanf(f, " %3s %63s %255s", type, key, val) != 3) exit(2);
            switch (type[0]) {
            case 'n': pt_num(c->spec, key, strtod(val, NULL)); break;
            case 'i': pt_int(c->spec, key, strtoll(val, NULL, 10)); break;
            case 's': pt_str(c->spec, key, val); break;
            default: exit(2);
            }
        } else if (strcmp(word, "metric") == 0) {
            if (fscanf(f, " %63s", c->metric) != 1) exit(2);
            read_values(f, c->epochs, c->seq);
        } else if (strcmp(word, "lr") == 0) {
            int g;
            if (fscanf(f, "%d", &g) != 1 || g < 0 || g >= c->groups) exit(2);
            read_values(f, c->epochs, c->lr[g]);
        } else {
            exit(2);
        }
    }
    if (!c->metric[0]) exit(2);
    return 1;
}

static double rel(double a, double b) { return b != 0 ? fabs(a - b) / fabs(b) : fabs(a); }

static const rn_scheduler_api *api_of(const rn_instance *inst)
{
    return (const rn_scheduler_api *)inst->plugin->api;
}

static int eval(const rn_instance *inst, int64_t step, int64_t total, int64_t spe, double base,
                double *lr)
{
    rn_sched_at at = {sizeof at, step, total, spe, step / spe};
    rn_sched_values v = {sizeof v, base, 0.9, base, 0.9};
    int rc = api_of(inst)->values(inst->self, &at, &v);
    CHECK(v.momentum == 0.9);
    *lr = v.lr;
    return rc;
}

/* The metrics the runner registers, NaN until measured, plus `extra` when it is not one of them. */
static void start_metrics(rn_metrics *m, const char *extra)
{
    static const char *const names[] = {"train.loss", "lr", "grad_norm", "images_per_s",
                                        "test.loss", "test.acc", "time_s"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        CHECK(rn_metrics_set(m, names[i], NAN) == 0);
    if (extra) CHECK(rn_metrics_set(m, extra, NAN) == 0);
}

static double worst_rel;

static void run_case(const rn_registry *reg, plateau_case *c)
{
    rn_metrics metrics = {0};
    rn_run_view view = {.run_dir = ".", .seed = 1, .metrics = &metrics};
    start_metrics(&metrics, c->metric);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER, c->spec, &view);
    c->spec = NULL;
    int64_t total = (int64_t)c->epochs * c->spe;
    double w = 0;
    static double first[MAX_G][MAX_E];

    /* As in training: the lr of every step of epoch e, then the epoch's metrics are recorded. */
    for (int e = 0; e < c->epochs; e++) {
        for (int g = 0; g < c->groups; g++) {
            for (int k = 0; k < c->spe; k++) {
                double lr;
                CHECK(eval(&inst, (int64_t)e * c->spe + k, total, c->spe, c->base[g], &lr) ==
                      RN_OK);
                CHECK_NEAR(lr, c->lr[g][e], 0, 1e-12);
                if (rel(lr, c->lr[g][e]) > w) w = rel(lr, c->lr[g][e]);
                if (k == 0) first[g][e] = lr;
                else CHECK(lr == first[g][e]);
            }
        }
        /* Other metrics change too; only the monitored one matters. */
        CHECK(rn_metrics_set(&metrics, "train.loss", 1.0 / (e + 1)) == 0);
        CHECK(rn_metrics_set(&metrics, "lr", first[0][e]) == 0);
        CHECK(rn_metrics_set(&metrics, "test.acc", 0.01 * e) == 0);
        CHECK(rn_metrics_set(&metrics, "test.loss", 2.0 - 0.01 * e) == 0);
        CHECK(rn_metrics_set(&metrics, c->metric, c->seq[e]) == 0);
        CHECK(rn_metrics_end_epoch(&metrics) == 0);
    }

    /* Purity: with the whole history recorded, any epoch in any order gives the same value. */
    for (int i = 0; i < 3 * c->epochs; i++) {
        int e = (int)((i * 37 + 11) % c->epochs), g = i % c->groups;
        int k = i % c->spe;
        double lr;
        CHECK(eval(&inst, (int64_t)e * c->spe + k, total, c->spe, c->base[g], &lr) == RN_OK);
        CHECK(lr == first[g][e]);
    }
    for (int e = c->epochs - 1; e >= 0; e--) {
        double lr;
        CHECK(eval(&inst, (int64_t)e * c->spe, total, c->spe, c->base[0], &lr) == RN_OK);
        CHECK(lr == first[0][e]);
    }

    int changes = 0;
    for (int e = 1; e < c->epochs; e++) changes += first[0][e] != first[0][e - 1];
    printf("  %-32s monitor %-10s %2d reductions of group 0, max relative difference to "
           "PyTorch %.3g\n", c->name, c->metric, changes, w);
    if (w > worst_rel) worst_rel = w;
    rn_instance_destroy(&inst);
    rn_metrics_free(&metrics);
}

static void run_fixture(const rn_registry *reg)
{
    plateau_case *c = calloc(1, sizeof *c);
    if (!c) exit(2);
    FILE *f = pt_fixture("schedulers/reduce_on_plateau.txt");
    int cases = 0;
    while (read_case(f, c)) {
        run_case(reg, c);
        cases++;
    }
    fclose(f);
    free(c);
    CHECK(cases >= 5);
    printf("  %d cases, worst relative difference to PyTorch %.3g\n", cases, worst_rel);
}

/* ---- the monitor: unknown, no metrics yet, no history yet --------------------------------- */

static void check_monitor(const rn_registry *reg)
{
    rn_metrics metrics = {0};
    rn_run_view view = {.run_dir = ".", .seed = 1, .metrics = &metrics};
    start_metrics(&metrics, NULL);
    rn_instance inst;
    double lr;

    /* A typo: epoch 0 has nothing to look at; from epoch 1 it is an error naming the metrics. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_str(pt_spec("schedule", "reduce_on_plateau"), "monitor", "val.loss"), &view);
    CHECK(eval(&inst, 0, 100, 10, 0.1, &lr) == RN_OK && lr == 0.1);
    CHECK(eval(&inst, 9, 100, 10, 0.1, &lr) == RN_OK && lr == 0.1);
    CHECK(rn_metrics_set(&metrics, "test.loss", 1.0) == 0);
    CHECK(rn_metrics_end_epoch(&metrics) == 0);
    CHECK(eval(&inst, 10, 100, 10, 0.1, &lr) == RN_ERR_CONFIG);
    const char *msg = rn_instance_error(&inst);
    printf("  unknown monitor: %s\n", msg);
    CHECK(strstr(msg, "\"val.loss\"") != NULL);
    CHECK(strstr(msg, "not a metric") != NULL);
    CHECK(strstr(msg, "train.loss, lr, grad_norm") != NULL);
    CHECK(strstr(msg, "test.loss, test.acc") != NULL);
    rn_instance_destroy(&inst);

    /* Many metrics: the list is cut, not overflowed. */
    for (int i = 0; i < 100; i++) {
        char name[64];
        snprintf(name, sizeof name, "extra.metric_with_a_long_name_%d", i);
        CHECK(rn_metrics_set(&metrics, name, 0) == 0);
    }
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_str(pt_spec("schedule", "reduce_on_plateau"), "monitor", "val.loss"), &view);
    CHECK(eval(&inst, 10, 100, 10, 0.1, &lr) == RN_ERR_CONFIG);
    msg = rn_instance_error(&inst);
    CHECK(strstr(msg, "\"val.loss\"") != NULL && strstr(msg, "...") != NULL);
    rn_instance_destroy(&inst);
    rn_metrics_free(&metrics);

    /* No run metrics at all (the schedule plan before training): base_lr at every epoch. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER, pt_spec("schedule", "reduce_on_plateau"), NULL);
    CHECK(eval(&inst, 0, 100, 10, 0.1, &lr) == RN_OK && lr == 0.1);
    CHECK(eval(&inst, 99, 100, 10, 0.1, &lr) == RN_OK && lr == 0.1);
    rn_instance_destroy(&inst);

    /* Metrics registered, no epoch recorded yet (the plan after prepare): base_lr. */
    start_metrics(&metrics, NULL);
    pt_create(&inst, reg, RN_KIND_SCHEDULER, pt_spec("schedule", "reduce_on_plateau"), &view);
    CHECK(eval(&inst, 55, 100, 10, 0.1, &lr) == RN_OK && lr == 0.1);

    /* A history longer than the buffer made by create(), and values() of an epoch beyond the
     * recorded history (it uses what there is). Constant loss, defaults: patience 10, so the lr
     * is cut after epochs 11, 22, 33, ... (the first value is an improvement over +inf). */
    const int E = 500;
    for (int e = 0; e < E; e++) {
        CHECK(rn_metrics_set(&metrics, "test.loss", 0.5) == 0);
        CHECK(rn_metrics_end_epoch(&metrics) == 0);
    }
    for (int e = E; e >= 0; e -= 7) {
        CHECK(eval(&inst, (int64_t)e * 10, 10 * (E + 1), 10, 1.0, &lr) == RN_OK);
        int cuts = e >= 1 ? (e - 1) / 11 : 0;
        double want = pow(0.1, cuts);
        /* eps 1e-8 stops the cuts once lr * 0.9 <= 1e-8. */
        double floor_lr = 1.0;
        while (floor_lr - floor_lr * 0.1 > 1e-8) floor_lr *= 0.1;
        if (want < floor_lr) want = floor_lr;
        CHECK_NEAR(lr, want, 0, 1e-12);
    }
    CHECK(eval(&inst, 10 * (E + 50), 10 * (E + 100), 10, 1.0, &lr) == RN_OK);
    double at_end;
    CHECK(eval(&inst, 10 * E, 10 * (E + 1), 10, 1.0, &at_end) == RN_OK);
    CHECK(lr == at_end);
    rn_instance_destroy(&inst);

    /* A metric first measured at epoch 3 (NaN rows before): NaN counts as a bad epoch. */
    rn_metrics_free(&metrics);
    start_metrics(&metrics, NULL);
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_int(pt_str(pt_spec("schedule", "reduce_on_plateau"), "monitor", "late"),
                     "patience", 1),
              &view);
    for (int e = 0; e < 3; e++) CHECK(rn_metrics_end_epoch(&metrics) == 0);
    CHECK(rn_metrics_set(&metrics, "late", 1.0) == 0);
    CHECK(rn_metrics_end_epoch(&metrics) == 0);
    /* Epochs 0, 1 are NaN: bad, bad -> cut after epoch 1 (lr of epoch 2 is 0.01); epoch 2 NaN
     * (bad), epoch 3 an improvement over +inf. */
    CHECK(eval(&inst, 1, 10, 1, 0.1, &lr) == RN_OK && lr == 0.1);
    CHECK(eval(&inst, 2, 10, 1, 0.1, &lr) == RN_OK);
    CHECK_NEAR(lr, 0.01, 0, 1e-15);
    CHECK(eval(&inst, 4, 10, 1, 0.1, &lr) == RN_OK);
    CHECK_NEAR(lr, 0.01, 0, 1e-15);
    rn_instance_destroy(&inst);
    rn_metrics_free(&metrics);
}

/* ---- settings ------------------------------------------------------------------------------ */

static void expect_error(const rn_registry *reg, rn_value *spec, const char *a, const char *b)
{
    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, spec, err, sizeof err));
    CHECK(strstr(err, a) != NULL);
    if (b) CHECK(strstr(err, b) != NULL);
    printf("  refused: %s\n", err);
}

static rn_value *spec(void) { return pt_spec("schedule", "reduce_on_plateau"); }

static void check_settings(const rn_registry *reg)
{
    expect_error(reg, pt_num(spec(), "factor", 1), "schedule.factor", "(0, 1)");
    expect_error(reg, pt_num(spec(), "factor", 0), "schedule.factor", "(0, 1)");
    expect_error(reg, pt_num(spec(), "factor", 1.5), "schedule.factor", NULL);
    expect_error(reg, pt_str(spec(), "mode", "avg"), "schedule.mode", "min|max");
    expect_error(reg, pt_str(spec(), "threshold_mode", "relative"), "schedule.threshold_mode",
                 "rel|abs");
    expect_error(reg, pt_int(spec(), "patience", -1), "schedule.patience", NULL);
    expect_error(reg, pt_num(spec(), "patience", 2.5), "schedule.patience", NULL);
    expect_error(reg, pt_int(spec(), "cooldown", -2), "schedule.cooldown", NULL);
    expect_error(reg, pt_num(spec(), "threshold", -1e-4), "schedule.threshold", NULL);
    expect_error(reg, pt_num(spec(), "min_lr", -1), "schedule.min_lr", NULL);
    expect_error(reg, pt_num(spec(), "eps", -1), "schedule.eps", NULL);
    expect_error(reg, pt_num(spec(), "monitor", 3), "schedule.monitor", NULL);
    expect_error(reg, pt_str(spec(), "monitor", ""), "monitor", "empty");
    expect_error(reg, pt_num(spec(), "patiense", 3), "patiense", NULL);

    /* The defaults are PyTorch's. */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER, spec(), NULL);
    static const struct { const char *key; double want; } defaults[] = {
        {"factor", 0.1}, {"patience", 10}, {"threshold", 1e-4}, {"cooldown", 0},
        {"min_lr", 0},   {"eps", 1e-8},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) {
        double got = NAN;
        CHECK(rn_instance_number(&inst, defaults[i].key, &got) && got == defaults[i].want);
    }
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    run_fixture(reg);
    check_monitor(reg);
    check_settings(reg);
    rn_registry_free(reg);
    return rn_test_report("test_reduce_on_plateau");
}
