/* Building a model from its recipe table ({kind = "sequential", layers = {...}}). */
#ifndef RN_MODEL_BUILD_H
#define RN_MODEL_BUILD_H

#include "model.h"
#include "value.h"

/* Checks every layer's settings (errors name the key path, e.g. "model.layers[1].kernel_size")
 * and that the shapes chain from in_shape; allocates activations for max_batch. */
int rn_model_build(rn_model *m, const rn_value *spec, rn_shape in_shape, int64_t max_batch,
                   uint64_t seed, char *err, size_t errlen);

#endif
