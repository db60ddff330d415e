/* The host's side of a plugin instance: its validated settings, its run, its error line.
 * Shared by the host table (host_table.c) and instance creation (plugin_instance.c). */
#ifndef RN_PLUGIN_CTX_H
#define RN_PLUGIN_CTX_H

#include "plugin_host.h"

#define RN_ERRLEN 512

/* One setting's resolved value. */
typedef struct rn_setting_value {
    double number; /* NUMBER, INT, BOOL */
    char *string;  /* STRING (owned) */
    int given;     /* set by the recipe (not the schema's default) */
    double numbers[RN_MAX_SETTING_NUMBERS]; /* NUMBERS: numbers[0..n_numbers) */
    size_t n_numbers; /* NUMBERS: 1..RN_MAX_SETTING_NUMBERS; 0 while a required one is unset */
} rn_setting_value;

struct rn_ctx {
    const rn_plugin *plugin;
    rn_setting_value *values; /* parallel to plugin->settings */
    const rn_run_view *run;
    uint64_t seed;
    char error[RN_ERRLEN];
    void *state_copy; /* host->save_state's copy (run->ops->save_state); NULL until the first
                         save; freed with run->ops->free_state when the instance is destroyed */
};

/* The schema entry for key, and its index; NULL when the plugin does not declare it. */
const rn_setting *rn_find_setting(const rn_plugin *p, const char *key, size_t *index);

/* A NUMBERS default as text ("0.5, 0.5": numbers separated by commas, spaces around them
 * allowed) into out[0..cap): how many, or 0 when the text is not such a list or holds more than
 * cap numbers or a non-finite one. */
size_t rn_parse_numbers(const char *text, double *out, size_t cap);

#endif
