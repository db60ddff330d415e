/* Converting a Lua value to a recipe tree (used by the sandbox; any lua_State works). */
#ifndef RN_LUA_VALUE_H
#define RN_LUA_VALUE_H

#include <lua.h>

#include "value.h"

/* Registry fields a state may hold so that functions can be written back as Lua source (the
 * sandbox sets both while a recipe loads):
 *   RN_LUA_SOURCES: chunk name ("@recipe.lua") -> the chunk's text as loaded;
 *   RN_LUA_GLOBALS: the globals table, to name library functions ("math.floor"). */
#define RN_LUA_SOURCES "rn.lua.sources"
#define RN_LUA_GLOBALS "rn.sandbox.globals"

/* Converts the value at idx to a tree rooted at path `root_path` ("" for a recipe). Integers become
 * RN_V_INT, floats RN_V_NUMBER, tables with keys 1..n items, string keys sorted fields; functions
 * RN_V_FUNCTION holding a LUA_REGISTRYINDEX reference in L (unless keep_functions is 0: then they
 * are an error). Other keys (floats, tables, 0, gaps in 1..n), other value types and cycles are
 * errors naming the path ("data.augment: unsupported key 1.5 ..."). Raw access only, so no
 * metamethod runs. Returns NULL on error; never raises (Lua memory errors are caught).
 *
 * A function node also gets its source (value.h: s, or why it has none): a global's name
 * ("math.floor"); or its text cut from its chunk in RN_LUA_SOURCES, wrapped with its upvalues'
 * current values as locals when it has any:
 *   (function()
 *     local limit = 0.9
 *     return function(ctx) ... limit ... end
 *   end)()
 * _ENV is not captured (the chunk that reads the text back gives its own); an upvalue that is
 * the function itself (a recursive local function) is declared before the assignment. An
 * upvalue that cannot be written (a cycle back into an open table or function, another
 * function without source) leaves the node without source. Nothing of the recipe runs. */
rn_value *rn_lua_to_value(lua_State *L, int idx, const char *root_path, int keep_functions,
                          char *err, size_t errlen);

#endif
