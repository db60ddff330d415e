/* The recipe sandbox: a Lua state with a byte-counting allocator, an instruction budget and an
 * environment of safe functions; runs a recipe file and converts its table to a tree. */
#include "sandbox_internal.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua_value.h"

#define HOOK_EVERY 1000
#define DEFAULT_MEMORY ((size_t)64 << 20)
#define DEFAULT_INSTRUCTIONS 50000000LL

/* Names a recipe might reach for that the sandbox leaves out on purpose. */
static const char *const forbidden[] = {
    "os", "io", "package", "require", "load", "loadfile", "dofile", "loadstring", "debug",
    "collectgarbage", "print", "coroutine", "_G", "module", "setfenv", "getfenv", NULL};

static const char *const safe_base[] = {
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
    "rawequal", "rawlen", "rawget", "rawset", "getmetatable", "_VERSION", NULL};

/* Lua calls this for every (re)allocation; growth beyond the cap is refused, so Lua raises
 * "not enough memory". Shrinking never fails, as Lua requires. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rn_sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sb->mem_used -= old;
        return NULL;
    }
    if (nsize > old && sb->capped && sb->mem_used - old + nsize > sb->mem_cap) {
        sb->mem_refused = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL)
        sb->mem_used = sb->mem_used - old + nsize;
    return p;
}

static void sb_hook(lua_State *L, lua_Debug *ar)
{
    rn_sandbox *sb = rn_sandbox_of(L);
    sb->executed += HOOK_EVERY;
    if (sb->executed <= sb->budget)
        return;
    /* luaL_error would name the caller; in a hook level 0 is the running function. */
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
    else
        lua_pushliteral(L, "");
    lua_pushfstring(L, "instruction budget of %I exceeded (endless loop?)", (lua_Integer)sb->budget);
    lua_concat(L, 2);
    lua_error(L);
}

/* Once the budget or the memory is exhausted, a recipe's own pcall must not swallow it. */
static void rethrow_if_fatal(lua_State *L, int status)
{
    rn_sandbox *sb = rn_sandbox_of(L);
    if (status == LUA_ERRMEM || sb->executed > sb->budget)
        lua_error(L);
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (status != LUA_OK) {
        rethrow_if_fatal(L, status);
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    return lua_gettop(L);
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    /* f, handler, args... -> handler, f, args... */
    lua_pushvalue(L, 1);
    lua_copy(L, 2, 1);
    lua_replace(L, 2);
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
    if (status != LUA_OK)
        rethrow_if_fatal(L, status);
    lua_pushboolean(L, status == LUA_OK);
    lua_replace(L, 1);
    return lua_gettop(L);
}

/* Finalizers would run recipe code at arbitrary times (even during conversion): refused. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int t = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (t != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not available in recipes");
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int env_missing(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "unknown global %s", luaL_tolstring(L, 2, NULL));
    const char *name = lua_tostring(L, 2);
    for (int i = 0; forbidden[i]; i++)
        if (strcmp(name, forbidden[i]) == 0)
            return luaL_error(L, "'%s' is not available in recipes", name);
    return luaL_error(L, "unknown global '%s'", name);
}

static int env_set(lua_State *L)
{
    return luaL_error(L, "recipes may not set globals (use local)");
}

static int string_missing(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    if (name && strcmp(name, "dump") == 0)
        return luaL_error(L, "'string.dump' is not available in recipes");
    lua_pushnil(L);
    return 1;
}

/* Pushes a metatable {__index = index (at idx, or the C function), __newindex = env_set}. */
static void push_guard_meta(lua_State *L, int index_idx, lua_CFunction index_fn)
{
    index_idx = index_idx ? lua_absindex(L, index_idx) : 0;
    lua_createtable(L, 0, 3);
    if (index_idx)
        lua_pushvalue(L, index_idx);
    else
        lua_pushcfunction(L, index_fn);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, env_set);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
}

void rn_sandbox_push_env(lua_State *L)
{
    lua_newtable(L);
    lua_getfield(L, LUA_REGISTRYINDEX, RN_SB_ENV_META);
    lua_setmetatable(L, -2);
}

/* Pushes a shallow copy of the library `open` returns. */
static void push_lib_copy(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_requiref(L, name, open, 0);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
}

/* Builds the globals and the environment metatable afresh, so whatever a recipe does to its
 * copies of the libraries ends with its run. */
