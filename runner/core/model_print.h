/* `runner --dry-run`: the model as a table (layers, output shapes, parameters, FLOPs) and the
 * parameter groups a recipe names by pattern. */
#ifndef RN_MODEL_PRINT_H
#define RN_MODEL_PRINT_H

#include <stdio.h>
#include "model.h"
#include "value.h"

/* Glob match of a parameter name: '*' any run of characters (dots included), '?' one. */
int rn_pattern_match(const char *pattern, const char *name);

/* Checks a recipe's `groups` table ({ name = "pattern" | { "pattern", ... }, ... }) against the
 * model: a pattern matching no parameter is an error listing the model's top-level modules. */
int rn_groups_check(const rn_value *groups, const rn_model *m, char *err, size_t errlen);

/* Writes the model table and, when groups is not NULL, one line per group (and the rest). */
void rn_model_print(FILE *f, const rn_model *m, const char *name, const rn_value *groups);

#endif
