/* `import "a.b"`: recipe-relative, then library modules, loaded once per run in the sandbox. */
#include "sandbox_internal.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAME 200

/* Letters, digits, '_' and single dots between parts: no "..", no '/', nothing absolute. */
static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_NAME || name[0] == '.' || name[n - 1] == '.' || strstr(name, ".."))
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") == n;
}

/* The directory of the calling chunk, or "" when the caller is not a file (e.g. pcall). */
static void caller_dir(lua_State *L, char *dir, size_t len)
{
    lua_Debug ar;
    dir[0] = '\0';
    if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "S", &ar) || ar.source[0] != '@')
        return;
    const char *file = ar.source + 1;
    const char *slash = strrchr(file, '/');
    if (slash == NULL)
        snprintf(dir, len, ".");
    else if (slash == file)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - file), file);
}

int rn_sandbox_import(lua_State *L)
{
    rn_sandbox *sb = rn_sandbox_of(L);
    const char *name = luaL_checkstring(L, 1);
    if (!valid_name(name))
        return luaL_error(L, "import \"%s\": bad module name (use dotted names like \"lib.models\": "
                          "letters, digits, '_' and '.')", name);
    char rel[MAX_NAME + 8];
    snprintf(rel, sizeof rel, "%s.lua", name);
    for (char *p = rel; p < rel + strlen(name); p++)
        if (*p == '.')
            *p = '/';

    char dir[PATH_MAX], first[PATH_MAX + sizeof rel], second[PATH_MAX + sizeof rel];
    caller_dir(L, dir, sizeof dir);
    first[0] = '\0';
    if (dir[0])
        snprintf(first, sizeof first, "%s/%s", dir, rel);
    snprintf(second, sizeof second, "%s/%s", sb->lib_dir, rel);
    const char *found = NULL;
    if (first[0] && access(first, R_OK) == 0)
        found = first;
    else if (access(second, R_OK) == 0)
        found = second;
    if (found == NULL) {
        if (first[0])
            return luaL_error(L, "import \"%s\": module not found (looked for %s and %s)", name,
                              first, second);
        return luaL_error(L, "import \"%s\": module not found (looked for %s)", name, second);
    }
    char resolved[PATH_MAX];
    if (realpath(found, resolved) == NULL)
        return luaL_error(L, "import \"%s\": cannot resolve %s", name, found);

    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, RN_SB_IMPORTS);
    int cache = lua_gettop(L);
    if (!lua_istable(L, cache))
        return luaL_error(L, "import \"%s\": import is only available while a recipe loads", name);
    int t = lua_getfield(L, cache, resolved);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        return luaL_error(L, "import \"%s\": circular import (%s is still loading)", name, found);
    if (t != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, cache, resolved);

    rn_sandbox_load_chunk(L, found, name);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, resolved);
    return 1;
}
