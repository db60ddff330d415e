/* C helpers for the emulated-kernel tests (C++), which cannot include the plugin test helpers or
 * the plugin headers (C only): run a built augmentation plugin on a batch through the real
 * loader (RN_PLUGIN_DIR), and mix_plan's per-sample parameters for a batch. */
#ifndef RN_EMU_PLUGINS_H
#define RN_EMU_PLUGINS_H

#include <stddef.h>

#include <runner/plugin.h>

#include "../../kernels/augment_elem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One setting of a plugin node: type 'n' number, 'i' integer, 'b' bool (num != 0), 's' string. */
typedef struct emu_setting {
    const char *key;
    char type;
    double num;
    const char *str;
} emu_setting;

/* The registry over RN_PLUGIN_DIR; exits the test when it cannot be scanned. */
void *emu_registry_open(void);
void emu_registry_close(void *reg);

/* Makes an augment instance of plugin `id` with the settings, applies it to b, destroys it.
 * Returns apply's result (RN_OK), or exits the test when the instance cannot be made. */
int emu_augment_apply(void *reg, const char *id, const emu_setting *settings, int n_settings,
                      rn_batch *b);

/* The same, through the plugin's device_plan (plugin ABI 1.2) into op (its arrays sized for
 * b->n, b->x may be NULL). Returns device_plan's result; exits when the instance cannot be made
 * or the plugin has no device_plan. */
int emu_augment_device_plan(void *reg, const char *id, const emu_setting *settings,
                            int n_settings, const rn_batch *b, rn_augment_op *op);

/* What mix_plan (plugins/augment/mix_common.h) plans for b under the configuration: fills
 * plan[0..b->n) (a KEEP entry per sample when the batch is left alone) and returns 0, or -1. */
int emu_mix_plan(double prob, double switch_prob, double cutmix_alpha, double mixup_alpha,
                 int correct_lam, int elem, const rn_batch *b, rn_mix_sample *plan);

#ifdef __cplusplus
}
#endif
#endif
