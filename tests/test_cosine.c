/* cosine plugin vs PyTorch: the lr of every step of a 300-step stage against
 * SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W]) (CosineAnnealingLR alone without a
 * warm-up), from tests/fixtures/cosine_lr.txt (scripts/fixtures/make_cosine_fixture.py), to 1e-12
 * relative: torch 1.13 computes both schedules recursively, which drifts from the closed form by
 * ~1e-15. Also: warmup_epochs rounds to steps, momentum is untouched, bad settings are refused.
 * Restarts (cycle_epochs / cycle_steps, cycle_mul, cycle_decay, cycle_limit) vs timm's
 * CosineLRScheduler formula as the script re-implements it, from
 * tests/fixtures/cosine_restarts.txt, to 1e-12 relative, evaluated in any order (the schedule is
 * a pure function of the step). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

#define MAX_T 1000

static int run_case(FILE *f, const rn_registry *reg)
{
    char name[64];
    double base, start, min_lr;
    int total, spe, warmup;
    if (fscanf(f, " case %63s base %lf total_steps %d steps_per_epoch %d warmup_steps %d "
                  "start_factor %lf min_lr %lf lr",
               name, &base, &total, &spe, &warmup, &start, &min_lr) != 7)
        return 0;
    if (total > MAX_T) exit(2);
    double expect[MAX_T];
    for (int t = 0; t < total; t++)
        if (fscanf(f, "%lf", &expect[t]) != 1) exit(2);
    char end[8];
    if (fscanf(f, "%7s", end) != 1 || strcmp(end, "end") != 0) exit(2);

    rn_value *spec = pt_spec("schedule", "cosine");
    pt_num(spec, "warmup_start_factor", start);
    pt_num(spec, "min_lr", min_lr);
    /* Give the warm-up in epochs when it is a whole number of half epochs, to cover the rounding. */
    if (warmup > 0 && (2 * warmup) % spe == 0)
        pt_num(spec, "warmup_epochs", (double)warmup / spe);
    else
        pt_int(spec, "warmup_steps", warmup);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER, spec, NULL);
    const rn_scheduler_api *api = inst.plugin->api;
    double worst = 0;
    for (int t = 0; t < total; t++) {
        rn_sched_at at = {sizeof at, t, total, spe, t / spe};
        rn_sched_values v = {sizeof v, base, 0.9, base, 0.9};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK_NEAR(v.lr, expect[t], 0, 1e-12);
        CHECK(v.momentum == 0.9);
        double rel = fabs(v.lr - expect[t]) / fabs(expect[t]);
        if (rel > worst) worst = rel;
    }
    printf("  %-14s max relative difference to PyTorch %.3g\n", name, worst);
    rn_instance_destroy(&inst);
    return 1;
}

