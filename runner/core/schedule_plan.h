/* The schedule of a prepared run, without training: printed per stage and group, and drawn. */
#ifndef RN_SCHEDULE_PLAN_H
#define RN_SCHEDULE_PLAN_H

#include <stdio.h>
#include "train.h"

/* Optimizer steps per epoch: batches (after drop_last) over `accumulate`, rounded up. */
int64_t rn_run_steps_per_epoch(const rn_run *r);

/* Evaluates every stage's scheduler for every step and group; prints the plan to `print` (may be
 * NULL) and writes `svg_path` (may be NULL) atomically: the lr of every group over every step. */
int rn_schedule_plan(rn_run *r, FILE *print, const char *svg_path, char *err, size_t errlen);

#endif
