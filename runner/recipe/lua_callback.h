/* Callbacks written in Lua inside the recipe:
 *
 *     callbacks = { {"progress"},
 *                   { on_epoch_end = function(ctx)
 *                       if ctx.metrics["test.acc"] > 0.9 then return "stop_run" end
 *                     end } }
 *
 * An item of a callbacks list that is a table of hooks (no array items; named fields on_*) is a
 * Lua callback: an instance of the built-in callback plugin "lua" (not a .so) whose hooks call
 * the recipe's functions in the sandbox that loaded the recipe. docs/recipes.md ("Callbacks in
 * Lua") documents what a hook sees; in short, each call gets a fresh table `ctx`:
 *
 *   hook         the hook's name ("on_epoch_end")
 *   stage        stage name; stage_index (0-based), stage_count
 *   step, total_steps, epoch (0-based), epochs, steps_per_epoch, global_step   (integers)
 *   loss, lr, images_per_s, elapsed_s                                        (numbers)
 *                all copied from the rn_event of the call
 *   metrics      { ["test.acc"] = 0.91, ... }: the run's latest metrics (NaN = not measured yet);
 *                reading a name that is not there is an error listing those that are
 *   history(name)  the metric at the end of each finished epoch of this stage, oldest first
 *   log(msg [, "debug"|"info"|"warn"])   one line through host->log
 *   stop("stage"|"run")                  ask to end the stage or the run after this hook
 *
 * A hook returns nil (or false) to carry on, "stop_stage" or "stop_run"; anything else is an
 * error. The stronger of the return value and ctx.stop wins. `ctx` is a copy: writing to it
 * changes nothing; reading a field it does not have is an error naming the fields it has.
 *
 * Errors (a Lua error in the hook, a bad return value, the per-call instruction budget, the
 * sandbox memory cap) become one line through host->set_error and a negative return:
 *   "callbacks[2].on_epoch_end: recipe.lua:14: attempt to compare nil with number"
 *
 * Threads: everything here runs on the training thread (the only one that may touch the
 * sandbox's Lua state). Lifetime: the sandbox must outlive every instance.
 */
#ifndef RN_LUA_CALLBACK_H
#define RN_LUA_CALLBACK_H

#include <stddef.h>

#include <runner/plugin.h>

#include "sandbox.h"
#include "value.h"

#define RN_LUA_CALLBACK_ID "lua"

/* The hook names a Lua callback table may hold, in rn_callback_api order; NULL-terminated. */
extern const char *const rn_lua_callback_hooks[];

/* The descriptor of the built-in plugin: kind RN_KIND_CALLBACK, id "lua", no settings, api the
 * rn_callback_api below, destroy = rn_lua_callback_destroy. Its create() refuses with an error
 * (an instance needs the recipe table and the sandbox: use rn_lua_callback_create). Static. */
const rn_plugin *rn_lua_callback_plugin(void);

/* 1 when a callbacks item is for rn_lua_callback_create rather than a plugin spec: a function,
 * or a table without array items that has a function field or a field named on_*. */
int rn_lua_callback_is_spec(const rn_value *spec);

/* Makes an instance from the callbacks item `spec` (its path names errors). Every field must be
 * one of rn_lua_callback_hooks holding a function of this sandbox's tree:
 *   "callbacks[2].on_epok_end: unknown hook (expected one of on_run_begin, ...)"
 *   "callbacks[2].on_epoch_end: expected a function, got number 5"
 * host and ctx are what hooks use (set_error, log, metric_count, metric_at, metric_history);
 * both must outlive the instance; ctx is the instance's own (its error line). The instance keeps
 * its own registry references, so the tree may be freed after this. Returns 0 with *self set, or
 * -1 with err set and *self untouched. */
int rn_lua_callback_create(rn_sandbox *sb, const rn_value *spec, const rn_host *host,
                           rn_ctx *ctx, void **self, char *err, size_t errlen);
void rn_lua_callback_destroy(void *self);

/* The callback table of the instances (also rn_lua_callback_plugin()->api). Hooks the table
 * does not define return RN_CONTINUE without entering Lua. The ABI 1.1 fields are NULL: a Lua
 * callback does not handle non-finite losses and has no checkpointed state (values its functions
 * keep in upvalues start afresh on --resume). */
extern const rn_callback_api rn_lua_callback_api;

/* Functions are allowed only in callbacks lists (the recipe's and a stage's: callbacks[i] and
 * callbacks[i].<key>, which rn_lua_callback_create checks further). The first function anywhere
 * else is an error naming its key path:
 *   "optimizer.lr: expected a value, got a Lua function (functions are only allowed as callback
 *    hooks: callbacks = { { on_epoch_end = function(ctx) ... end } })"
 * Returns 0 or -1. */
int rn_lua_callback_check_tree(const rn_value *root, char *err, size_t errlen);

#endif
