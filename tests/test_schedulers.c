/* The scheduler plugins step, multistep, exponential, linear, polynomial, one_cycle and lr_range vs
 * PyTorch 1.13: the lr (and one_cycle's momentum) of every step of a 300-step stage (30 steps per
 * epoch) for two parameter groups (base lr 0.1 and 0.025), from tests/fixtures/schedulers/<id>.txt
 * (scripts/fixtures/make_scheduler_fixtures.py drives a real SGD optimizer and the torch scheduler).
 * The plugins are closed forms; PyTorch computes StepLR, MultiStepLR, ExponentialLR, LinearLR and
 * PolynomialLR recursively, so each value is checked against the recursive value PyTorch used to
 * 1e-9 relative and against PyTorch's closed form (_get_closed_form_lr) to 1e-12. Also: settings
 * errors name the setting, values past the stage's end, and purity (any call order, same values). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

#define MAX_T 1000
#define MAX_G 4

typedef struct sched_case {
    char name[64], plugin[32];
    int total, spe, groups, has_mom, has_closed;
    double base[MAX_G];
    double lr[MAX_G][MAX_T], closed[MAX_G][MAX_T], mom[MAX_G][MAX_T];
    rn_value *spec;
} sched_case;

static void read_values(FILE *f, int total, double *out)
{
    for (int t = 0; t < total; t++)
        if (fscanf(f, "%lf", &out[t]) != 1) exit(2);
}

/* Reads the next case of the fixture; returns 0 at the end of the file. */
static int read_case(FILE *f, sched_case *c)
{
    char word[64];
    for (;;) {
        if (fscanf(f, " %63s", word) != 1) return 0;
        if (word[0] != '#') break;
        int ch;
        while ((ch = fgetc(f)) != '\n' && ch != EOF) {}
    }
    if (strcmp(word, "case") != 0) exit(2);
    if (fscanf(f, " %63s plugin %31s total_steps %d steps_per_epoch %d groups %d base", c->name,
               c->plugin, &c->total, &c->spe, &c->groups) != 5 ||
        c->total > MAX_T || c->groups > MAX_G)
        exit(2);
    for (int g = 0; g < c->groups; g++)
        if (fscanf(f, "%lf", &c->base[g]) != 1) exit(2);
    if (fscanf(f, " momentum %d", &c->has_mom) != 1) exit(2);
    c->has_closed = 0;
    c->spec = pt_spec("schedule", c->plugin);
    for (;;) {
        if (fscanf(f, " %63s", word) != 1) exit(2);
        if (strcmp(word, "end") == 0) break;
        if (strcmp(word, "set") == 0) {
            char type[4], key[64], val[256];
            if (fscanf(f, " %3s %63s %255s", type, key, val) != 3) exit(2);
            switch (type[0]) {
            case 'n': pt_num(c->spec, key, strtod(val, NULL)); break;
            case 'i': pt_int(c->spec, key, strtoll(val, NULL, 10)); break;
            case 'b': pt_bool(c->spec, key, atoi(val)); break;
            case 's': pt_str(c->spec, key, val); break;
            default: exit(2);
            }
            continue;
        }
        int g;
        if (fscanf(f, "%d", &g) != 1 || g < 0 || g >= c->groups) exit(2);
        if (strcmp(word, "lr") == 0) {
            read_values(f, c->total, c->lr[g]);
        } else if (strcmp(word, "closed") == 0) {
            read_values(f, c->total, c->closed[g]);
            c->has_closed = 1;
        } else if (strcmp(word, "mom") == 0) {
            read_values(f, c->total, c->mom[g]);
        } else {
            exit(2);
        }
    }
    if (!c->has_closed) memcpy(c->closed, c->lr, sizeof c->lr);
    return 1;
}

static double rel(double a, double b) { return b != 0 ? fabs(a - b) / fabs(b) : fabs(a); }

