/* A stage's schedule: one scheduler plugin, or a chain of them.
 *
 *   schedule = { "cosine", warmup_epochs = 1 }                       -- one scheduler
 *   schedule = { { "linear", start_factor = 0.01, epochs = 1 },      -- a chain: phases in order,
 *                { "multistep", milestones_epochs = "30,60" },       -- the last one runs to the
 *                { "reduce_on_plateau", multiply = true } }          -- stage's end
 *
 * In a chain, `epochs` / `steps` give a phase its length (the last phase takes the rest), and
 * the phase sees its own step count from 0 and its own length as total_steps (PyTorch's
 * SequentialLR). A phase with `multiply = true` runs over the whole stage instead and scales the
 * result by its lr / base lr (a plateau on top of any schedule). These keys belong to the chain,
 * not to the plugins, whose settings are checked as usual. */
#ifndef RN_SCHEDULE_H
#define RN_SCHEDULE_H

#include "plugin_host.h"

typedef struct rn_phase {
    rn_instance inst;
    double epochs;     /* length in epochs, or NaN */
    int64_t steps;     /* length in steps, or -1 */
    int multiply;
    const char *path;  /* the phase's key path, for errors */
} rn_phase;

typedef struct rn_schedule {
    rn_phase *phases;
    int n;
} rn_schedule;

/* spec: a scheduler spec or a list of them (NULL: "constant"). `slot` seeds the instances. */
int rn_schedule_create(rn_schedule *s, const rn_value *spec, const rn_registry *reg,
                       const rn_run_view *view, uint64_t slot, char *err, size_t errlen);
void rn_schedule_free(rn_schedule *s);

/* The lr and momentum at `at` (stage-relative) for one group's base values. Errors: a phase
 * refusing, or phases longer than the stage ("schedule[1].epochs: ..."). */
int rn_schedule_values(const rn_schedule *s, const rn_sched_at *at, rn_sched_values *v,
                       char *err, size_t errlen);

/* What a phase counts: RN_COUNTS_EPOCHS or RN_COUNTS_STEPS (the plugin's answer; steps when it
 * gives none). */
int rn_schedule_phase_counts(const rn_phase *ph);
/* "cosine (per step)", or "linear (per step) -> cosine (per step) x reduce_on_plateau (per
 * epoch)" for a chain. */
const char *rn_schedule_describe(const rn_schedule *s, char *buf, size_t len);

#endif
