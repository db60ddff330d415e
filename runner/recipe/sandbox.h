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
 * instruction budget of N exceeded (endless loop?)").
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

#endif