/* Worst relative difference to PyTorch over all cases, per plugin. */
static struct { const char *id; double lr, closed, mom; int cases; } worst[] = {
    {"step", 0, 0, 0, 0},       {"multistep", 0, 0, 0, 0}, {"exponential", 0, 0, 0, 0},
    {"linear", 0, 0, 0, 0},     {"polynomial", 0, 0, 0, 0}, {"one_cycle", 0, 0, 0, 0},
    {"lr_range", 0, 0, 0, 0},
};
#define N_PLUGINS (sizeof worst / sizeof worst[0])

static void run_case(const rn_registry *reg, sched_case *c, int k)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER, c->spec, NULL);
    c->spec = NULL;
    const rn_scheduler_api *api = inst.plugin->api;
    double w_lr = 0, w_closed = 0, w_mom = 0;
    /* Groups keep the ratio of their base lrs, except under lr_range (every group gets the same
     * lr) and polynomial with min_lr > 0 (every group ends at min_lr). */
    int keep_ratio = strcmp(c->plugin, "lr_range") != 0 && strcmp(c->name, "min_lr") != 0;
    static double first[MAX_T];
    for (int g = 0; g < c->groups; g++) {
        for (int t = 0; t < c->total; t++) {
            rn_sched_at at = {sizeof at, t, c->total, c->spe, t / c->spe};
            rn_sched_values v = {sizeof v, c->base[g], 0.9, c->base[g], 0.9};
            CHECK(api->values(inst.self, &at, &v) == RN_OK);
            CHECK_NEAR(v.lr, c->lr[g][t], 0, 1e-9);
            CHECK_NEAR(v.lr, c->closed[g][t], 0, 1e-12);
            if (g == 0) first[t] = v.lr;
            else if (keep_ratio) CHECK_NEAR(v.lr / first[t], c->base[g] / c->base[0], 0, 1e-12);
            else if (strcmp(c->plugin, "lr_range") == 0) CHECK(v.lr == first[t]);
            if (rel(v.lr, c->lr[g][t]) > w_lr) w_lr = rel(v.lr, c->lr[g][t]);
            if (rel(v.lr, c->closed[g][t]) > w_closed) w_closed = rel(v.lr, c->closed[g][t]);
            if (c->has_mom) {
                CHECK_NEAR(v.momentum, c->mom[g][t], 0, 1e-9);
                if (rel(v.momentum, c->mom[g][t]) > w_mom) w_mom = rel(v.momentum, c->mom[g][t]);
            } else {
                CHECK(v.momentum == 0.9);
            }
        }
    }
    /* Purity: the same step evaluated again, after others and in reverse order, is bit-equal. */
    for (int t = c->total - 1; t >= 0; t -= 7) {
        rn_sched_at at = {sizeof at, t, c->total, c->spe, t / c->spe};
        rn_sched_values a = {sizeof a, c->base[0], 0.9, c->base[0], 0.9};
        rn_sched_values b = a;
        CHECK(api->values(inst.self, &at, &a) == RN_OK);
        rn_sched_at other = {sizeof other, (t * 13) % c->total, c->total, c->spe,
                             (t * 13) % c->total / c->spe};
        rn_sched_values o = a;
        CHECK(api->values(inst.self, &other, &o) == RN_OK);
        CHECK(api->values(inst.self, &at, &b) == RN_OK);
        CHECK(a.lr == b.lr && a.momentum == b.momentum);
    }
    printf("  %-12s %-20s max relative difference to PyTorch: lr %.3g, closed form %.3g",
           c->plugin, c->name, w_lr, w_closed);
    if (c->has_mom) printf(", momentum %.3g", w_mom);
    printf("\n");
    worst[k].lr = fmax(worst[k].lr, w_lr);
    worst[k].closed = fmax(worst[k].closed, w_closed);
    worst[k].mom = fmax(worst[k].mom, w_mom);
    worst[k].cases++;
    rn_instance_destroy(&inst);
}

