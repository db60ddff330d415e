/* What a stage trains, and where each optimizer group stands for slice(lo, hi). */
#ifndef RN_STAGE_GROUPS_H
#define RN_STAGE_GROUPS_H

#include <stdbool.h>
#include "opt_groups.h"

/* Fills mask (one flag per model parameter) from a stage's `train`: a string or a list of them,
 * each the name of a parameter group (the recipe's, "default", or an optimizer group such as
 * "head.no_decay") or a glob over parameter names. With train_bn, the batch norm parameters of
 * the model train too (fastai's train_bn). An entry matching nothing is an error naming its key
 * path and listing the groups and the model's modules. */
int rn_stage_mask(const rn_value *train, bool train_bn, const rn_opt_groups *og,
                  const rn_model *m, bool *mask, char *err, size_t errlen);

/* rank[g] for every optimizer group: the place of its layer group (a recipe group and its
 * ".no_decay" half are one) in model order, by the group's first parameter; *n the count. */
int rn_lr_ranks(const rn_opt_groups *og, int *rank, int *n);

#endif
