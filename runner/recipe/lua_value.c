/* Lua value -> rn_value tree. Each node is linked into its parent before its children are
 * converted, so a Lua error half-way (only luaL_ref can raise) leaves a tree that can be freed. */
#include "lua_value.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200
/* Nodes one recipe may produce. A table shared by many fields is copied for each (the tree has
 * no sharing), so without a cap `t = {t, t}` repeated 30 times would need 2^30 nodes. */
#define MAX_NODES 1000000

typedef struct conv {
    rn_value *root;
    const void *open[MAX_DEPTH]; /* the tables on the current path, for cycle detection */
    int depth;
    long nodes;
    int keep_functions;
    char *err;
    size_t errlen;
} conv;

static int fail(conv *c, const char *path, const char *fmt, const char *arg)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg);
    snprintf(c->err, c->errlen, "%s: %s", rn_value_display_path(path), msg);
    return -1;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int convert(lua_State *L, conv *c, int idx, rn_value *v);

static int convert_child(lua_State *L, conv *c, rn_value **slot, char *path)
{
    if (path == NULL)
        return fail(c, "", "%s", "out of memory");
    if (++c->nodes > MAX_NODES) {
        fail(c, path, "%s", "more than 1000000 values (a table shared many times over?)");
        free(path);
        return -1;
    }
    *slot = rn_value_new(RN_V_NIL, path);
    free(path);
    if (*slot == NULL)
        return fail(c, "", "%s", "out of memory");
    return convert(L, c, lua_gettop(L), *slot);
}

static int convert_table(lua_State *L, conv *c, int t, rn_value *v)
{
    const void *p = lua_topointer(L, t);
    for (int i = 0; i < c->depth; i++)
        if (c->open[i] == p)
            return fail(c, v->path, "%s", "table contains itself (a cycle)");
    if (c->depth == MAX_DEPTH || !lua_checkstack(L, 8))
        return fail(c, v->path, "%s", "tables nested too deeply");
    c->open[c->depth++] = p;

    /* First pass: classify the keys. */
    lua_Integer max_index = 0, n_int = 0;
    size_t n_str = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t len;
            const char *k = lua_tolstring(L, -1, &len);
            if (strlen(k) != len) {
                lua_pop(L, 1);
                return fail(c, v->path, "%s", "a key contains a zero byte");
            }
            n_str++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k > max_index)
                max_index = k;
            n_int++;
        } else {
            char key[64];
            int kt = lua_type(L, -1);
            if (kt == LUA_TNUMBER && lua_isinteger(L, -1))
                snprintf(key, sizeof key, "[%lld]", (long long)lua_tointeger(L, -1));
            else if (kt == LUA_TNUMBER)
                snprintf(key, sizeof key, "[%.14g]", (double)lua_tonumber(L, -1));
            else if (kt == LUA_TBOOLEAN)
                snprintf(key, sizeof key, "[%s]", lua_toboolean(L, -1) ? "true" : "false");
            else
                snprintf(key, sizeof key, "of type %s", lua_typename(L, kt));
            lua_pop(L, 1);
            return fail(c, v->path, "unsupported key %s (keys must be names or array indices 1..n)",
                        key);
        }
    }
    if (n_int != max_index) {
        lua_Integer hole = 1;
        while (lua_rawgeti(L, t, hole) != LUA_TNIL) {
            lua_pop(L, 1);
            hole++;
        }
        lua_pop(L, 1);
        char msg[64];
        snprintf(msg, sizeof msg, "%lld", (long long)hole);
        return fail(c, v->path, "array has a gap at [%s] (items must be 1..n without nils)", msg);
    }

    v->items = calloc((size_t)max_index + 1, sizeof *v->items);
    v->keys = calloc(n_str + 1, sizeof *v->keys);
    v->fields = calloc(n_str + 1, sizeof *v->fields);
    if (v->items == NULL || v->keys == NULL || v->fields == NULL)
        return fail(c, v->path, "%s", "out of memory");
    v->n_items = (size_t)max_index;

    /* Second pass: the string keys, sorted so the tree is deterministic. */
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        if ((v->keys[v->n_fields] = strdup(lua_tostring(L, -1))) == NULL) {
            lua_pop(L, 1);
            return fail(c, v->path, "%s", "out of memory");
        }
        v->n_fields++;
    }
    qsort(v->keys, v->n_fields, sizeof *v->keys, cmp_keys);

    for (size_t i = 0; i < v->n_items; i++) {
        lua_rawgeti(L, t, (lua_Integer)i + 1);
        int rc = convert_child(L, c, &v->items[i], rn_path_join_index(v->path, i + 1));
        lua_pop(L, 1);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < v->n_fields; i++) {
        lua_pushstring(L, v->keys[i]);
        lua_rawget(L, t);
        int rc = convert_child(L, c, &v->fields[i], rn_path_join_key(v->path, v->keys[i]));
        lua_pop(L, 1);
        if (rc != 0)
            return rc;
    }
    c->depth--;
    return 0;
}

