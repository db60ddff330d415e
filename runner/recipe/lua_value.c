/* Lua value -> rn_value tree. Each node is linked into its parent (or the scratch list) before its
 * children are converted, so a Lua error half-way (luaL_ref, or a string made for a lookup, can
 * raise when memory runs out) leaves trees that can be freed. */
#include "lua_value.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_source.h"

#define MAX_DEPTH 200
/* Nodes one recipe may produce. A table shared by many fields is copied for each (the tree has
 * no sharing), so without a cap `t = {t, t}` repeated 30 times would need 2^30 nodes. */
#define MAX_NODES 1000000
/* Function sources one tree may recover, and their total size: a function's source repeats those
 * of the functions it captures, so helpers that share helpers could otherwise grow without end. */
#define MAX_FN_SOURCES 10000
#define MAX_SOURCE_BYTES ((size_t)16 << 20)
static const char too_many[] = "the recipe's functions and the values they capture are too many "
                               "to write (more than 10000 functions or 16 MiB)";

typedef struct conv {
    rn_value *root;
    /* Trees made only to write a function's upvalues (items), linked here so that a Lua error
     * half-way cannot leak them; each is freed as soon as its function's source is written. */
    rn_value *scratch;
    const void *open[MAX_DEPTH]; /* the tables and functions on the current path (cycles) */
    int depth;
    long nodes;
    int keep_functions;
    int in_upvalue;              /* > 0 while converting upvalues: no registry refs then */
    long fn_sources;             /* function sources recovered so far */
    size_t source_bytes;         /* and their total length */
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

/* ---- functions: where their source comes from ------------------------------------------- */

/* The name under which the globals (or a library among them) hold the value at idx; functions
 * are looked up one level into the libraries ("math.floor"), tables only at the top ("math").
 * The smallest name wins, so the answer does not depend on hash order. */
static int global_name(lua_State *L, int idx, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!lua_checkstack(L, 6))
        return 0;
    int top = lua_gettop(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, RN_LUA_GLOBALS) != LUA_TTABLE) {
        lua_settop(L, top);
        return 0;
    }
    int g = lua_gettop(L);
    int want_members = lua_type(L, idx) == LUA_TFUNCTION;
    char name[160];
    lua_pushnil(L);
    while (lua_next(L, g)) {
        if (lua_type(L, -2) == LUA_TSTRING && rn_value_is_identifier(lua_tostring(L, -2))) {
            const char *k = lua_tostring(L, -2);
            if (lua_rawequal(L, -1, idx)) {
                snprintf(name, sizeof name, "%s", k);
                if (!buf[0] || strcmp(name, buf) < 0)
                    snprintf(buf, len, "%s", name);
            } else if (want_members && lua_type(L, -1) == LUA_TTABLE) {
                int lib = lua_gettop(L);
                lua_pushnil(L);
                while (lua_next(L, lib)) {
                    if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, idx) &&
                        rn_value_is_identifier(lua_tostring(L, -2))) {
                        snprintf(name, sizeof name, "%s.%s", k, lua_tostring(L, -2));
                        if (!buf[0] || strcmp(name, buf) < 0)
                            snprintf(buf, len, "%s", name);
                    }
                    lua_pop(L, 1);
                }
            }
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    return buf[0] != '\0';
}

/* The key a node is stored under ("on_epoch_end" for "callbacks[2].on_epoch_end"), for telling
 * apart functions that share their lines; NULL for an array item. */