static void check_errors(const rn_registry *reg)
{
    char err[512];
    rn_value *both = pt_spec("schedule", "cosine");
    pt_num(both, "warmup_epochs", 1);
    pt_int(both, "warmup_steps", 10);
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, both, err, sizeof err));
    CHECK(strstr(err, "warmup_epochs") && strstr(err, "warmup_steps"));
    printf("  both warm-ups: %s\n", err);
    /* Both given, even as 0: has_setting tells "given" from "default". */
    rn_value *both0 = pt_spec("schedule", "cosine");
    pt_num(both0, "warmup_epochs", 0);
    pt_int(both0, "warmup_steps", 10);
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, both0, err, sizeof err));
    CHECK(strstr(err, "warmup_epochs") && strstr(err, "warmup_steps"));

    rn_value *zero = pt_num(pt_spec("schedule", "cosine"), "warmup_start_factor", 0);
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, zero, err, sizeof err));
    CHECK(strstr(err, "warmup_start_factor") != NULL);

    rn_value *neg = pt_num(pt_spec("schedule", "cosine"), "min_lr", -1);
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, neg, err, sizeof err));
    CHECK(strstr(err, "schedule.min_lr") != NULL);

    /* Restart settings. Both cycle lengths (even at their defaults' values) are refused by the
     * plugin (message under the schedule's path); ranges by the host with the key path. */
    rn_value *cycles = pt_int(pt_num(pt_spec("schedule", "cosine"), "cycle_epochs", 2),
                              "cycle_steps", 30);
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, cycles, err, sizeof err));
    CHECK(strncmp(err, "schedule:", 9) == 0 && strstr(err, "cycle_epochs") &&
          strstr(err, "cycle_steps") && strstr(err, "not both"));
    printf("  both cycle lengths: %s\n", err);
    struct { const char *key; double value; const char *want; } bad[] = {
        {"cycle_decay", 0, "(0, 1]"},     {"cycle_decay", 1.5, "(0, 1]"},
        {"cycle_mul", 0, "(0, inf)"},     {"cycle_mul", -2, "(0, inf)"},
        {"cycle_limit", 0, "[1, "},       {"cycle_epochs", 0, "(0, "},
        {"cycle_steps", 0, "[1, "},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rn_value *spec = pt_spec("schedule", "cosine");
        if (strcmp(bad[k].key, "cycle_limit") == 0 || strcmp(bad[k].key, "cycle_steps") == 0)
            pt_int(spec, bad[k].key, (int64_t)bad[k].value);
        else
            pt_num(spec, bad[k].key, bad[k].value);
        CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, spec, err, sizeof err));
        char path[64];
        snprintf(path, sizeof path, "schedule.%s", bad[k].key);
        int ok = strstr(err, path) != NULL && strstr(err, bad[k].want) != NULL;
        CHECK(ok);
        if (!ok) fprintf(stderr, "  \"%s\" / \"%s\" not in: %s\n", path, bad[k].want, err);
        printf("  %s = %g: %s\n", bad[k].key, bad[k].value, err);
    }
    rn_value *frac = pt_num(pt_spec("schedule", "cosine"), "cycle_limit", 2.5);
    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER, frac, err, sizeof err));
    CHECK(strstr(err, "schedule.cycle_limit") != NULL);
}

/* One case of cosine_restarts.txt: settings from its `set` lines, lr of every step. Returns 0 at
 * the end of the file. */
static int run_restart_case(FILE *f, const rn_registry *reg)
{
    char word[64], name[64];
    for (;;) {
        if (fscanf(f, " %63s", word) != 1) return 0;
        if (word[0] != '#') break;
        int ch;
        while ((ch = fgetc(f)) != '\n' && ch != EOF) {}
    }
    double base;
    int total, spe;
    if (strcmp(word, "case") != 0 ||
        fscanf(f, " %63s base %lf total_steps %d steps_per_epoch %d", name, &base, &total,
               &spe) != 4 ||
        total > MAX_T || total < 1 || spe < 1)
        exit(2);
    rn_value *spec = pt_spec("schedule", "cosine");
    static double expect[MAX_T];
    int have_lr = 0;
    for (;;) {
        if (fscanf(f, " %63s", word) != 1) exit(2);
        if (strcmp(word, "end") == 0) break;
        if (strcmp(word, "set") == 0) {
            char type[4], key[64], val[64];
            if (fscanf(f, " %3s %63s %63s", type, key, val) != 3) exit(2);
            if (type[0] == 'n') pt_num(spec, key, strtod(val, NULL));
            else if (type[0] == 'i') pt_int(spec, key, strtoll(val, NULL, 10));
            else exit(2);
        } else if (strcmp(word, "timm") == 0) { /* the arguments, for the reader */
            int ch;
            while ((ch = fgetc(f)) != '\n' && ch != EOF) {}
        } else if (strcmp(word, "lr") == 0) {
            for (int t = 0; t < total; t++)
                if (fscanf(f, "%lf", &expect[t]) != 1) exit(2);
            have_lr = 1;
        } else {
            exit(2);
        }
    }
    if (!have_lr) exit(2);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER, spec, NULL);
    const rn_scheduler_api *api = inst.plugin->api;
    double worst = 0;
    /* Backwards, then every step once more in a scrambled order: the values must not depend on
     * what was evaluated before. */
    static double got[MAX_T];
    for (int t = total - 1; t >= 0; t--) {
        rn_sched_at at = {sizeof at, t, total, spe, t / spe};
        rn_sched_values v = {sizeof v, base, 0.9, base, 0.9};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK_NEAR(v.lr, expect[t], 0, 1e-12);
        CHECK(v.momentum == 0.9);
        CHECK(v.lr > 0 && isfinite(v.lr));
        got[t] = v.lr;
        double rel = fabs(v.lr - expect[t]) / fabs(expect[t]);
        if (rel > worst) worst = rel;
    }
    for (int k = 0; k < total; k++) {
        int t = (int)(((long long)k * 97 + 13) % total);
        rn_sched_at at = {sizeof at, t, total, spe, t / spe};
        rn_sched_values v = {sizeof v, base, 0.9, base, 0.9};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK(v.lr == got[t]);
    }
    printf("  %-26s max relative difference to the timm formula %.3g\n", name, worst);
    rn_instance_destroy(&inst);
    return 1;
}

