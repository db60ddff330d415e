/* Checkpoints: everything a run needs to continue, in one safetensors file written atomically.
 * Tensors: every model parameter and buffer under its PyTorch name, and every optimizer state
 * as "optimizer.<group>.<parameter>" ([state_floats * numel] floats). Metadata (strings):
 * "format" = "runner-checkpoint-1", "global_step", "epochs_done", "group_steps" (JSON object,
 * group name -> steps taken), "layers" (JSON array, per layer depth first: [forward calls in
 * train mode, batch norm's num_batches_tracked or -1]), "metric_history" (JSON: names and the
 * stage's per-epoch rows, null for NaN). Schedulers are pure functions of the step and this
 * history, so they need nothing more. */
#ifndef RN_CHECKPOINT_H
#define RN_CHECKPOINT_H

#include "train.h"

int rn_checkpoint_write(const char *path, const rn_run *r, char *err, size_t errlen);
/* Restores into a run prepared from the same recipe: every tensor must be there with its shape,
 * and the groups must be the same; errors name what differs. */
int rn_checkpoint_read(const char *path, rn_run *r, char *err, size_t errlen);

#endif