static int convert(lua_State *L, conv *c, int idx, rn_value *v)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: v->type = RN_V_NIL; return 0;
    case LUA_TBOOLEAN:
        v->type = RN_V_BOOL;
        v->b = lua_toboolean(L, idx);
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            v->type = RN_V_INT;
            v->i = (int64_t)lua_tointeger(L, idx);
            v->n = (double)v->i;
        } else {
            v->type = RN_V_NUMBER;
            v->n = (double)lua_tonumber(L, idx);
        }
        return 0;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len)
            return fail(c, v->path, "%s", "string contains a zero byte");
        v->type = RN_V_STRING;
        if ((v->s = strdup(s)) == NULL)
            return fail(c, v->path, "%s", "out of memory");
        return 0;
    }
    case LUA_TTABLE:
        v->type = RN_V_TABLE;
        return convert_table(L, c, lua_absindex(L, idx), v);
    case LUA_TFUNCTION:
        if (c->keep_functions) {
            v->type = RN_V_FUNCTION;
            v->fn_ref = LUA_NOREF;
            lua_pushvalue(L, idx);
            v->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            return 0;
        }
        /* fallthrough */
    default:
        return fail(c, v->path, "unsupported value of type %s", lua_typename(L, lua_type(L, idx)));
    }
}

/* Protected part: upvalue-free, the conv context comes as light userdata at 1, the value at 2. */
static int convert_protected(lua_State *L)
{
    conv *c = lua_touserdata(L, 1);
    lua_pushinteger(L, convert(L, c, 2, c->root));
    return 1;
}

rn_value *rn_lua_to_value(lua_State *L, int idx, const char *root_path, int keep_functions,
                          char *err, size_t errlen)
{
    conv *c = calloc(1, sizeof *c);
    if (c == NULL || !lua_checkstack(L, 4)) {
        free(c);
        snprintf(err, errlen, "%s: out of memory", rn_value_display_path(root_path));
        return NULL;
    }
    c->keep_functions = keep_functions;
    c->err = err;
    c->errlen = errlen;
    c->root = rn_value_new(RN_V_NIL, root_path);
    if (c->root == NULL) {
        free(c);
        snprintf(err, errlen, "%s: out of memory", rn_value_display_path(root_path));
        return NULL;
    }
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    lua_pushcfunction(L, convert_protected);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, idx);
    int status = lua_pcall(L, 2, 1, 0);
    int rc = status == LUA_OK ? (int)lua_tointeger(L, -1) : -1;
    if (status != LUA_OK)
        snprintf(err, errlen, "%s: %s", rn_value_display_path(root_path),
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error while converting");
    lua_settop(L, top);
    rn_value *root = c->root;
    free(c);
    if (rc != 0) {
        rn_value_free(root);
        return NULL;
    }
    return root;
}