/* Restart settings in closed form at a few steps (independent of the fixture): peaks at cycle
 * starts are base * decay^i, min_lr is not scaled, past cycle_limit the lr stays at min_lr. */
static void check_restarts(const rn_registry *reg)
{
    rn_instance inst;
    /* warm-up 10 steps, cycles of 2 epochs = 8 steps doubling: 8, 16, 32; decay 0.5; 3 cycles */
    rn_value *s = pt_spec("schedule", "cosine");
    pt_int(s, "warmup_steps", 10);
    pt_num(s, "cycle_epochs", 2);
    pt_num(s, "cycle_mul", 2);
    pt_num(s, "cycle_decay", 0.5);
    pt_int(s, "cycle_limit", 3);
    pt_num(s, "min_lr", 0.01);
    pt_create(&inst, reg, RN_KIND_SCHEDULER, s, NULL);
    const rn_scheduler_api *api = inst.plugin->api;
    struct { int t; double lr; } want[] = {
        {10, 1.0},                                            /* cycle 0 starts */
        {14, 0.01 + (1.0 - 0.01) * 0.5},                      /* its middle */
        {18, 0.5},                                            /* cycle 1 (16 steps) starts */
        {26, 0.01 + (0.5 - 0.01) * 0.5},
        {34, 0.25},                                           /* cycle 2 (32 steps) starts */
        {65, 0.01 + (0.25 - 0.01) * (1 + cos(M_PI * 31 / 32)) / 2},
        {66, 0.01},                                           /* after cycle_limit */
        {1000, 0.01},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        rn_sched_at at = {sizeof at, want[k].t, 100, 4, want[k].t / 4};
        rn_sched_values v = {sizeof v, 1.0, 0, 1.0, 0};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK_NEAR(v.lr, want[k].lr, 1e-15, 1e-13);
    }
    rn_instance_destroy(&inst);

    /* A cycle length without cycle_limit: unlimited restarts, also past the stage's end. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_int(pt_spec("schedule", "cosine"), "cycle_steps", 7), NULL);
    api = inst.plugin->api;
    for (int t = 0; t < 400; t += 7) {
        rn_sched_at at = {sizeof at, t, 50, 10, t / 10};
        rn_sched_values v = {sizeof v, 0.3, 0, 0.3, 0};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK(v.lr == 0.3);
    }
    rn_instance_destroy(&inst);

    /* cycle_epochs rounds to whole steps, at least one: 0.01 epochs of 10 steps -> 1 step. */
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_num(pt_spec("schedule", "cosine"), "cycle_epochs", 0.01), NULL);
    api = inst.plugin->api;
    for (int t = 0; t < 5; t++) {
        rn_sched_at at = {sizeof at, t, 50, 10, 0};
        rn_sched_values v = {sizeof v, 0.3, 0, 0.3, 0};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK(v.lr == 0.3);
    }
    rn_instance_destroy(&inst);

    /* Shrinking cycles (cycle_mul 0.5: 40, 20, 10, ... steps, 80 in all), unlimited: min_lr from
     * step 80 on (timm raises a math domain error there); extreme cycle_mul stays finite. */
    s = pt_spec("schedule", "cosine");
    pt_int(s, "cycle_steps", 40);
    pt_num(s, "cycle_mul", 0.5);
    pt_num(s, "min_lr", 0.001);
    pt_create(&inst, reg, RN_KIND_SCHEDULER, s, NULL);
    api = inst.plugin->api;
    for (int t = 0; t < 300; t++) {
        rn_sched_at at = {sizeof at, t, 300, 10, t / 10};
        rn_sched_values v = {sizeof v, 0.1, 0, 0.1, 0};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK(isfinite(v.lr) && v.lr >= 0.001 && v.lr <= 0.1);
        if (t == 40) CHECK(v.lr == 0.1);
        if (t == 60) CHECK(v.lr == 0.1);
        if (t >= 80) CHECK(v.lr == 0.001);
    }
    rn_instance_destroy(&inst);
    double muls[] = {1e-300, 1e-9, 1 - 1e-15, 1 + 1e-15, 1e9, 1e300};
    for (size_t k = 0; k < sizeof muls / sizeof muls[0]; k++) {
        s = pt_spec("schedule", "cosine");
        pt_int(s, "cycle_steps", 3);
        pt_num(s, "cycle_mul", muls[k]);
        pt_num(s, "cycle_decay", 0.5);
        pt_num(s, "min_lr", 1e-4);
        pt_create(&inst, reg, RN_KIND_SCHEDULER, s, NULL);
        api = inst.plugin->api;
        for (int t = 0; t < 2000; t += 3) {
            rn_sched_at at = {sizeof at, t, 2000, 10, t / 10};
            rn_sched_values v = {sizeof v, 0.1, 0, 0.1, 0};
            CHECK(api->values(inst.self, &at, &v) == RN_OK);
            CHECK(isfinite(v.lr) && v.lr >= 0 && v.lr <= 0.1);
        }
        rn_instance_destroy(&inst);
    }
}

