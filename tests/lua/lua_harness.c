/* Runs a LuaUnit file in a plain Lua state (LuaUnit needs io and os) with a `sandbox` module that
 * loads recipes through the real sandbox:
 *   sandbox.run(path [, {memory = bytes, instructions = n}]) -> tree | nil, err
 *   sandbox.set(path, "a.b=3", ...)   -> the tree after the overrides | nil, err
 *   sandbox.write_lua(path)           -> the Lua source rn_value_write_lua writes | nil, err
 *   sandbox.lib_dir, sandbox.fixtures -> the recipe library dir, tests/lua/fixtures
 * Trees come back as Lua tables (integers stay integers); functions become the string
 * "<function>".
 * usage: lua_harness LIB_DIR TEST_FILE.lua [luaunit options...]  (exit 0 iff all tests pass) */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"

/* C resources live in a userdata with __gc, so a Lua error while building the result frees them. */
typedef struct job {
    rn_sandbox *sb;
    rn_value *v;
    char *text;
} job;

static int job_gc(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    rn_value_free(j->v);
    rn_sandbox_free(j->sb);
    free(j->text);
    j->v = NULL;
    j->sb = NULL;
    j->text = NULL;
    return 0;
}

static job *new_job(lua_State *L)
{
    job *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    if (luaL_newmetatable(L, "rn.harness.job")) {
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return j;
}

static void push_tree(lua_State *L, const rn_value *v)
{
    luaL_checkstack(L, 4, "tree too deep");
    switch (v->type) {
    case RN_V_NIL: lua_pushnil(L); break;
    case RN_V_BOOL: lua_pushboolean(L, v->b); break;
    case RN_V_INT: lua_pushinteger(L, (lua_Integer)v->i); break;
    case RN_V_NUMBER: lua_pushnumber(L, v->n); break;
    case RN_V_STRING: lua_pushstring(L, v->s); break;
    case RN_V_FUNCTION: lua_pushliteral(L, "<function>"); break;
    case RN_V_TABLE:
        lua_createtable(L, (int)v->n_items, (int)v->n_fields);
        for (size_t i = 0; i < v->n_items; i++) {
            push_tree(L, v->items[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        for (size_t i = 0; i < v->n_fields; i++) {
            push_tree(L, v->fields[i]);
            lua_setfield(L, -2, v->keys[i]);
        }
        break;
    }
}

/* Loads the recipe at 1 (limits table at 2 when limits_arg) into j; 0, or -1 with nil, err pushed. */
static int load(lua_State *L, job *j, int limits_arg)
{
    char err[1024];
    rn_sandbox_limits limits = {0, 0};
    const char *path = luaL_checkstring(L, 1);
    if (limits_arg && lua_istable(L, 2)) {
        lua_getfield(L, 2, "memory");
        limits.memory_bytes = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 2, "instructions");
        limits.instructions = (long long)luaL_optinteger(L, -1, 0);
        lua_pop(L, 2);
    }
    lua_getfield(L, lua_upvalueindex(1), "lib_dir");
    const char *lib_dir = lua_tostring(L, -1);
    lua_pop(L, 1);
    j->sb = rn_sandbox_new(lib_dir, &limits, err, sizeof err);
    if (j->sb)
        j->v = rn_sandbox_run_file(j->sb, path, err, sizeof err);
    if (j->v == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return -1;
    }
    return 0;
}

static int l_run(lua_State *L)
{
    lua_settop(L, 2);
    job *j = new_job(L);
    if (load(L, j, 1) != 0)
        return 2;
    push_tree(L, j->v);
    return 1;
}

static int l_set(lua_State *L)
{
    int n = lua_gettop(L);
    job *j = new_job(L);
    if (load(L, j, 0) != 0)
        return 2;
    for (int i = 2; i <= n; i++) {
        char err[1024];
        if (rn_value_set(j->v, luaL_checkstring(L, i), err, sizeof err) != 0) {
            lua_pushnil(L);
            lua_pushstring(L, err);
            return 2;
        }
    }
    push_tree(L, j->v);
    return 1;
}

static int l_write_lua(lua_State *L)
{
    lua_settop(L, 1);
    job *j = new_job(L);
    if (load(L, j, 0) != 0)
        return 2;
    size_t len = 0;
    FILE *f = open_memstream(&j->text, &len);
    if (f == NULL)
        return luaL_error(L, "open_memstream failed");
    int rc = rn_value_write_lua(j->v, f);
    fclose(f);
    if (rc != 0)
        return luaL_error(L, "rn_value_write_lua failed");
    lua_pushlstring(L, j->text, len);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIB_DIR TEST_FILE.lua [luaunit options...]\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return 2;
    luaL_openlibs(L);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "/usr/share/lua/5.4/?.lua;%s", lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);

    /* package.loaded.sandbox, so tests say `local sandbox = require "sandbox"`. */
    lua_newtable(L);
    lua_pushstring(L, argv[1]);
    lua_setfield(L, -2, "lib_dir");
    const char *test = argv[2];
    const char *slash = strrchr(test, '/');
    char fixtures[4096];
    snprintf(fixtures, sizeof fixtures, "%.*s/fixtures", slash ? (int)(slash - test) : 1,
             slash ? test : ".");
    lua_pushstring(L, fixtures);
    lua_setfield(L, -2, "fixtures");
    static const luaL_Reg fns[] = {
        {"run", l_run}, {"set", l_set}, {"write_lua", l_write_lua}, {NULL, NULL}};
    lua_pushvalue(L, -1);
    luaL_setfuncs(L, fns, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "sandbox");
    lua_pop(L, 2);

    /* arg as the standalone interpreter sets it, for LuaUnit's command line. */
    lua_createtable(L, argc, 1);
    for (int i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 2);
    }
    lua_setglobal(L, "arg");

    int status = luaL_dofile(L, test);
    if (status != LUA_OK)
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    /* The test file normally ends in os.exit(); reaching here means it did not. */
    return status == LUA_OK ? 0 : 1;
}
