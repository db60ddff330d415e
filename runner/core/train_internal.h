/* What the stage loops share (train.c: training stages; lr_find.c: the LR finder). */
#ifndef RN_TRAIN_INTERNAL_H
#define RN_TRAIN_INTERNAL_H

#include "clock.h"
#include "train.h"

typedef enum rn_event_kind {
    RN_EV_RUN_BEGIN, RN_EV_STAGE_BEGIN, RN_EV_STEP_END, RN_EV_EPOCH_END, RN_EV_EVAL_END,
    RN_EV_STAGE_END, RN_EV_RUN_END, RN_EV_NONFINITE,
} rn_event_kind;

/* Calls one hook on every callback; returns the strongest stop request, or -1 on error. For
 * RN_EV_NONFINITE it returns -2 when no callback has the hook. */
int rn_run_fire(rn_run *r, rn_event_kind kind, const rn_event *e, char *err, size_t errlen);


/* The recipe's loss on logits: class indices, or soft targets (CutMix/Mixup) when soft is not
 * NULL; dlogits and correct as rn_cross_entropy2's. */
double rn_run_loss(const rn_run *r, const rn_tensor *logits, const int32_t *labels,
                   const float *soft, rn_tensor *dlogits, int64_t *correct);

/* The loader over ds as the training loop, an LR sweep (both shuffled and augmented, each with
 * its own augment instances) or evaluation (in order, through RN_AUGMENT_EVAL plugins only)
 * uses it. */
void rn_run_loader_config(rn_loader_config *c, rn_run *r, const rn_dataset *ds,
                          rn_loader_role role);

/* What rn_run_step did. */
enum { RN_STEP_EPOCH_END = 0, RN_STEP_DONE = 1, RN_STEP_NONFINITE = 2 };

/* One optimizer step: up to `accumulate` micro-batches from ld (fewer at the end of an epoch),
 * forward, loss, backward, then the gradient norm, clipping and the update of every group that
 * trains, at the lr and momentum the groups hold (set them first). Returns RN_STEP_DONE with the
 * step's mean loss and sample count; RN_STEP_EPOCH_END when the epoch had no batch left (nothing
 * done); RN_STEP_NONFINITE when the loss or the gradient norm is not finite: no update was made,
 * the rest of the step's micro-batches were consumed, and err says what (step and lr); -1 on
 * error. *epoch_end is set when the loader's end of epoch was reached during the call (a short
 * last step of an epoch, or RN_STEP_EPOCH_END): the next call starts the next epoch. */
int rn_run_step(rn_run *r, rn_loader *ld, double *loss, int64_t *samples, int *epoch_end,
                char *err, size_t errlen);

/* Makes the model, gradients and optimizer groups train what stage s trains. */
int rn_run_enter_stage(rn_run *r, int stage, char *err, size_t errlen);

#endif
