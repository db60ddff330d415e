/* One optimizer instance per parameter group, so a group's own settings (lr, weight decay,
 * betas, ...) are validated by the optimizer's schema like any other setting. */
#ifndef RN_OPT_GROUPS_H
#define RN_OPT_GROUPS_H

#include "model.h"
#include "plugin_host.h"

typedef struct rn_opt_group {
    char *name;                     /* "default", or the recipe's group name */
    rn_instance opt;                /* the optimizer with this group's settings */
    rn_group g;                     /* the tensors that train in this stage (g.params: `active`,
                                       g.n_params 0 when the group is frozen), and this step's lr,
                                       momentum, weight decay */
    rn_param *params;               /* all n_all tensors, state allocated as the optimizer asks */
    size_t n_all;
    int *model_index;               /* params[k] is model parameter model_index[k] */
    rn_param *active;               /* the trainable subset of params (g.params) */
    int *active_index;              /* active[k] is model parameter active_index[k] */
    double base_lr, base_momentum;  /* from the settings "lr" and "momentum" (or "beta1") */
} rn_opt_group;

typedef struct rn_opt_groups {
    rn_opt_group *v;
    int n;
} rn_opt_groups;

/* Makes the groups of `groups` (param_groups.h) plus "default" for the trainable parameters in
 * none (left out when empty). A group's optimizer spec is `optimizer` with the group's named
 * settings on top; errors name their key path (groups.head.lr). With decay_bias_and_norm = 0, a
 * group with weight decay is split: its biases and 1-d (norm) parameters go to "<name>.no_decay"
 * with weight_decay 0 (timm's filter_bias_and_bn, fastai's wd_bn_bias = False). */
int rn_opt_groups_create(rn_opt_groups *og, const rn_value *optimizer, const rn_value *groups,
                         int decay_bias_and_norm, const rn_model *m, const rn_registry *reg,
                         const rn_run_view *view, char *err, size_t errlen);
void rn_opt_groups_free(rn_opt_groups *og);

/* Which model parameters train from now on (m->n_params flags; NULL = all): each group steps
 * over its trainable tensors only, and a group with none is skipped (its step count and state
 * stay as they are, so it picks up where it left off when it trains again). */
void rn_opt_groups_set_trainable(rn_opt_groups *og, const bool *trainable);

/* One optimizer step for every group that trains (then its step count advances). */
int rn_opt_groups_step(rn_opt_groups *og, char *err, size_t errlen);

#endif
