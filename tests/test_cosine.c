/* cosine plugin vs PyTorch: the lr of every step of a 300-step stage against
 * SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W]) (CosineAnnealingLR alone without a
 * warm-up), from tests/fixtures/cosine_lr.txt (scripts/fixtures/make_cosine_fixture.py), to 1e-12
 * relative: torch 1.13 computes both schedules recursively, which drifts from the closed form by
 * ~1e-15. Also: warmup_epochs rounds to steps, momentum is untouched, bad settings are refused. */
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
    check_errors(reg);
    check_edges(reg);
    rn_registry_free(reg);
    return rn_test_report("test_cosine");
}