static void build_globals(lua_State *L)
{
    luaL_requiref(L, "_G", luaopen_base, 0);
    int base = lua_gettop(L);
    lua_newtable(L);
    int g = lua_gettop(L);
    for (int i = 0; safe_base[i]; i++) {
        lua_getfield(L, base, safe_base[i]);
        lua_setfield(L, g, safe_base[i]);
    }
    lua_pushcfunction(L, sb_pcall);
    lua_setfield(L, g, "pcall");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, g, "xpcall");
    lua_getfield(L, base, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_pushcfunction(L, rn_sandbox_import);
    lua_setfield(L, g, "import");

    push_lib_copy(L, LUA_MATHLIBNAME, luaopen_math);
    /* Lua seeds math.random from the clock; a recipe must give the same tree every time. */
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, 0);
    lua_call(L, 1, 0);
    lua_setfield(L, g, LUA_MATHLIBNAME);
    push_lib_copy(L, LUA_TABLIBNAME, luaopen_table);
    lua_setfield(L, g, LUA_TABLIBNAME);
    push_lib_copy(L, LUA_UTF8LIBNAME, luaopen_utf8);
    lua_setfield(L, g, LUA_UTF8LIBNAME);
    push_lib_copy(L, LUA_STRLIBNAME, luaopen_string);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    push_guard_meta(L, 0, string_missing);
    lua_setmetatable(L, -2);
    /* ("x").dump goes through the shared string metatable: point it at the copy. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_setfield(L, g, LUA_STRLIBNAME);

    push_guard_meta(L, g, NULL);
    lua_setfield(L, LUA_REGISTRYINDEX, RN_SB_ENV_META);

    rn_sandbox_push_helpers(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, g);
    }
    lua_pop(L, 1);

    push_guard_meta(L, 0, env_missing);
    lua_setmetatable(L, g);
    lua_pushvalue(L, g);
    lua_setfield(L, LUA_REGISTRYINDEX, RN_SB_GLOBALS);
    lua_settop(L, base - 1);
}

/* Checks once, when the sandbox is created, that the globals can be built. */
static int sb_setup(lua_State *L)
{
    build_globals(L);
    return 0;
}

rn_sandbox *rn_sandbox_new(const char *lib_dir, const rn_sandbox_limits *limits, char *err,
                           size_t errlen)
{
    rn_sandbox *sb = calloc(1, sizeof *sb);
    if (sb == NULL || (sb->lib_dir = strdup(lib_dir ? lib_dir : ".")) == NULL) {
        free(sb);
        snprintf(err, errlen, "sandbox: out of memory");
        return NULL;
    }
    sb->mem_cap = limits && limits->memory_bytes ? limits->memory_bytes : DEFAULT_MEMORY;
    sb->run_budget = limits && limits->instructions > 0 ? limits->instructions
                                                        : DEFAULT_INSTRUCTIONS;
    sb->budget = sb->run_budget;
    sb->call_budget = RN_SANDBOX_CALL_INSTRUCTIONS;
    sb->L = lua_newstate(sb_alloc, sb);
    if (sb->L == NULL) {
        rn_sandbox_free(sb);
        snprintf(err, errlen, "sandbox: cannot create a Lua state");
        return NULL;
    }
    *(rn_sandbox **)lua_getextraspace(sb->L) = sb;
    lua_pushcfunction(sb->L, sb_setup);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "sandbox: %s", lua_tostring(sb->L, -1));
        rn_sandbox_free(sb);
        return NULL;
    }
    sb->capped = 1;
    return sb;
}

void rn_sandbox_free(rn_sandbox *sb)
{
    if (sb == NULL)
        return;
    sb->capped = 0;
    if (sb->L)
        lua_close(sb->L);
    free(sb->lib_dir);
    free(sb);
}

struct lua_State *rn_sandbox_state(rn_sandbox *sb)
{
    return sb->L;
}

void rn_sandbox_set_call_budget(rn_sandbox *sb, long long instructions)
{
    sb->call_budget = instructions > 0 ? instructions : RN_SANDBOX_CALL_INSTRUCTIONS;
}

int rn_sandbox_has_position(const char *msg)
{
    for (const char *p = msg; *p && *p != '\n'; p++) {
        if (*p != ':' || !isdigit((unsigned char)p[1]))
            continue;
        const char *q = p + 1;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == ':')
            return 1;
    }
    return 0;
}

/* Pushes the text of the file at path, as luaL_loadfilex would read it (a UTF-8 BOM dropped, a
 * first line starting with '#' blanked so line numbers stay). Returns 0, or an errno value with
 * nothing pushed. The buffer is a userdata, so nothing leaks if Lua raises. */
static int push_file_text(lua_State *L, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    size_t size = (size_t)st.st_size;
    char *buf = lua_newuserdatauv(L, size + 1, 0);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        lua_pop(L, 1);
        return e;
    }
    size_t n = fread(buf, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        lua_pop(L, 1);
        return EIO;
    }
    size_t off = n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (off < n && buf[off] == '#')
        for (size_t i = off; i < n && buf[i] != '\n' && buf[i] != '\r'; i++)
            buf[i] = ' ';
    lua_pushlstring(L, buf + off, n - off);
    lua_remove(L, -2);
    return 0;
}

/* Loads path's text as a chunk named "@path" and keeps the text in RN_LUA_SOURCES (so that the
 * recipe's functions can be written back as source). Pushes the function or an error message. */
