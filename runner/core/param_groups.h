/* Parameter groups: a recipe names groups of parameters by glob patterns over PyTorch names and
 * may give each its own optimizer settings:
 *   groups = { head = { "fc.*", lr = 1e-2 }, no_decay = { "*.bias", "*bn*", weight_decay = 0 } }
 * A group is a pattern, a list of patterns, or such a list with named optimizer settings. Groups
 * are disjoint (as torch.optim's param groups must be); trainable parameters in no group form
 * the group "default", which takes the optimizer's own settings. */
#ifndef RN_PARAM_GROUPS_H
#define RN_PARAM_GROUPS_H

#include "model.h"
#include "value.h"

/* Glob match of a parameter name: '*' any run of characters (dots included), '?' one. */
int rn_pattern_match(const char *pattern, const char *name);

/* Assigns every parameter of m to a group: group_of[i] is the index of its field in `groups`
 * (in the tree's order), or -1 for none. Errors: a malformed group, a pattern matching no
 * parameter (lists the model's top-level modules), a parameter in two groups. groups may be NULL
 * (everything -1). */
int rn_groups_assign(const rn_value *groups, const rn_model *m, int *group_of, char *err,
                     size_t errlen);

/* The model's top-level modules, comma separated ("conv1, bn1, layer1, fc"). */
void rn_top_modules(const rn_model *m, char *buf, size_t len);

/* Checks groups against m (rn_groups_assign without keeping the result). */
int rn_groups_check(const rn_value *groups, const rn_model *m, char *err, size_t errlen);

#endif