static const char *last_key(const char *path, char *buf, size_t len)
{
    size_t n = strlen(path);
    if (strncmp(path, "upvalue ", 8) == 0 && rn_value_is_identifier(path + 8))
        return path + 8;
    if (n >= 4 && path[n - 1] == ']' && path[n - 2] == '"') {
        const char *open = NULL;
        for (const char *p = path; (p = strstr(p, "[\"")) != NULL && p < path + n - 2; p++)
            open = p;
        if (open == NULL)
            return NULL;
        snprintf(buf, len, "%.*s", (int)(path + n - 2 - (open + 2)), open + 2);
        return buf;
    }
    if (n == 0 || path[n - 1] == ']')
        return NULL;
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

static void set_why(rn_value *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_why(rn_value *v, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    free(v->fn_why);
    v->fn_why = strdup(why);
}

/* Writes the source of function v with its upvalues (fields of ups) as locals. C only. */
static char *compose(const char *text, const rn_value *ups, const char *self_name)
{
    if (ups->n_fields == 0 && self_name == NULL)
        return strdup(text);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    fputs("(function()\n", f);
    for (size_t i = 0; i < ups->n_fields; i++) {
        fprintf(f, "  local %s = ", ups->keys[i]);
        rn_value_write_expr(ups->fields[i], 1, f);
        fputc('\n', f);
    }
    if (self_name)
        fprintf(f, "  local %s\n  %s = %s\n  return %s\n", self_name, self_name, text, self_name);
    else
        fprintf(f, "  return %s\n", text);
    fputs("end)()", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(out);
        return NULL;
    }
    return out;
}

static int convert(lua_State *L, conv *c, int idx, rn_value *v);

/* Converts upvalue i of the function at f into a field of ups. Returns 0, 1 when it is the
 * function itself (*self_name set), 2 for _ENV, or -1 with why set on v. */
static int convert_upvalue(lua_State *L, conv *c, int f, int i, rn_value *ups, rn_value *v,
                           const char **self_name)
{
    const char *name = lua_getupvalue(L, f, i);
    int top = lua_gettop(L);
    if (name == NULL || strcmp(name, "_ENV") == 0)
        return 2;
    if (!rn_value_is_identifier(name)) {
        set_why(v, "upvalue %s has no name (stripped debug info?)", name);
        return -1;
    }
    if (lua_rawequal(L, -1, f)) {
        *self_name = name;
        return 1;
    }
    char gname[160];
    if ((lua_type(L, -1) == LUA_TTABLE || lua_type(L, -1) == LUA_TFUNCTION) &&
        global_name(L, top, gname, sizeof gname)) {
        /* A library or one of its functions: written as its name (an expression node, typed
         * as a function; it only lives in the scratch list). */
        rn_value *node = rn_value_new(RN_V_FUNCTION, name);
        if (node != NULL) {
            node->fn_ref = LUA_NOREF;
            node->s = strdup(gname);
        }
        if (node == NULL || node->s == NULL) {
            rn_value_free(node);
            set_why(v, "out of memory");
            return -1;
        }
        if (rn_value_put_field(ups, name, node) != 0) {
            set_why(v, "out of memory");
            return -1;
        }
        return 0;
    }
    if (lua_type(L, -1) == LUA_TFUNCTION) {
        const void *p = lua_topointer(L, -1);
        for (int k = 0; k < c->depth; k++)
            if (c->open[k] == p) {
                set_why(v, "upvalue %s refers back to a function that uses it", name);
                return -1;
            }
    }
    char path[300];
    snprintf(path, sizeof path, "upvalue %s", name);
    rn_value *node = rn_value_new(RN_V_NIL, path);
    if (node == NULL || rn_value_put_field(ups, name, node) != 0) {
        set_why(v, "out of memory");
        return -1;
    }
    char msg[300];
    char *saved_err = c->err;
    size_t saved_len = c->errlen;
    int saved_depth = c->depth;
    c->err = msg;
    c->errlen = sizeof msg;
    c->in_upvalue++;
    int rc = ++c->nodes > MAX_NODES ? -1 : convert(L, c, top, node);
    if (c->nodes > MAX_NODES)
        snprintf(msg, sizeof msg, "more than 1000000 values");
    c->in_upvalue--;
    c->err = saved_err;
    c->errlen = saved_len;
    c->depth = saved_depth;
    lua_settop(L, top);
    if (rc != 0) {
        set_why(v, "%s", msg);
        return -1;
    }
    if (node->type == RN_V_FUNCTION && node->s == NULL) {
        /* "upvalue a: upvalue b: reason" reads as "upvalue a.b: reason"; a long chain keeps its
         * ends. */
        const char *inner = node->fn_why ? node->fn_why : "no source";
        const char *colon = strstr(inner, ": ");
        if (strncmp(inner, "upvalue ", 8) == 0 && colon != NULL) {
            char chain[400];
            int n = (int)(colon - (inner + 8));
            if (n > 60) /* the first and last 20 characters, then ": reason" */
                snprintf(chain, sizeof chain, "%s.%.20s...%s", name, inner + 8, colon - 20);
            else
                snprintf(chain, sizeof chain, "%s.%.*s%s", name, n, inner + 8, colon);
            set_why(v, "upvalue %s", chain);
        } else {
            set_why(v, "upvalue %s: %s", name, inner);
        }
        return -1;
    }
    return 0;
}

/* Fills v->s (or v->fn_why) for the function at f. Never fails the conversion. */
static void function_source(lua_State *L, conv *c, int f, rn_value *v)
{
    char gname[160];
    if (global_name(L, f, gname, sizeof gname)) {
        if ((v->s = strdup(gname)) == NULL)
            set_why(v, "out of memory");
        return;
    }
    if (++c->fn_sources > MAX_FN_SOURCES || c->source_bytes > MAX_SOURCE_BYTES) {
        set_why(v, "%s", too_many);
        return;
    }
    int top = lua_gettop(L);
    lua_Debug ar;
    lua_pushvalue(L, f);
    if (!lua_getinfo(L, ">Su", &ar) || strcmp(ar.what, "Lua") != 0) {
        set_why(v, "a function written in C");
        return;
    }
    if (ar.source[0] != '@') {
        set_why(v, "not defined in a recipe file (%s)", ar.short_src);
        return;
    }
    if (!lua_checkstack(L, 8) || c->depth == MAX_DEPTH) {
        set_why(v, "nested too deeply");
        return;
    }
    size_t chunk_len = 0;
    const char *chunk = NULL;
    if (lua_getfield(L, LUA_REGISTRYINDEX, RN_LUA_SOURCES) == LUA_TTABLE &&
        lua_getfield(L, -1, ar.source) == LUA_TSTRING)
        chunk = lua_tolstring(L, -1, &chunk_len); /* stays on the stack until we are done */
    if (chunk == NULL) {
        set_why(v, "the text of %s was not kept", ar.short_src);
        lua_settop(L, top);
        return;
    }

    rn_value *ups = rn_value_new(RN_V_TABLE, v->path);
    if (ups == NULL || rn_value_push_item(c->scratch, ups) != 0) {
        set_why(v, "out of memory");
        lua_settop(L, top);
        return;
    }
    const char *self_name = NULL;
    c->open[c->depth++] = lua_topointer(L, f);
    int ok = 1;
    for (int i = 1; ok && i <= ar.nups; i++) {
        int rc = convert_upvalue(L, c, f, i, ups, v, &self_name);
        lua_settop(L, top + 2);
        ok = rc >= 0;
    }
    c->depth--;

    /* From here on no Lua call: the text is cut and composed in C. */
    if (ok) {
        char why[200] = "";
        char key_buf[200];
        rn_lua_fn_info info = {ar.linedefined, ar.lastlinedefined, ar.nparams, ar.isvararg,
                               last_key(v->path, key_buf, sizeof key_buf)};
        char *text = rn_lua_cut_function(chunk, chunk_len, &info, why, sizeof why);
        if (text == NULL) {
            char where[300];
            snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.linedefined);
            set_why(v, "%s: %s", where, why);
        } else if ((v->s = compose(text, ups, self_name)) == NULL) {
            set_why(v, "out of memory");
        } else if ((c->source_bytes += strlen(v->s)) > MAX_SOURCE_BYTES) {
            free(v->s);
            v->s = NULL;
            set_why(v, "%s", too_many);
        }
        free(text);
    }
    c->scratch->n_items--;
    rn_value_free(ups);
    lua_settop(L, top);
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
            if (c->in_upvalue == 0) {
                lua_pushvalue(L, idx);
                v->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            }
            function_source(L, c, lua_absindex(L, idx), v);
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
    c->scratch = rn_value_new(RN_V_TABLE, "");
    if (c->root == NULL || c->scratch == NULL) {
        rn_value_free(c->root);
        rn_value_free(c->scratch);
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
    rn_value_free(c->scratch);
    free(c);
    if (rc != 0) {
        rn_value_free(root);
        return NULL;
    }
    return root;
}
