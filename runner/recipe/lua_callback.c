/* The built-in "lua" callback: a recipe's table of hook functions called in its sandbox, each call
 * with a fresh ctx table, a fresh instruction budget and the sandbox's memory cap. */
#include "lua_callback.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { H_RUN_BEGIN, H_STAGE_BEGIN, H_STEP_END, H_EPOCH_END, H_EVAL_END, H_STAGE_END, H_RUN_END,
       H_COUNT };

const char *const rn_lua_callback_hooks[] = {"on_run_begin", "on_stage_begin", "on_step_end",
                                             "on_epoch_end", "on_eval_end",    "on_stage_end",
                                             "on_run_end",   NULL};

/* ctx's functions, made once per instance; each has the instance as upvalue 1. */
enum { F_HISTORY, F_LOG, F_STOP, F_COUNT };

#define CTX_META "rn.lua_callback.ctx"
#define METRICS_META "rn.lua_callback.metrics"

typedef struct lua_callback {
    rn_sandbox *sb;
    const rn_host *host;
    rn_ctx *ctx;
    char *spec_path;          /* "callbacks[2]" */
    const rn_value *spec;     /* during create only */
    int ref[H_COUNT];         /* registry refs of the hooks; LUA_NOREF when absent */
    int fn_ref[F_COUNT];      /* registry refs of ctx.history, ctx.log, ctx.stop */
    char *path[H_COUNT];      /* "callbacks[2].on_epoch_end" */
    char where[H_COUNT][96];  /* "recipe.lua:12": where the hook's function begins */
    /* The call in progress. */
    int hook;
    const rn_event *event;
    int stop;                 /* strongest ctx.stop of this call */
    int result;               /* from the return value */
} lua_callback;

#define HOST_HAS(h, field) ((h)->struct_size >= offsetof(rn_host, field) + sizeof((h)->field) && \
                            (h)->field != NULL)

/* ---- helpers ------------------------------------------------------------------------------- */

/* A Lua value for messages: `string "stop"`, `number 1`, `boolean true`, `table`. */
static const char *describe(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_pushfstring(L, "string \"%s\"", lua_tostring(L, idx));
    case LUA_TNUMBER:
        lua_pushvalue(L, idx);
        return lua_pushfstring(L, "number %s", luaL_tolstring(L, -1, NULL));
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "boolean true" : "boolean false";
    default: return luaL_typename(L, idx);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Raises "<what> has no <noun> 'k' (<noun>s: a, b, c)" listing the string keys of the table at
 * 1, sorted. */
static int missing(lua_State *L, const char *what, const char *noun)
{
    const char *key = luaL_tolstring(L, 2, NULL);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        n += lua_type(L, -2) == LUA_TSTRING;
        lua_pop(L, 1);
    }
    const char **names = lua_newuserdatauv(L, (n ? n : 1) * sizeof *names, 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) == LUA_TSTRING && k < n)
            names[k++] = lua_tostring(L, -2); /* the table keeps the key alive */
        lua_pop(L, 1);
    }
    qsort(names, k, sizeof *names, cmp_str);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < k; i++) {
        if (i)
            luaL_addstring(&b, ", ");
        luaL_addstring(&b, names[i]);
    }
    if (k == 0)
        luaL_addstring(&b, "none yet");
    luaL_pushresult(&b);
    return luaL_error(L, "%s has no %s '%s' (%ss: %s)", what, noun, key, noun,
                      lua_tostring(L, -1));
}

static int ctx_index(lua_State *L)
{
    return missing(L, "ctx", "field");
}

static int metrics_index(lua_State *L)
{
    return missing(L, "ctx.metrics", "metric");
}

/* Pushes a metatable {__index = fn, __metatable = false, __name = shown}, made once per state
 * (__name is what Lua's own errors call the table: "attempt to index a ctx value"). */
static void push_meta(lua_State *L, const char *name, const char *shown, lua_CFunction index)
{
    if (luaL_newmetatable(L, name)) {
        lua_pushcfunction(L, index);
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pushstring(L, shown);
        lua_setfield(L, -2, "__name");
    }
}

