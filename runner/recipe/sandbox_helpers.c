/* Helpers every recipe sees as globals, written in Lua and run inside the sandbox. */
#include "sandbox_internal.h"

#include <lauxlib.h>

static const char helpers[] =
    "local function describe(v)\n"
    "  if type(v) == 'string' then return ('string %q'):format(v) end\n"
    "  if type(v) == 'number' or type(v) == 'boolean' then\n"
    "    return type(v) .. ' ' .. tostring(v)\n"
    "  end\n"
    "  return type(v)\n"
    "end\n"
    "\n"
    /* slice(lo, hi): learning rates spread over the parameter groups, lowest first. */
    "local function slice(lo, hi)\n"
    "  if type(lo) ~= 'number' then\n"
    "    error('slice: lo: expected a number, got ' .. describe(lo), 2)\n"
    "  end\n"
    "  if type(hi) ~= 'number' then\n"
    "    error('slice: hi: expected a number, got ' .. describe(hi), 2)\n"
    "  end\n"
    "  if lo > hi then\n"
    "    error(('slice: lo (%s) must not exceed hi (%s)'):format(lo, hi), 2)\n"
    "  end\n"
    "  return { 'slice', lo, hi }\n"
    "end\n"
    "\n"
    "local function copy(v, open)\n"
    "  if type(v) ~= 'table' then return v end\n"
    "  if open[v] then error('extend: the tables contain a cycle', 3) end\n"
    "  open[v] = true\n"
    "  local c = {}\n"
    "  for k, x in next, v do c[k] = copy(x, open) end\n"
    "  open[v] = nil\n"
    "  return c\n"
    "end\n"
    "\n"
    /* A table with an array part (a list, or a plugin spec naming its id) replaces; a table
     * of named fields only merges into the base's table. */
    "local function merge(into, over, open)\n"
    "  for k, v in next, over do\n"
    "    local b = rawget(into, k)\n"
    "    if type(v) == 'table' and type(b) == 'table' and rawlen(v) == 0 then\n"
    "      merge(b, v, open)\n"
    "    else\n"
    "      rawset(into, k, copy(v, open))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function extend(base, overrides)\n"
    "  if type(base) ~= 'table' then\n"
    "    error('extend: base: expected a table, got ' .. describe(base), 2)\n"
    "  end\n"
    "  if overrides ~= nil and type(overrides) ~= 'table' then\n"
    "    error('extend: overrides: expected a table, got ' .. describe(overrides), 2)\n"
    "  end\n"
    "  local result = copy(base, {})\n"
    "  if overrides then merge(result, overrides, {}) end\n"
    "  return result\n"
    "end\n"
    "\n"
    "return { slice = slice, extend = extend }\n";

void rn_sandbox_push_helpers(lua_State *L)
{
    if (luaL_loadbufferx(L, helpers, sizeof helpers - 1, "=runner", "t") != LUA_OK)
        lua_error(L);
    rn_sandbox_push_env(L);
    lua_setupvalue(L, -2, 1);
    lua_call(L, 0, 1);
}
