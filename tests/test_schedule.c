/* Stage schedules: one scheduler, or a chain of phases (SequentialLR) and multipliers, through
 * the real plugins, against closed forms. */
#include <math.h>
#include <string.h>
#include "plugin_test_util.h"
#include "rn_test.h"
#include "schedule.h"

static rn_value *chain(int n, rn_value **phases)
{
    rn_value *t = pt_node(RN_V_TABLE, "schedule");
    t->items = malloc((size_t)n * sizeof *t->items);
    for (int i = 0; i < n; i++) t->items[i] = phases[i];
    t->n_items = (size_t)n;
    return t;
}

static double lr_at(const rn_schedule *s, int64_t t, int64_t total, int64_t spe, double base,
                    char *err)
{
    rn_sched_at at = {.struct_size = sizeof at, .step = t, .total_steps = total,
                      .steps_per_epoch = spe, .epoch = t / spe};
    rn_sched_values v = {.struct_size = sizeof v, .base_lr = base, .base_momentum = 0.9,
                         .lr = base, .momentum = 0.9};
    if (rn_schedule_values(s, &at, &v, err, 256)) return NAN;
    return v.lr;
}

int main(void)
{
    rn_registry *reg = pt_registry();
    char err[256] = "";
    rn_schedule s;
    const int64_t spe = 10, total = 50;

    /* linear warm-up for one epoch (LinearLR over the phase), then cosine over the rest: the
     * cosine phase counts its own steps from 0 over its own 40 steps */
    rn_value *p[3];
    p[0] = pt_num(pt_num(pt_spec("schedule[1]", "linear"), "start_factor", 0.1), "epochs", 1);
    p[1] = pt_spec("schedule[2]", "cosine");
    rn_value *spec = chain(2, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) == 0);
    for (int64_t t = 0; t < total; t++) {
        double want = t < spe ? 0.2 * (0.1 + 0.9 * (double)t / 10.0)
                              : 0.2 * 0.5 * (1 + cos(M_PI * (double)(t - spe) / 40.0));
        CHECK_NEAR(lr_at(&s, t, total, spe, 0.2, err), want, 1e-15, 1e-12);
    }
    char desc[128];
    CHECK(strcmp(rn_schedule_describe(&s, desc, sizeof desc),
                 "linear (per step) -> cosine (per step)") == 0);
    rn_schedule_free(&s);
    pt_free(spec);

    /* a multiplier over the whole stage: constant x exponential (gamma 0.5 per epoch) */
    p[0] = pt_spec("schedule[1]", "constant");
    p[1] = pt_bool(pt_num(pt_spec("schedule[2]", "exponential"), "gamma", 0.5), "multiply", 1);
    spec = chain(2, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) == 0);
    for (int64_t t = 0; t < total; t++)
        CHECK_NEAR(lr_at(&s, t, total, spe, 0.1, err), 0.1 * pow(0.5, (double)(t / spe)), 0,
                   1e-12);
    /* schedulers say what they count: exponential per epoch by default, constant per step */
    CHECK(rn_schedule_phase_counts(&s.phases[0]) == RN_COUNTS_STEPS &&
          rn_schedule_phase_counts(&s.phases[1]) == RN_COUNTS_EPOCHS);
    CHECK(strcmp(rn_schedule_describe(&s, desc, sizeof desc),
                 "constant (per step) x exponential (per epoch)") == 0);
    rn_schedule_free(&s);
    pt_free(spec);

    /* three phases with step lengths; the last runs to the end */
    p[0] = pt_int(pt_spec("schedule[1]", "constant"), "steps", 5);
    p[1] = pt_int(pt_num(pt_spec("schedule[2]", "constant"), "factor", 0.5), "steps", 15);
    p[2] = pt_num(pt_spec("schedule[3]", "constant"), "factor", 0.25);
    spec = chain(3, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) == 0);
    CHECK(lr_at(&s, 4, total, spe, 1, err) == 1 && lr_at(&s, 5, total, spe, 1, err) == 0.5 &&
          lr_at(&s, 19, total, spe, 1, err) == 0.5 && lr_at(&s, 20, total, spe, 1, err) == 0.25 &&
          lr_at(&s, 49, total, spe, 1, err) == 0.25);
    /* phases that fill a shorter stage leave the last none: an error naming the phase */
    CHECK(isnan(lr_at(&s, 0, 20, spe, 1, err)));
    CHECK(strstr(err, "schedule[2]: the phases before the last take 20 of the stage's 20") != NULL);
    rn_schedule_free(&s);
    pt_free(spec);

    /* a middle phase without a length */
    p[0] = pt_spec("schedule[1]", "constant");
    p[1] = pt_spec("schedule[2]", "cosine");
    spec = chain(2, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) == 0);
    CHECK(isnan(lr_at(&s, 0, total, spe, 1, err)) && strstr(err, "schedule[1]: give this phase"));
    rn_schedule_free(&s);
    pt_free(spec);

    /* refused at creation: both lengths; a multiplier with a length; only multipliers; a plugin
     * setting error keeps its key path (the chain's own keys are taken off first) */
    p[0] = pt_int(pt_num(pt_spec("schedule[1]", "constant"), "epochs", 1), "steps", 3);
    p[1] = pt_spec("schedule[2]", "cosine");
    spec = chain(2, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) != 0 &&
          strstr(err, "schedule[1]: give the phase epochs or steps, not both"));
    rn_schedule_free(&s);
    pt_free(spec);
    p[0] = pt_spec("schedule[1]", "constant");
    p[1] = pt_num(pt_bool(pt_spec("schedule[2]", "constant"), "multiply", 1), "epochs", 2);
    spec = chain(2, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) != 0 &&
          strstr(err, "schedule[2]: a multiply phase runs over the whole stage"));
    rn_schedule_free(&s);
    pt_free(spec);
    p[0] = pt_bool(pt_spec("schedule[1]", "constant"), "multiply", 1);
    spec = chain(1, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) != 0 &&
          strstr(err, "every phase multiplies"));
    rn_schedule_free(&s);
    pt_free(spec);
    p[0] = pt_num(pt_num(pt_spec("schedule[1]", "linear"), "start_factor", 7), "epochs", 1);
    p[1] = pt_spec("schedule[2]", "cosine");
    spec = chain(2, p);
    CHECK(rn_schedule_create(&s, spec, reg, NULL, 0, err, sizeof err) != 0 &&
          strstr(err, "schedule[1].start_factor"));
    rn_schedule_free(&s);
    pt_free(spec);

    /* a single scheduler and the default (constant) are chains of one */
    CHECK(rn_schedule_create(&s, NULL, reg, NULL, 0, err, sizeof err) == 0 && s.n == 1 &&
          lr_at(&s, 7, total, spe, 0.3, err) == 0.3);
    rn_schedule_free(&s);
    rn_registry_free(reg);
    return rn_test_report("test_schedule");
}