/* The whole stage is warm-up, and steps past the end stay at min_lr. */
static void check_edges(const rn_registry *reg)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_num(pt_int(pt_spec("schedule", "cosine"), "warmup_steps", 10), "min_lr", 0.01),
              NULL);
    const rn_scheduler_api *api = inst.plugin->api;
    rn_sched_at at = {sizeof at, 5, 8, 4, 1};
    rn_sched_values v = {sizeof v, 1.0, 0, 1.0, 0};
    CHECK(api->values(inst.self, &at, &v) == RN_OK);
    CHECK_NEAR(v.lr, 1e-3 + (1 - 1e-3) * 0.5, 0, 1e-15);
    at.step = 12;
    at.total_steps = 20;
    CHECK(api->values(inst.self, &at, &v) == RN_OK);
    CHECK_NEAR(v.lr, 0.01 + 0.99 * (1 + cos(M_PI * 2 / 10)) / 2, 0, 1e-15);
    at.step = 25;
    CHECK(api->values(inst.self, &at, &v) == RN_OK);
    CHECK(v.lr == 0.01);
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    FILE *f = pt_fixture("cosine_lr.txt");
    char line[256];
    if (!fgets(line, sizeof line, f)) return 2;
    int cases = 0;
    while (run_case(f, reg)) cases++;
    fclose(f);
    CHECK(cases == 3);
    f = pt_fixture("cosine_restarts.txt");
    int restart_cases = 0;
    while (run_restart_case(f, reg)) restart_cases++;
    fclose(f);
    CHECK(restart_cases >= 10);
    check_errors(reg);
    check_edges(reg);
    check_restarts(reg);
    rn_registry_free(reg);
    return rn_test_report("test_cosine");
}