static void run_fixtures(const rn_registry *reg)
{
    sched_case *c = calloc(1, sizeof *c);
    if (!c) exit(2);
    for (size_t k = 0; k < N_PLUGINS; k++) {
        char file[64];
        snprintf(file, sizeof file, "schedulers/%s.txt", worst[k].id);
        FILE *f = pt_fixture(file);
        while (read_case(f, c)) {
            CHECK(strcmp(c->plugin, worst[k].id) == 0);
            run_case(reg, c, (int)k);
        }
        fclose(f);
        CHECK(worst[k].cases >= 2);
    }
    free(c);
    printf("  worst per plugin (lr vs PyTorch's recursive / closed form; momentum):\n");
    for (size_t k = 0; k < N_PLUGINS; k++)
        printf("    %-12s %.3g / %.3g; %.3g\n", worst[k].id, worst[k].lr, worst[k].closed,
               worst[k].mom);
}

/* ---- settings errors ---------------------------------------------------------------------- */

static int n_error_checks;

/* Expects the spec to be refused with every one of want[] in the message. */
static void expect_error(const rn_registry *reg, rn_value *spec, const char *const *want,
                         size_t n_want)
{
    char err[512];
    int failed = pt_create_fails(reg, RN_KIND_SCHEDULER, spec, err, sizeof err);
    CHECK(failed);
    for (size_t i = 0; i < n_want; i++) {
        int ok = strstr(err, want[i]) != NULL;
        CHECK(ok);
        if (!ok) fprintf(stderr, "  \"%s\" not in: %s\n", want[i], err);
    }
    printf("  refused: %s\n", err);
    n_error_checks++;
}

#define EXPECT_ERROR(spec, ...)                                                            \
    do {                                                                                   \
        const char *const want_[] = {__VA_ARGS__};                                         \
        expect_error(reg, spec, want_, sizeof want_ / sizeof want_[0]);                    \
    } while (0)

static rn_value *spec(const char *id) { return pt_spec("schedule", id); }

