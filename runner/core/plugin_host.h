/* Finding plugin libraries, checking their ABI, and making instances with validated settings. */
#ifndef RN_PLUGIN_HOST_H
#define RN_PLUGIN_HOST_H

#include <stddef.h>

#include <runner/plugin.h>
#include "value.h"
#include "metrics.h"

/* What the host lets callbacks do to the run (rn_host ABI 1.1); `run` is passed back. Every
 * function runs on the training thread between steps. */
typedef struct rn_run_ops {
    /* A copy of the trainable state (parameters, buffers, optimizer states, group step counts)
     * into *copy (reusing *copy when it is not NULL); free with free_state. */
    int (*save_state)(void *run, void **copy, char *err, size_t errlen);
    int (*restore_state)(void *run, const void *copy, char *err, size_t errlen);
    void (*free_state)(void *copy);
    /* A checkpoint at run_dir/name, written atomically. */
    int (*write_checkpoint)(void *run, const char *name, char *err, size_t errlen);
    /* Multiplies every group's lr from the next step on (compounding). */
    void (*scale_lr)(void *run, double factor);
    size_t (*group_count)(void *run);
    int (*group_at)(void *run, size_t i, const char **name, double *lr, double *momentum);
} rn_run_ops;

/* What instances may see of the run. Owned by the caller; must outlive the instances. */
typedef struct rn_run_view {
    const char *run_dir;     /* existing directory */
    uint64_t seed;           /* the run seed */
    rn_metrics *metrics;     /* latest values */
    int is_tty;              /* stdout is a terminal */
    const rn_run_ops *ops;   /* NULL: callbacks' run actions report an error */
    void *run;               /* passed to ops */
    int resumed;             /* the run continues a checkpoint taken at global step */
    int64_t resumed_step;    /* resumed_step (rn_host.resumed_at) */
    /* The device the run trains on, RN_DEVICE_CPU or RN_DEVICE_CUDA (0 counts as the CPU):
     * rn_instance_create refuses a plugin whose `devices` lacks it. */
    unsigned device;
} rn_run_view;

typedef struct rn_registry rn_registry;

/* Scans the directories in order (missing ones are skipped) for *.so files, dlopens each, checks
 * the entry symbol, ABI major, struct sizes and build signature, and records every plugin. Any
 * broken library or duplicate id is an error naming the file:
 *   "plugins/foo.so: no rn_plugin_entry symbol (not a runner plugin?)"
 *   "plugins/foo.so: plugin ABI major 2, this runner speaks 1"
 *   "plugins/b.so: duplicate plugin id \"sgd\" (already in plugins/a.so)" */
int rn_registry_scan(rn_registry **out, const char *const *dirs, size_t n_dirs, char *err,
                     size_t errlen);
void rn_registry_free(rn_registry *r);
size_t rn_registry_count(const rn_registry *r);
/* i-th plugin in (kind, id) order; *path (optional) receives the library file. */
const rn_plugin *rn_registry_at(const rn_registry *r, size_t i, const char **path);
/* Finds a plugin of `kind` by id; on failure writes
 *   "<where>: unknown optimizer \"sgdd\" (available: sgd)" and returns NULL. */
const rn_plugin *rn_registry_find(const rn_registry *r, rn_plugin_kind kind, const char *id,
                                  const char *where, const char **path, char *err, size_t errlen);
const char *rn_kind_name(rn_plugin_kind kind);

/* A created plugin. */
typedef struct rn_instance {
    const rn_plugin *plugin;
    const char *path;        /* library file */
    void *self;
    rn_ctx *ctx;
} rn_instance;

/* Makes an instance from a recipe node: a table whose first item is the id (a bare string is
 * accepted as {id}) and whose named fields are settings. The settings are validated against the
 * plugin's schema (unknown key, type, range, choices, required: each names spec->path.key)
 * before create() is called. `slot` distinguishes instances of one kind for their seeds. */
int rn_instance_create(rn_instance *inst, const rn_registry *reg, rn_plugin_kind kind,
                       const rn_value *spec, const rn_run_view *run, uint64_t slot,
                       char *err, size_t errlen);
/* Makes an instance of the built-in "lua" callback from a callbacks item that is a table of Lua
 * hooks (rn_lua_callback_is_spec), calling into sb, the sandbox that evaluated the recipe (it
 * must outlive the instance). */
struct rn_sandbox;
int rn_instance_create_lua(rn_instance *inst, struct rn_sandbox *sb, const rn_value *spec,
                           const rn_run_view *run, uint64_t slot, const char *recipe_path,
                           char *err, size_t errlen);
void rn_instance_destroy(rn_instance *inst);
/* The instance's last error line (set by the plugin through host->set_error). */
const char *rn_instance_error(const rn_instance *inst);
/* A validated setting's value as a number (NUMBER, INT, BOOL); returns 0 when not declared. */
int rn_instance_number(const rn_instance *inst, const char *key, double *out);
/* A validated STRING setting's value; NULL when the plugin declares no such string setting. */
const char *rn_instance_string(const rn_instance *inst, const char *key);

/* The instance's seed (the run seed mixed with its kind and slot). */
uint64_t rn_instance_seed(const rn_instance *inst);

/* A callback hook that may lie past the library's struct_size (an ABI 1.0 callback lacks the 1.1
 * hooks on_nonfinite and state_size/state_save/state_load): the hook when the library's api
 * covers the field and sets it, else NULL. For the training loop:
 *     int (*h)(void *, const rn_event *) = rn_callback_hook(api, on_nonfinite);
 * rn_callback_hook_present(api, field) is the same test as a boolean. */
#define rn_callback_hook_covered(api, field) \
    ((api)->struct_size >= offsetof(rn_callback_api, field) + sizeof((api)->field))
#define rn_callback_hook(api, field) (rn_callback_hook_covered(api, field) ? (api)->field : NULL)
#define rn_callback_hook_present(api, field) (rn_callback_hook(api, field) != NULL)

/* An optimizer's device_update (ABI 1.2) when its api covers and sets it, else NULL. */
#define rn_optimizer_device_update(api)                                                        \
    ((api)->struct_size >= offsetof(rn_optimizer_api, device_update) +                        \
                               sizeof((api)->device_update)                                    \
         ? (api)->device_update                                                                \
         : NULL)

/* The host table given to plugins. */
const rn_host *rn_host_table(void);

#endif
