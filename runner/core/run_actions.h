/* The rn_run_ops a run gives its callbacks (rn_host ABI 1.1): state copies, checkpoints, lr
 * scaling, the groups' lrs. `run` is the rn_run. */
#ifndef RN_RUN_ACTIONS_H
#define RN_RUN_ACTIONS_H

#include "train.h"

const rn_run_ops *rn_run_actions(void);

#endif