static void check_errors(const rn_registry *reg)
{
    /* step: exactly one period. */
    EXPECT_ERROR(pt_int(pt_int(spec("step"), "step_size_epochs", 30), "step_size_steps", 100),
                 "step_size_epochs", "step_size_steps", "not both");
    EXPECT_ERROR(spec("step"), "step_size_epochs", "step_size_steps", "neither");
    EXPECT_ERROR(pt_int(spec("step"), "step_size_epochs", 0), "schedule.step_size_epochs");
    EXPECT_ERROR(pt_num(pt_int(spec("step"), "step_size_steps", 5), "gamma", 1.5),
                 "schedule.gamma");

    /* multistep: the milestones string. */
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "30,6x0,90"),
                 "milestones_epochs", "\"6x0\"");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "30, -60"),
                 "milestones_epochs", "-60");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "30,2.5"),
                 "milestones_epochs", "2.5");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "60,30"),
                 "milestones_epochs", "\"30\"", "increasing");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "30,30"),
                 "milestones_epochs", "increasing");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "30,,60"),
                 "milestones_epochs", "empty milestone");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", "30,"),
                 "milestones_epochs", "empty milestone");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_epochs", ""),
                 "milestones_epochs", "empty string");
    EXPECT_ERROR(pt_str(spec("multistep"), "milestones_steps", "99999999999"),
                 "milestones_steps", "99999999999");
    EXPECT_ERROR(pt_str(pt_str(spec("multistep"), "milestones_epochs", "3"), "milestones_steps",
                        "100"),
                 "milestones_epochs", "milestones_steps", "not both");
    EXPECT_ERROR(spec("multistep"), "milestones_epochs", "neither");
    EXPECT_ERROR(pt_num(spec("multistep"), "milestones_epochs", 30), "schedule.milestones_epochs",
                 "string");

    /* exponential: gamma is required, per is a choice. */
    EXPECT_ERROR(spec("exponential"), "schedule.gamma", "missing");
    EXPECT_ERROR(pt_num(spec("exponential"), "gamma", 0), "schedule.gamma", "(0, 1]");
    EXPECT_ERROR(pt_str(pt_num(spec("exponential"), "gamma", 0.9), "per", "batch"),
                 "schedule.per", "epoch|step");

    /* linear / polynomial ranges. */
    EXPECT_ERROR(pt_num(spec("linear"), "start_factor", 0), "schedule.start_factor", "(0, 1]");
    EXPECT_ERROR(pt_num(spec("linear"), "end_factor", 1.5), "schedule.end_factor");
    EXPECT_ERROR(pt_int(spec("linear"), "total_steps", 0), "schedule.total_steps");
    EXPECT_ERROR(pt_num(spec("polynomial"), "power", 0), "schedule.power");
    EXPECT_ERROR(pt_num(spec("polynomial"), "min_lr", -1e-3), "schedule.min_lr");

    /* one_cycle: pct_start in (0, 1), and at most 0.5 with three phases. */
    EXPECT_ERROR(pt_num(spec("one_cycle"), "pct_start", 0), "schedule.pct_start", "(0, 1)");
    EXPECT_ERROR(pt_num(spec("one_cycle"), "pct_start", 1), "schedule.pct_start", "(0, 1)");
    EXPECT_ERROR(pt_num(spec("one_cycle"), "pct_start", -0.2), "schedule.pct_start");
    EXPECT_ERROR(pt_num(spec("one_cycle"), "pct_start", 1.3), "schedule.pct_start");
    EXPECT_ERROR(pt_bool(pt_num(spec("one_cycle"), "pct_start", 0.6), "three_phase", 1),
                 "pct_start", "three_phase");
    EXPECT_ERROR(pt_num(spec("one_cycle"), "div_factor", 0), "schedule.div_factor");
    EXPECT_ERROR(pt_str(spec("one_cycle"), "anneal_strategy", "cosine"),
                 "schedule.anneal_strategy", "cos|linear");

    /* lr_range. */
    EXPECT_ERROR(pt_num(pt_num(spec("lr_range"), "start_lr", 1), "end_lr", 0.5), "start_lr",
                 "end_lr");
    EXPECT_ERROR(pt_num(spec("lr_range"), "start_lr", 0), "schedule.start_lr");
    EXPECT_ERROR(pt_str(spec("lr_range"), "mode", "log"), "schedule.mode", "exp|linear");
}

/* ---- edges: values past the stage's end, tiny stages, defaults ----------------------------- */

static double lr_at(const rn_instance *inst, int64_t t, int64_t total, int64_t spe, double base,
                    double *mom)
{
    rn_sched_at at = {sizeof at, t, total, spe, t / spe};
    rn_sched_values v = {sizeof v, base, 0.9, base, 0.9};
    CHECK(((const rn_scheduler_api *)inst->plugin->api)->values(inst->self, &at, &v) == RN_OK);
    if (mom) *mom = v.momentum;
    return v.lr;
}