/* ---- ctx functions ------------------------------------------------------------------------- */

static lua_callback *self_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int ctx_history(lua_State *L)
{
    lua_callback *cb = self_of(L);
    const char *name = luaL_checkstring(L, 1);
    double stack[64], *out = stack;
    size_t n = 0;
    if (HOST_HAS(cb->host, metric_history)) {
        n = cb->host->metric_history(cb->ctx, name, stack, 64);
        if (n > 64) {
            out = lua_newuserdatauv(L, n * sizeof *out, 0);
            size_t again = cb->host->metric_history(cb->ctx, name, out, n);
            n = again < n ? again : n;
        }
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, out[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int ctx_log(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", NULL};
    lua_callback *cb = self_of(L);
    lua_settop(L, 2);
    int level = luaL_checkoption(L, 2, "info", levels);
    const char *msg = luaL_tolstring(L, 1, NULL);
    if (HOST_HAS(cb->host, log))
        cb->host->log(cb->ctx, (rn_log_level)level, "%s: %s", cb->spec_path, msg);
    return 0;
}

static int ctx_stop(lua_State *L)
{
    lua_callback *cb = self_of(L);
    const char *what = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : "";
    int control = strcmp(what, "stage") == 0 ? RN_STOP_STAGE
                  : strcmp(what, "run") == 0 ? RN_STOP_RUN
                                             : -1;
    if (control < 0)
        return luaL_error(L, "ctx.stop: expected \"stage\" or \"run\", got %s", describe(L, 1));
    if (control > cb->stop)
        cb->stop = control;
    return 0;
}

/* ---- a hook call --------------------------------------------------------------------------- */

static void set_int(lua_State *L, const char *key, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, key);
}

static void set_num(lua_State *L, const char *key, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static void push_metrics(lua_State *L, lua_callback *cb)
{
    const rn_host *h = cb->host;
    size_t n = HOST_HAS(h, metric_count) && HOST_HAS(h, metric_at) ? h->metric_count(cb->ctx) : 0;
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        double value = NAN;
        if (!h->metric_at(cb->ctx, i, &name, &value) || name == NULL)
            continue;
        lua_pushnumber(L, value);
        lua_setfield(L, -2, name);
    }
    push_meta(L, METRICS_META, "ctx.metrics", metrics_index);
    lua_setmetatable(L, -2);
}

static void push_ctx(lua_State *L, lua_callback *cb)
{
    static const rn_event none = {sizeof none, NULL, 0, 0, 0, 0, 0, 0, 0, 0, NAN, NAN, NAN, NAN};
    const rn_event *e = cb->event ? cb->event : &none;
    lua_createtable(L, 0, 24);
    lua_pushstring(L, rn_lua_callback_hooks[cb->hook]);
    lua_setfield(L, -2, "hook");
    lua_pushstring(L, e->stage ? e->stage : "");
    lua_setfield(L, -2, "stage");
    set_int(L, "stage_index", e->stage_index);
    set_int(L, "stage_count", e->stage_count);
    set_int(L, "step", e->step);
    set_int(L, "total_steps", e->total_steps);
    set_int(L, "epoch", e->epoch);
    set_int(L, "epochs", e->epochs);
    set_int(L, "steps_per_epoch", e->steps_per_epoch);
    set_int(L, "global_step", e->global_step);
    set_num(L, "loss", e->loss);
    set_num(L, "lr", e->lr);
    set_num(L, "images_per_s", e->images_per_s);
    set_num(L, "elapsed_s", e->elapsed_s);
    push_metrics(L, cb);
    lua_setfield(L, -2, "metrics");
    static const char *const fn_names[F_COUNT] = {"history", "log", "stop"};
    for (int i = 0; i < F_COUNT; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, cb->fn_ref[i]);
        lua_setfield(L, -2, fn_names[i]);
    }
    push_meta(L, CTX_META, "ctx", ctx_index);
    lua_setmetatable(L, -2);
}

/* Runs inside rn_sandbox_call: the hook's function with a fresh ctx; checks what it returned. */
static int hook_body(lua_State *L)
{
    lua_callback *cb = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, cb->ref[cb->hook]);
    push_ctx(L, cb);
    lua_call(L, 1, 1);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1)))
        cb->result = RN_CONTINUE;
    else if (s && strcmp(s, "stop_stage") == 0)
        cb->result = RN_STOP_STAGE;
    else if (s && strcmp(s, "stop_run") == 0)
        cb->result = RN_STOP_RUN;
    else
        /* The return statement's line is gone once the function returned: name its start. */
        return luaL_error(L, "%s: the hook returned %s (expected nil, \"stop_stage\" or "
                          "\"stop_run\")", cb->where[cb->hook], describe(L, -1));
    return 0;
}

