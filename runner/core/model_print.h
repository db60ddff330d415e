/* `runner --dry-run`: the model as a table (layers, output shapes, parameters, FLOPs) and the
 * sizes of the parameter groups a recipe names by pattern (param_groups.h). */
#ifndef RN_MODEL_PRINT_H
#define RN_MODEL_PRINT_H

#include <stdio.h>
#include "model.h"
#include "value.h"

/* Writes the model table and, when groups is not NULL, one line per group (and the rest). With
 * cpu (the run trains on the CPU), a layer's type says how it computes when that is not the usual
 * way: "conv2d (winograd)" (rn_layer_ops.kernel). */
void rn_model_print(FILE *f, const rn_model *m, const char *name, const rn_value *groups,
                    bool cpu);

#endif
