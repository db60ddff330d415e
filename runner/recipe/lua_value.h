/* Converting a Lua value to a recipe tree (used by the sandbox; any lua_State works). */
#ifndef RN_LUA_VALUE_H
#define RN_LUA_VALUE_H

#include <lua.h>

#include "value.h"

/* Converts the value at idx to a tree rooted at path `root_path` ("" for a recipe). Integers become
 * RN_V_INT, floats RN_V_NUMBER, tables with keys 1..n items, string keys sorted fields; functions
 * RN_V_FUNCTION holding a LUA_REGISTRYINDEX reference in L (unless keep_functions is 0: then they
 * are an error). Other keys (floats, tables, 0, gaps in 1..n), other value types and cycles are
 * errors naming the path ("data.augment: unsupported key 1.5 ..."). Raw access only, so no
 * metamethod runs. Returns NULL on error; never raises (Lua memory errors are caught). */
rn_value *rn_lua_to_value(lua_State *L, int idx, const char *root_path, int keep_functions,
                          char *err, size_t errlen);

#endif