static int call_hook(lua_callback *cb, int hook, const rn_event *e)
{
    if (cb->ref[hook] == LUA_NOREF)
        return RN_CONTINUE;
    char err[512];
    cb->hook = hook;
    cb->event = e;
    cb->stop = RN_CONTINUE;
    cb->result = RN_CONTINUE;
    int rc = rn_sandbox_call(cb->sb, hook_body, cb, err, sizeof err);
    cb->event = NULL;
    if (rc != 0) {
        cb->host->set_error(cb->ctx, "%s: %s", cb->path[hook], err);
        return RN_ERR;
    }
    return cb->stop > cb->result ? cb->stop : cb->result;
}

static int on_run_begin(void *self, const rn_event *e) { return call_hook(self, H_RUN_BEGIN, e); }
static int on_stage_begin(void *self, const rn_event *e) { return call_hook(self, H_STAGE_BEGIN, e); }
static int on_step_end(void *self, const rn_event *e) { return call_hook(self, H_STEP_END, e); }
static int on_epoch_end(void *self, const rn_event *e) { return call_hook(self, H_EPOCH_END, e); }
static int on_eval_end(void *self, const rn_event *e) { return call_hook(self, H_EVAL_END, e); }
static int on_stage_end(void *self, const rn_event *e) { return call_hook(self, H_STAGE_END, e); }
static int on_run_end(void *self, const rn_event *e) { return call_hook(self, H_RUN_END, e); }

const rn_callback_api rn_lua_callback_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_run_begin = on_run_begin,
    .on_stage_begin = on_stage_begin,
    .on_step_end = on_step_end,
    .on_epoch_end = on_epoch_end,
    .on_eval_end = on_eval_end,
    .on_stage_end = on_stage_end,
    .on_run_end = on_run_end,
};

/* ---- instances ----------------------------------------------------------------------------- */

static int hook_index(const char *key)
{
    for (int i = 0; rn_lua_callback_hooks[i]; i++)
        if (strcmp(key, rn_lua_callback_hooks[i]) == 0)
            return i;
    return -1;
}