static int load_file(lua_State *L, const char *path)
{
    int e = push_file_text(L, path);
    if (e != 0) {
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(e));
        return LUA_ERRFILE;
    }
    int text = lua_gettop(L);
    lua_pushfstring(L, "@%s", path);
    if (lua_getfield(L, LUA_REGISTRYINDEX, RN_LUA_SOURCES) == LUA_TTABLE) {
        lua_pushvalue(L, text + 1);
        lua_pushvalue(L, text);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
    size_t len;
    const char *s = lua_tolstring(L, text, &len);
    int status = luaL_loadbufferx(L, s, len, lua_tostring(L, text + 1), "t");
    lua_remove(L, text);
    lua_remove(L, text);
    return status;
}

void rn_sandbox_load_chunk(lua_State *L, const char *path, const char *import_name)
{
    int status = load_file(L, path);
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL)
            msg = "cannot load";
        /* Lua names the file in most load errors, but not in all versions for a binary chunk. */
        int named = status == LUA_ERRFILE || rn_sandbox_has_position(msg) ||
                    strncmp(msg, path, strlen(path)) == 0;
        const char *sep = named ? "" : ": ";
        const char *file = *sep ? path : "";
        if (import_name)
            luaL_error(L, "import \"%s\": %s%s%s", import_name, file, sep, msg);
        lua_pushfstring(L, "%s%s%s", file, sep, msg);
        lua_error(L);
    }
    rn_sandbox_push_env(L);
    lua_setupvalue(L, -2, 1);
}

/* The top-level message handler: one line; errors raised without a position (error("x", 0), a
 * table, or error(msg, 2) from a tail-called helper) get the position of the innermost Lua
 * function of a file. No traceback. */
static int sb_msgh(lua_State *L)
{
    rn_sandbox_of(L)->capped = 0;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (!rn_sandbox_has_position(msg)) {
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            /* Files only: the built-in helpers are not where a recipe author should look. */
            if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 && ar.source[0] == '@') {
                msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
                break;
            }
        }
    }
    lua_pushstring(L, msg);
    return 1;
}

static int sb_run(lua_State *L)
{
    const char *path = lua_touserdata(L, 1);
    build_globals(L);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RN_SB_IMPORTS);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RN_LUA_SOURCES);
    rn_sandbox_load_chunk(L, path, NULL);
    lua_call(L, 0, 1);
    return 1;
}

rn_value *rn_sandbox_run_file(rn_sandbox *sb, const char *path, char *err, size_t errlen)
{
    lua_State *L = sb->L;
    rn_value *v = NULL;
    lua_settop(L, 0);
    sb->budget = sb->run_budget;
    sb->executed = 0;
    sb->mem_refused = 0;
    sb->capped = 1;
    lua_pushcfunction(L, sb_msgh);
    lua_pushcfunction(L, sb_run);
    lua_pushlightuserdata(L, (void *)path);
    lua_sethook(L, sb_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int status = lua_pcall(L, 1, 1, 1);
    lua_sethook(L, NULL, 0, 0);
    sb->capped = 0;
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL)
            msg = "error";
        if (status == LUA_ERRMEM || (sb->mem_refused && (status == LUA_ERRERR ||
                                                         strstr(msg, "not enough memory")))) {
            snprintf(err, errlen, "%s: memory limit of %g MiB exceeded", path,
                     (double)sb->mem_cap / (1 << 20));
        } else {
            int n = (int)strcspn(msg, "\n");
            if (rn_sandbox_has_position(msg) || strncmp(msg, path, strlen(path)) == 0)
                snprintf(err, errlen, "%.*s", n, msg);
            else
                snprintf(err, errlen, "%s: %.*s", path, n, msg);
        }
    } else if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: expected the recipe to return a table, got %s", path,
                 luaL_typename(L, -1));
    } else {
        char msg[512];
        v = rn_lua_to_value(L, -1, "", 1, msg, sizeof msg);
        if (v == NULL)
            snprintf(err, errlen, "%s: %s", path, msg);
    }
    lua_settop(L, 0);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RN_SB_IMPORTS);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RN_LUA_SOURCES);
    lua_gc(L, LUA_GCCOLLECT);
    sb->capped = 1;
    return v;
}

int rn_sandbox_call(rn_sandbox *sb, int (*fn)(lua_State *L), void *ud, char *err, size_t errlen)
{
    lua_State *L = sb->L;
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 4)) {
        snprintf(err, errlen, "Lua stack overflow");
        return -1;
    }
    sb->budget = sb->call_budget;
    sb->executed = 0;
    sb->mem_refused = 0;
    sb->capped = 1;
    lua_pushcfunction(L, sb_msgh);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    lua_sethook(L, sb_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int status = lua_pcall(L, 1, 0, top + 1);
    lua_sethook(L, NULL, 0, 0);
    sb->capped = 0;
    int rc = 0;
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL)
            msg = "error";
        if (status == LUA_ERRMEM || (sb->mem_refused && (status == LUA_ERRERR ||
                                                         strstr(msg, "not enough memory"))))
            snprintf(err, errlen, "memory limit of %g MiB exceeded",
                     (double)sb->mem_cap / (1 << 20));
        else
            snprintf(err, errlen, "%.*s", (int)strcspn(msg, "\n"), msg);
        rc = -1;
    }
    lua_settop(L, top);
    sb->budget = sb->run_budget;
    sb->capped = 1;
    return rc;
}
