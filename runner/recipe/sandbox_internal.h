/* Shared between the sandbox's files; not part of the public API. */
#ifndef RN_SANDBOX_INTERNAL_H
#define RN_SANDBOX_INTERNAL_H

#include <lua.h>

#include "lua_value.h"
#include "sandbox.h"

/* Registry fields (and RN_LUA_SOURCES, the text of every chunk loaded, see lua_value.h). */
#define RN_SB_GLOBALS RN_LUA_GLOBALS         /* the safe functions every chunk sees */
#define RN_SB_ENV_META "rn.sandbox.env_meta" /* metatable of a chunk's environment */
#define RN_SB_IMPORTS "rn.sandbox.imports"   /* resolved path -> module value (false: loading) */

struct rn_sandbox {
    lua_State *L;
    char *lib_dir;
    size_t mem_cap;      /* bytes; the allocator refuses growth beyond it while capped */
    size_t mem_used;
    int capped;          /* off while the host itself allocates (conversion) */
    int mem_refused;     /* the allocator refused at least once in this run */
    long long budget;    /* instructions allowed now: run_budget or call_budget */
    long long run_budget;  /* per recipe run (rn_sandbox_run_file) */
    long long call_budget; /* per rn_sandbox_call */
    long long executed;  /* running total, in steps of the hook interval */
};

/* The sandbox owning L (kept in the state's extra space). */
static inline rn_sandbox *rn_sandbox_of(lua_State *L)
{
    return *(rn_sandbox **)lua_getextraspace(L);
}

/* Does the first line of msg carry a "file:12:" position? */
int rn_sandbox_has_position(const char *msg);
/* Pushes a fresh environment for a chunk: an empty table that reads the sandbox globals and
 * refuses writes. */
void rn_sandbox_push_env(lua_State *L);
/* Loads path as a text chunk with a fresh environment; pushes the function. On failure raises an
 * error prefixed with `who` ("" or "import \"x\": "). */
void rn_sandbox_load_chunk(lua_State *L, const char *path, const char *who);
/* `import "a.b"`, a lua_CFunction. */
int rn_sandbox_import(lua_State *L);
/* Pushes a table with the helpers written in Lua (slice, extend). */
void rn_sandbox_push_helpers(lua_State *L);

#endif