static void check_edges(const rn_registry *reg)
{
    rn_instance inst;
    double m;

    /* multistep: spaces are allowed; epochs, not steps. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_str(spec("multistep"), "milestones_epochs", " 30 , 60,90 "), NULL);
    CHECK(lr_at(&inst, 29 * 10 + 9, 1000, 10, 1, NULL) == 1);
    CHECK_NEAR(lr_at(&inst, 300, 1000, 10, 1, NULL), 0.1, 0, 1e-15);
    CHECK_NEAR(lr_at(&inst, 950, 1000, 10, 1, NULL), 1e-3, 0, 1e-15);
    rn_instance_destroy(&inst);

    /* step: step_size_epochs uses the epoch. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER, pt_int(spec("step"), "step_size_epochs", 2), NULL);
    CHECK(lr_at(&inst, 19, 100, 10, 2, NULL) == 2);
    CHECK_NEAR(lr_at(&inst, 20, 100, 10, 2, NULL), 0.2, 0, 1e-15);
    rn_instance_destroy(&inst);

    /* exponential defaults to per epoch. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER, pt_num(spec("exponential"), "gamma", 0.5), NULL);
    CHECK(lr_at(&inst, 9, 100, 10, 1, NULL) == 1);
    CHECK(lr_at(&inst, 25, 100, 10, 1, NULL) == 0.25);
    rn_instance_destroy(&inst);

    /* linear with total_steps shorter than the stage: end_factor after it. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER, pt_int(spec("linear"), "total_steps", 10), NULL);
    CHECK_NEAR(lr_at(&inst, 0, 100, 10, 3, NULL), 1, 0, 1e-15);
    CHECK_NEAR(lr_at(&inst, 5, 100, 10, 3, NULL), 2, 0, 1e-15);
    CHECK_NEAR(lr_at(&inst, 10, 100, 10, 3, NULL), 3, 0, 1e-15);
    CHECK_NEAR(lr_at(&inst, 99, 100, 10, 3, NULL), 3, 0, 1e-15);
    rn_instance_destroy(&inst);

    /* polynomial: min_lr at and past the end; the last step is above it. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_num(pt_num(spec("polynomial"), "power", 2), "min_lr", 0.01), NULL);
    CHECK_NEAR(lr_at(&inst, 9, 10, 5, 1, NULL), 0.01 + 0.99 * 0.01, 0, 1e-14);
    CHECK(lr_at(&inst, 10, 10, 5, 1, NULL) == 0.01);
    CHECK(lr_at(&inst, 50, 10, 5, 1, NULL) == 0.01);
    rn_instance_destroy(&inst);

    /* one_cycle: past the end it stays at the last step's values; a 1-step stage; a zero-length
     * warm-up phase (pct_start * T = 1, where PyTorch divides by zero) peaks at once. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER, spec("one_cycle"), NULL);
    double last_m, past_m;
    double last = lr_at(&inst, 99, 100, 10, 1, &last_m);
    double past = lr_at(&inst, 150, 100, 10, 1, &past_m);
    CHECK(last == past && last_m == past_m);
    CHECK_NEAR(last, 1.0 / 25 / 1e4, 0, 1e-12);
    CHECK_NEAR(last_m, 0.95, 0, 1e-12);
    CHECK_NEAR(lr_at(&inst, 0, 100, 10, 1, &m), 0.04, 0, 1e-15);
    CHECK_NEAR(m, 0.95, 0, 1e-15);
    CHECK_NEAR(lr_at(&inst, 29, 100, 10, 1, &m), 1, 0, 1e-15);
    CHECK_NEAR(m, 0.85, 0, 1e-15);
    double one = lr_at(&inst, 0, 1, 1, 1, &m);
    CHECK(isfinite(one) && isfinite(m));
    CHECK_NEAR(one, 1.0 / 25 / 1e4, 0, 1e-12);
    rn_instance_destroy(&inst);
    pt_create(&inst, reg, RN_KIND_SCHEDULER, pt_num(spec("one_cycle"), "pct_start", 0.1), NULL);
    CHECK(lr_at(&inst, 0, 10, 10, 2, &m) == 2);
    CHECK(m == 0.85);
    for (int t = 0; t < 10; t++) CHECK(isfinite(lr_at(&inst, t, 10, 10, 2, &m)) && isfinite(m));
    rn_instance_destroy(&inst);

    /* lr_range: start and end exactly, ignores the base lr, 1-step stage, past the end. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER, spec("lr_range"), NULL);
    CHECK(lr_at(&inst, 0, 100, 10, 0.1, NULL) == 1e-7);
    CHECK(lr_at(&inst, 99, 100, 10, 0.1, NULL) == 10);
    CHECK(lr_at(&inst, 120, 100, 10, 0.1, NULL) == 10);
    CHECK(lr_at(&inst, 0, 1, 1, 0.1, NULL) == 1e-7);
    CHECK_NEAR(lr_at(&inst, 50, 101, 10, 123, NULL), 1e-7 * pow(1e8, 0.5), 0, 1e-13);
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    run_fixtures(reg);
    check_errors(reg);
    check_edges(reg);
    rn_registry_free(reg);
    return rn_test_report("test_schedulers");
}
