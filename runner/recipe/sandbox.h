/* Loading a recipe in a Lua 5.4 sandbox.
 *
 * The sandbox exposes only: basic functions that cannot reach the host (assert, error, ipairs,
 * next, pairs, pcall, select, tonumber, tostring, type, xpcall, rawequal, rawlen, rawget, rawset,
 * setmetatable, getmetatable (string metatable hidden)), the math, string (without dump), table and
 * utf8 libraries (copies, so a recipe cannot change the host's), and `import "name"`.
 * Absent: os, io, package, require, load, loadfile, dofile, loadstring, debug, collectgarbage,
 * string.dump. Touching an absent global raises "recipe.lua:12: 'os' is not available in recipes".
 *
 * `import "a.b"` loads "a/b.lua" relative to the importing recipe's directory, then from the
 * built-in library dir (which holds lib/models.lua etc.), as a text chunk in the same sandbox
 * (its own environment table that inherits the sandbox globals), caching the result per name.
 *
 * Limits: a memory cap (allocator refuses beyond it -> "recipe.lua: memory limit of N MiB
 * exceeded") and an instruction budget (a count hook keeps a running total -> "recipe.lua:7:
 * instruction budget of N exceeded (endless loop?)"). The memory cap holds for the state's whole
 * life, recipe and callbacks together; the instruction budget is per recipe run, and each
 * rn_sandbox_call (one Lua callback hook) gets a fresh budget of its own,
 * RN_SANDBOX_CALL_INSTRUCTIONS unless rn_sandbox_set_call_budget says otherwise. The budget counts
 * Lua instructions in steps of 1000; time spent inside one C library call (a string pattern
 * match) is not counted.
 *
 * The state outlives the run: the RN_V_FUNCTION nodes of a tree are registry references into it,
 * so free the sandbox only after everything that calls them (rn_lua_callback instances).
 */
#ifndef RN_SANDBOX_H
#define RN_SANDBOX_H

#include <stddef.h>
#include "value.h"

typedef struct rn_sandbox rn_sandbox;

typedef struct rn_sandbox_limits {
    size_t memory_bytes;        /* default 64 MiB when 0 */
    long long instructions;     /* default 50,000,000 when 0 */
} rn_sandbox_limits;

/* lib_dir: the built-in recipe library directory (contains "lib/"). */
rn_sandbox *rn_sandbox_new(const char *lib_dir, const rn_sandbox_limits *limits,
                           char *err, size_t errlen);
void rn_sandbox_free(rn_sandbox *sb);

/* Runs the recipe file (text only) and converts the table it returns to a tree. Errors: syntax
 * errors with file:line, runtime errors with file:line, "recipe.lua: expected the recipe to
 * return a table, got nil", forbidden globals, budget, memory. Returns NULL on error. */
rn_value *rn_sandbox_run_file(rn_sandbox *sb, const char *path, char *err, size_t errlen);

/* --- additions beyond the first contract ------------------------------------------------------ */

/* The sandbox's Lua state, for calling the RN_V_FUNCTION values of a tree (their fn_ref lives in
 * its registry). Owned by the sandbox; only the training thread may touch it. */
struct lua_State *rn_sandbox_state(rn_sandbox *sb);

/* Instructions one rn_sandbox_call may run (a Lua callback hook): 10 million, about 30 ms of
 * plain Lua here. */
#define RN_SANDBOX_CALL_INSTRUCTIONS 10000000LL

/* Sets the per-call budget (<= 0: RN_SANDBOX_CALL_INSTRUCTIONS). */
void rn_sandbox_set_call_budget(rn_sandbox *sb, long long instructions);

/* Runs fn(L) with ud as its one argument (a light userdata), protected, under the sandbox's
 * memory cap and with a fresh per-call instruction budget; fn's results are dropped. Errors come
 * back as one line in err: a Lua error with the recipe's file:line ("recipe.lua:12: attempt to
 * compare nil with number"; errors raised without a position get that of the innermost recipe
 * function on the stack), "recipe.lua:3: instruction budget of 10000000 exceeded (endless
 * loop?)", "memory limit of 64 MiB exceeded". The recipe's own pcall cannot swallow the last two.
 * Returns 0 or -1. Not reentrant: fn must not call rn_sandbox_call. Training thread only. */
int rn_sandbox_call(rn_sandbox *sb, int (*fn)(struct lua_State *L), void *ud, char *err,
                    size_t errlen);

#endif
