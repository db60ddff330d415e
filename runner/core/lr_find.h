/* The LR finder stage ({ "lr_find", ... } in stages): fastai's lr_find as a stage of the run.
 * The lr grows from start_lr to end_lr over `steps` optimizer steps (point i at
 * start_lr * (end_lr / start_lr)^(i / steps), or linearly), one point per optimizer step; the
 * training loss is smoothed by an EMA with bias correction; the sweep stops early when the
 * smoothed loss exceeds div_factor times its minimum or is not finite. Afterwards the weights,
 * optimizer state and data position are what they were before it, and the suggestions are in
 * summary.json, lr_find.csv and lr_find.svg (named after the stage). With repeats = k, k sweeps run from the same state
 * with different data orders; the curve used is their median. */
#ifndef RN_LR_FIND_H
#define RN_LR_FIND_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rn_run rn_run;

enum { RN_SUGGEST_VALLEY, RN_SUGGEST_STEEP, RN_SUGGEST_MINIMUM, RN_SUGGESTIONS };
extern const char *const rn_suggestion_names[RN_SUGGESTIONS]; /* "valley", "steep", "minimum" */

/* One sweep's recorded points. */
typedef struct rn_lr_sweep {
    double *lr, *loss, *smooth; /* n points: the lr of the step, its loss, the smoothed loss */
    int64_t n;
    const char *stopped;        /* why it ended: "end_lr reached", "loss diverged", ... */
} rn_lr_sweep;

typedef struct rn_lr_find_result {
    int stage;                  /* index of the lr_find stage */
    int64_t repeats;
    rn_lr_sweep *sweeps;        /* `repeats` sweeps */
    /* The curve the suggestions come from: the median over the sweeps at each step (while more
     * than half of them got there), with the lowest and highest smoothed loss as the band. */
    double *lr, *loss, *lo, *hi;
    int64_t n;
    double suggest[RN_SUGGESTIONS];      /* lr suggested (NaN when the curve is too short) */
    double suggest_loss[RN_SUGGESTIONS]; /* the curve's loss at the marked point */
    double spread_lo[RN_SUGGESTIONS], spread_hi[RN_SUGGESTIONS]; /* over the single sweeps */
    double seconds;
    int64_t points;             /* the first sweep's: how many points, */
    char stopped[32];           /* and why it ended */
} rn_lr_find_result;

/* fastai's suggestion functions on a smoothed curve (lr, loss of n points), after fastai's trim
 * of the curve: the first steps / 10 points and the last 5 are left out, and so is everything
 * from the first NaN on. Each returns the lr (NaN when fewer than 2 points remain) and the point
 * to mark (*at_lr, *at_loss):
 *   valley:  the longest strictly falling run of losses (the longest decreasing subsequence), the
 *            lr a half of the way into it (fastai's valley, the default suggestion since 2.5);
 *   steep:   the lr where d loss / d log(lr) is most negative;
 *   minimum: a tenth of the lr at the lowest loss. */
double rn_lr_suggest(int which, const double *lr, const double *loss, int64_t n, int64_t steps,
                     double *at_lr, double *at_loss);

/* Runs the stage: sweeps, restores, writes <stage name>.csv and .svg into the run directory
 * (when it is not NULL), prints the suggestions, and keeps the result in r->lr_find. */
int rn_lr_find_run(rn_run *r, int stage, const char *run_dir, volatile sig_atomic_t *stop,
                   char *err, size_t errlen);
/* Writes <name>.csv (every point of every sweep) and <name>.svg (loss against lr, log x axis,
 * the band over the sweeps, the suggestions marked); name is the stage's, "lr_find" unless the
 * recipe names it. */
int rn_lr_find_write(const rn_lr_find_result *res, const char *dir, const char *name, char *err,
                     size_t errlen);
void rn_lr_find_free(rn_lr_find_result *res);

#endif