/* Runs inside rn_sandbox_call: takes the instance's own references. */
static int create_body(lua_State *L)
{
    lua_callback *cb = lua_touserdata(L, 1);
    const rn_value *spec = cb->spec;
    for (size_t i = 0; i < spec->n_fields; i++) {
        int h = hook_index(spec->keys[i]);
        lua_rawgeti(L, LUA_REGISTRYINDEX, spec->fields[i]->fn_ref);
        if (!lua_isfunction(L, -1))
            return luaL_error(L, "%s: not a function of this recipe's Lua state",
                              spec->fields[i]->path);
        lua_Debug ar;
        lua_pushvalue(L, -1);
        lua_getinfo(L, ">S", &ar);
        if (ar.linedefined > 0)
            snprintf(cb->where[h], sizeof cb->where[h], "%s:%d", ar.short_src, ar.linedefined);
        else
            snprintf(cb->where[h], sizeof cb->where[h], "%s", ar.short_src);
        cb->ref[h] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    static const lua_CFunction fns[F_COUNT] = {ctx_history, ctx_log, ctx_stop};
    for (int i = 0; i < F_COUNT; i++) {
        lua_pushlightuserdata(L, cb);
        lua_pushcclosure(L, fns[i], 1);
        cb->fn_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

int rn_lua_callback_is_spec(const rn_value *spec)
{
    if (spec == NULL)
        return 0;
    if (spec->type == RN_V_FUNCTION)
        return 1;
    if (spec->type != RN_V_TABLE || spec->n_items)
        return 0;
    for (size_t i = 0; i < spec->n_fields; i++)
        if (spec->fields[i]->type == RN_V_FUNCTION || strncmp(spec->keys[i], "on_", 3) == 0)
            return 1;
    return 0;
}

static void hook_list(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; rn_lua_callback_hooks[i] && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
                                rn_lua_callback_hooks[i]);
}

/* The spec's shape, before anything touches Lua. */
static int check_spec(const rn_value *spec, char *err, size_t errlen)
{
    const char *want = "a table of hooks like { on_epoch_end = function(ctx) ... end }";
    if (spec->type != RN_V_TABLE)
        return rn_value_expected(spec, want, err, errlen);
    if (spec->n_items) {
        snprintf(err, errlen, "%s: a table of Lua hooks has only named fields (on_epoch_end = "
                 "function(ctx) ... end); a plugin callback names its id first ({\"progress\"})",
                 rn_value_display_path(spec->items[0]->path));
        return -1;
    }
    for (size_t i = 0; i < spec->n_fields; i++) {
        const rn_value *f = spec->fields[i];
        if (hook_index(spec->keys[i]) < 0) {
            char hooks[256];
            hook_list(hooks, sizeof hooks);
            snprintf(err, errlen, "%s: unknown hook (expected one of %s)", f->path, hooks);
            return -1;
        }
        if (f->type != RN_V_FUNCTION)
            return rn_value_expected(f, "a function", err, errlen);
        if (f->fn_ref == LUA_NOREF || f->fn_ref == LUA_REFNIL) {
            snprintf(err, errlen, "%s: the function is not in the recipe's Lua state", f->path);
            return -1;
        }
    }
    return 0;
}

static void release(lua_callback *cb)
{
    if (cb == NULL)
        return;
    lua_State *L = cb->sb ? rn_sandbox_state(cb->sb) : NULL;
    for (int i = 0; i < H_COUNT; i++) {
        if (L && cb->ref[i] != LUA_NOREF)
            luaL_unref(L, LUA_REGISTRYINDEX, cb->ref[i]);
        free(cb->path[i]);
    }
    for (int i = 0; i < F_COUNT; i++)
        if (L && cb->fn_ref[i] != LUA_NOREF)
            luaL_unref(L, LUA_REGISTRYINDEX, cb->fn_ref[i]);
    free(cb->spec_path);
    free(cb);
}

int rn_lua_callback_create(rn_sandbox *sb, const rn_value *spec, const rn_host *host,
                           rn_ctx *ctx, void **self, char *err, size_t errlen)
{
    if (sb == NULL || spec == NULL || host == NULL) {
        snprintf(err, errlen, "%s: a Lua callback needs the recipe's sandbox and a host",
                 spec ? rn_value_display_path(spec->path) : "callbacks");
        return -1;
    }
    if (check_spec(spec, err, errlen) != 0)
        return -1;
    lua_callback *cb = calloc(1, sizeof *cb);
    if (cb == NULL) {
        snprintf(err, errlen, "%s: out of memory", rn_value_display_path(spec->path));
        return -1;
    }
    cb->sb = sb;
    cb->host = host;
    cb->ctx = ctx;
    for (int i = 0; i < H_COUNT; i++)
        cb->ref[i] = LUA_NOREF;
    for (int i = 0; i < F_COUNT; i++)
        cb->fn_ref[i] = LUA_NOREF;
    int oom = (cb->spec_path = strdup(rn_value_display_path(spec->path))) == NULL;
    for (size_t i = 0; !oom && i < spec->n_fields; i++)
        oom = (cb->path[hook_index(spec->keys[i])] = strdup(spec->fields[i]->path)) == NULL;
    if (oom) {
        release(cb);
        snprintf(err, errlen, "%s: out of memory", rn_value_display_path(spec->path));
        return -1;
    }
    char msg[400];
    cb->spec = spec;
    int rc = rn_sandbox_call(sb, create_body, cb, msg, sizeof msg);
    cb->spec = NULL;
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", rn_value_display_path(spec->path), msg);
        release(cb);
        return -1;
    }
    *self = cb;
    return 0;
}

void rn_lua_callback_destroy(void *self)
{
    release(self);
}

/* ---- the descriptor ------------------------------------------------------------------------ */

static int refuse_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    host->set_error(ctx, "a Lua callback is made from its table in the recipe "
                    "({ on_epoch_end = function(ctx) ... end }), not by id");
    return RN_ERR_CONFIG;
}

static const rn_plugin lua_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = RN_LUA_CALLBACK_ID,
    .version = "1.0.0",
    .summary = "hooks written in Lua in the recipe: { on_epoch_end = function(ctx) ... end }",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = NULL,
    .n_settings = 0,
    .create = refuse_create,
    .destroy = rn_lua_callback_destroy,
    .api = &rn_lua_callback_api,
};

const rn_plugin *rn_lua_callback_plugin(void)
{
    return &lua_plugin;
}

/* ---- where functions may appear ------------------------------------------------------------ */

static int refuse(const rn_value *v, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: expected a value, got a Lua function (functions are only allowed "
             "as callback hooks: callbacks = { { on_epoch_end = function(ctx) ... end } })",
             rn_value_display_path(v->path));
    return -1;
}

/* Every function under v is refused. */
static int no_functions(const rn_value *v, char *err, size_t errlen)
{
    if (v == NULL)
        return 0;
    if (v->type == RN_V_FUNCTION)
        return refuse(v, err, errlen);
    if (v->type != RN_V_TABLE)
        return 0;
    for (size_t i = 0; i < v->n_items; i++)
        if (no_functions(v->items[i], err, errlen) != 0)
            return -1;
    for (size_t i = 0; i < v->n_fields; i++)
        if (no_functions(v->fields[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* A callbacks list: items may be functions or hold them as fields (checked at create). */
static int callbacks_list(const rn_value *list, char *err, size_t errlen)
{
    if (list->type != RN_V_TABLE)
        return no_functions(list, err, errlen);
    for (size_t i = 0; i < list->n_fields; i++)
        if (no_functions(list->fields[i], err, errlen) != 0)
            return -1;
    for (size_t i = 0; i < list->n_items; i++) {
        const rn_value *item = list->items[i];
        if (item->type != RN_V_TABLE)
            continue;
        for (size_t k = 0; k < item->n_items; k++)
            if (no_functions(item->items[k], err, errlen) != 0)
                return -1;
        for (size_t k = 0; k < item->n_fields; k++)
            if (item->fields[k]->type != RN_V_FUNCTION &&
                no_functions(item->fields[k], err, errlen) != 0)
                return -1;
    }
    return 0;
}

/* A table that may hold a callbacks field (the recipe, a stage). */
static int with_callbacks(const rn_value *t, int stages_too, char *err, size_t errlen)
{
    if (t->type != RN_V_TABLE)
        return no_functions(t, err, errlen);
    for (size_t i = 0; i < t->n_items; i++)
        if (no_functions(t->items[i], err, errlen) != 0)
            return -1;
    for (size_t i = 0; i < t->n_fields; i++) {
        const rn_value *f = t->fields[i];
        int rc;
        if (strcmp(t->keys[i], "callbacks") == 0) {
            rc = callbacks_list(f, err, errlen);
        } else if (stages_too && strcmp(t->keys[i], "stages") == 0 && f->type == RN_V_TABLE) {
            rc = 0;
            for (size_t k = 0; rc == 0 && k < f->n_fields; k++)
                rc = no_functions(f->fields[k], err, errlen);
            for (size_t k = 0; rc == 0 && k < f->n_items; k++)
                rc = with_callbacks(f->items[k], 0, err, errlen);
        } else {
            rc = no_functions(f, err, errlen);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

int rn_lua_callback_check_tree(const rn_value *root, char *err, size_t errlen)
{
    if (root == NULL)
        return 0;
    return with_callbacks(root, 1, err, errlen);
}
