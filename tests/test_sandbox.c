/* The recipe sandbox: what a recipe can and cannot reach, limits, import, errors with file:line,
 * and the conversion of the returned table to a tree. Recipes are written to a temp dir. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_test.h"
#include "sandbox.h"

static char dir[64];
static char err[1024];

static const char *write_file(const char *name, const char *text)
{
    static char paths[8][512];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* Runs text as NAME in a fresh sandbox with the given limits (0: defaults). */
static rn_value *run_limited(const char *name, const char *text, size_t memory, long long instr)
{
    rn_sandbox_limits limits = {memory, instr};
    const char *lib = getenv("RN_RECIPE_LIB");
    rn_sandbox *sb = rn_sandbox_new(lib ? lib : "recipes", &limits, err, sizeof err);
    if (sb == NULL)
        return NULL;
    err[0] = '\0';
    rn_value *v = rn_sandbox_run_file(sb, write_file(name, text), err, sizeof err);
    rn_sandbox_free(sb);
    return v;
}

static rn_value *run(const char *name, const char *text)
{
    return run_limited(name, text, 0, 0);
}

/* The recipe must fail with an error containing want. */
static void expect_error(const char *name, const char *text, const char *want)
{
    rn_value *v = run(name, text);
    CHECK(v == NULL);
    rn_value_free(v);
    CHECK(strstr(err, want) != NULL);
    CHECK(strchr(err, '\n') == NULL);
    if (strstr(err, want) == NULL)
        fprintf(stderr, "  wanted \"%s\" in \"%s\"\n", want, err);
}

static void test_forbidden(void)
{
    static const char *const names[] = {"os", "io", "require", "load", "loadfile", "dofile",
                                        "package", "debug", "collectgarbage", "loadstring"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char text[128], want[128];
        snprintf(text, sizeof text, "local a = 1\nlocal f = %s\nreturn {}\n", names[i]);
        snprintf(want, sizeof want, "forbidden.lua:2: '%s' is not available in recipes", names[i]);
        expect_error("forbidden.lua", text, want);
    }
    expect_error("dump.lua", "local a = 1\nlocal d = string.dump\nreturn {}\n",
                 "dump.lua:2: 'string.dump' is not available in recipes");
    expect_error("dump2.lua", "\n\nlocal d = ('x').dump\nreturn {}\n",
                 "dump2.lua:3: 'string.dump' is not available in recipes");
    expect_error("dump3.lua", "local s = 'x'\nreturn { s:dump() }\n",
                 "dump3.lua:2: 'string.dump' is not available in recipes");
    expect_error("typo.lua", "return {\n  lr = lr_typo,\n}\n", "typo.lua:2: unknown global 'lr_typo'");
    expect_error("setg.lua", "x = 1\nreturn {}\n",
                 "setg.lua:1: recipes may not set globals (use local)");
    expect_error("gc.lua", "local t = setmetatable({}, { __gc = function() end })\nreturn {}\n",
                 "gc.lua:1: __gc metamethods are not available in recipes");

    /* The string metatable is hidden; the libraries are copies. */
    rn_value *v = run("meta.lua", "return { mt = getmetatable(''), up = ('a'):upper(),\n"
                                  "  pi = math.pi, n = #table.pack(1, 2), sel = select('#', 1, 2, 3) }\n");
    CHECK(v != NULL);
    if (v == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    const rn_value *mt = rn_value_field(v, "mt");
    CHECK(mt && mt->type == RN_V_BOOL && mt->b == 0);
    const rn_value *up = rn_value_field(v, "up");
    CHECK(up && up->type == RN_V_STRING && strcmp(up->s, "A") == 0);
    CHECK_NEAR(rn_value_field(v, "pi")->n, 3.14159265358979, 1e-12, 0);
    CHECK(rn_value_field(v, "n")->i == 2);
    CHECK(rn_value_field(v, "sel")->i == 3);
    rn_value_free(v);

    /* math.random is seeded the same way for every run. */
    rn_value *r1 = run("rand.lua", "return { math.random(1, 1000000), math.random() }\n");
    rn_value *r2 = run("rand.lua", "return { math.random(1, 1000000), math.random() }\n");
    CHECK(r1 != NULL && rn_value_equal(r1, r2));
    rn_value_free(r1);
    rn_value_free(r2);

    /* A recipe's changes to its library copies end with its run. */
    rn_sandbox *sb = rn_sandbox_new(getenv("RN_RECIPE_LIB"), NULL, err, sizeof err);
    v = rn_sandbox_run_file(sb, write_file("spoil.lua", "string.upper = nil\nmath.pi = 3\n"
                                                          "return { up = ('a').upper }\n"),
                            err, sizeof err);
    CHECK(v != NULL && v->n_fields == 0);
    rn_value_free(v);
    v = rn_sandbox_run_file(sb, write_file("after.lua", "return { up = ('a'):upper(), pi = math.pi }\n"),
                            err, sizeof err);
    CHECK(v != NULL && strcmp(rn_value_field(v, "up")->s, "A") == 0);
    CHECK(v != NULL && rn_value_field(v, "pi")->n > 3.14);
    rn_value_free(v);
    rn_sandbox_free(sb);
}

static void test_errors(void)
{
    expect_error("syntax.lua", "return {\n  a = ,\n}\n", "syntax.lua:2:");
    expect_error("runtime.lua", "local t = nil\n\nreturn { t.x }\n", "runtime.lua:3:");
    expect_error("plain.lua", "error('boom', 0)\n", "plain.lua:1: boom");
    expect_error("object.lua", "error({})\n", "object.lua:1: (error object is a table value)");
    expect_error("nonstring.lua", "return 42\n",
                 "nonstring.lua: expected the recipe to return a table, got number");
    expect_error("noreturn.lua", "local x = 1\n",
                 "noreturn.lua: expected the recipe to return a table, got nil");
    rn_sandbox *sb = rn_sandbox_new(getenv("RN_RECIPE_LIB"), NULL, err, sizeof err);
    CHECK(rn_sandbox_run_file(sb, "/nonexistent/x.lua", err, sizeof err) == NULL);
    CHECK(strstr(err, "cannot open /nonexistent/x.lua") != NULL);
    rn_sandbox_free(sb);
    /* A recipe's own pcall still works for ordinary errors. */
    rn_value *v = run("pcall.lua", "local ok, e = pcall(error, 'x', 0)\n"
                                   "local ok2, e2 = xpcall(function() error('y', 0) end,\n"
                                   "  function(m) return 'handled ' .. m end)\n"
                                   "return { ok = ok, e = e, ok2 = ok2, e2 = e2 }\n");
    CHECK(v != NULL);
    CHECK(rn_value_field(v, "ok")->b == 0);
    CHECK(strcmp(rn_value_field(v, "e")->s, "x") == 0);
    CHECK(strcmp(rn_value_field(v, "e2")->s, "handled y") == 0);
    rn_value_free(v);
}

static void test_limits(void)
{
    rn_value *v = run_limited("loop.lua", "local i = 0\nwhile true do\n  i = i + 1\nend\n", 0, 200000);
    CHECK(v == NULL);
    CHECK(strstr(err, "loop.lua:") != NULL);
    CHECK(strstr(err, ": instruction budget of 200000 exceeded (endless loop?)") != NULL);
    /* pcall must not swallow the budget. */
    v = run_limited("loop2.lua",
                    "while true do\n  pcall(function() while true do end end)\nend\n", 0, 200000);
    CHECK(v == NULL);
    CHECK(strstr(err, "instruction budget of 200000 exceeded") != NULL);

    char want[600];
    const char *bomb = "local t = {}\nfor i = 1, 1e9 do t[i] = string.rep('x', 1 << 20) .. i end\n"
                       "return t\n";
    v = run_limited("bomb.lua", bomb, 8 << 20, 0);
    CHECK(v == NULL);
    snprintf(want, sizeof want, "%s/bomb.lua: memory limit of 8 MiB exceeded", dir);
    CHECK(strcmp(err, want) == 0);
    v = run_limited("bomb2.lua", "local t = {}\nwhile true do\n"
                                 "  pcall(function() t[#t + 1] = string.rep('y', 1 << 20) .. #t end)\n"
                                 "end\n", 8 << 20, 0);
    CHECK(v == NULL);
    CHECK(strstr(err, "bomb2.lua: memory limit of 8 MiB exceeded") != NULL);
    v = run_limited("huge.lua", "return { s = string.rep('x', 1 << 30) }\n", 0, 0);
    CHECK(v == NULL);
    CHECK(strstr(err, "huge.lua: memory limit of 64 MiB exceeded") != NULL);


    /* The sandbox is still usable after hitting a limit. */
    rn_sandbox_limits limits = {8 << 20, 0};
    rn_sandbox *sb = rn_sandbox_new(getenv("RN_RECIPE_LIB"), &limits, err, sizeof err);
    CHECK(sb != NULL);
    CHECK(rn_sandbox_run_file(sb, write_file("bomb3.lua", bomb), err, sizeof err) == NULL);
    v = rn_sandbox_run_file(sb, write_file("small.lua", "return { a = string.rep('z', 3) }\n"), err,
                            sizeof err);
    CHECK(v != NULL && strcmp(rn_value_field(v, "a")->s, "zzz") == 0);
    rn_value_free(v);
    rn_sandbox_free(sb);
}

static void test_import(void)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%s/helpers", dir);
    mkdir(sub, 0700);
    write_file("helpers/util.lua", "local M = {}\nM.x = 42\nreturn M\n");
    write_file("helpers/inner.lua", "local u = import 'util'\nreturn { x = u ~= nil }\n");
    write_file("util.lua", "return { top = true }\n");
    rn_value *v = run("imp.lua", "local h = import 'helpers.util'\nlocal nn = import 'lib.nn'\n"
                                 "return { x = h.x, layer = nn.relu(),\n"
                                 "  same = import 'helpers.util' == h,\n"
                                 "  inner = import 'helpers.inner' }\n");
    CHECK(v != NULL);
    if (v == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(rn_value_field(v, "x")->i == 42);
    const rn_value *layer = rn_value_field(v, "layer");
    CHECK(layer && layer->n_items == 1 && strcmp(layer->items[0]->s, "relu") == 0);
    CHECK(rn_value_field(v, "same")->b == 1);
    /* helpers/inner.lua imports "util" relative to its own dir: helpers/util.lua. */
    CHECK(rn_value_field(rn_value_field(v, "inner"), "x")->b == 1);
    rn_value_free(v);

    expect_error("up.lua", "local x = 1\nlocal m = import '../x'\nreturn {}\n",
                 "up.lua:2: import \"../x\": bad module name");
    expect_error("slash.lua", "local m = import 'a/b'\nreturn {}\n", "bad module name");
    expect_error("dots.lua", "local m = import 'a..b'\nreturn {}\n", "bad module name");
    expect_error("abs.lua", "local m = import '/etc/passwd'\nreturn {}\n", "bad module name");
    expect_error("nomod.lua", "local m = import 'no.such.mod'\nreturn {}\n",
                 "nomod.lua:1: import \"no.such.mod\": module not found");
    write_file("cyc_a.lua", "return import 'cyc_b'\n");
    write_file("cyc_b.lua", "local a = import 'cyc_a'\nreturn {}\n");
    expect_error("cyc.lua", "return import 'cyc_a'\n", "circular import");
    write_file("badmod.lua", "local M = {}\nM.x = undefined_thing\nreturn M\n");
    expect_error("usebad.lua", "return import 'badmod'\n", "badmod.lua:2: unknown global 'undefined_thing'");
    write_file("setmod.lua", "y = 2\nreturn {}\n");
    expect_error("usesetmod.lua", "return import 'setmod'\n",
                 "setmod.lua:1: recipes may not set globals (use local)");
}

/* string.dump output from a plain state must be refused (text chunks only). */
static int writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    return fwrite(p, 1, sz, ud) == sz ? 0 : 1;
}

static void test_binary_chunk(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/binary.lua", dir);
    lua_State *L = luaL_newstate();
    CHECK(luaL_loadstring(L, "return { evil = true }") == LUA_OK);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    lua_dump(L, writer, f, 0);
    fclose(f);
    lua_close(L);
    rn_sandbox *sb = rn_sandbox_new(getenv("RN_RECIPE_LIB"), NULL, err, sizeof err);
    rn_value *v = rn_sandbox_run_file(sb, path, err, sizeof err);
    CHECK(v == NULL);
    char want[400];
    snprintf(want, sizeof want, "%s: attempt to load a binary chunk (mode is 't')", path);
    CHECK(strcmp(err, want) == 0);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "  got  %s\n  want %s\n", err, want);
    /* ... and through import too. */
    write_file("usebin.lua", "return import 'binary'\n");
    snprintf(path, sizeof path, "%s/usebin.lua", dir);
    CHECK(rn_sandbox_run_file(sb, path, err, sizeof err) == NULL);
    CHECK(strstr(err, "usebin.lua:1: import \"binary\": ") != NULL);
    CHECK(strstr(err, "attempt to load a binary chunk") != NULL);
    rn_sandbox_free(sb);
}

static void test_conversion(void)
{
    rn_value *v = run("conv.lua", "return { a = 1, b = 1.0, c = 2^3, s = 'x', t = true,\n"
                                  "  stages = { { lr = 0.1 }, { lr = 0.01, train = { 'fc.*' } } },\n"
                                  "  zeta = 0, alpha = 'first', [\"odd key\"] = 5,\n"
                                  "  cb = function() return 7 end }\n");
    CHECK(v != NULL);
    if (v == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(strcmp(v->path, "") == 0);
    const rn_value *a = rn_value_field(v, "a"), *b = rn_value_field(v, "b");
    CHECK(a->type == RN_V_INT && a->i == 1 && a->n == 1.0);
    CHECK(b->type == RN_V_NUMBER && b->n == 1.0);
    CHECK(rn_value_field(v, "c")->type == RN_V_NUMBER);
    /* Fields sorted by key. */
    CHECK(strcmp(v->keys[0], "a") == 0 && strcmp(v->keys[1], "alpha") == 0);
    CHECK(strcmp(v->keys[v->n_fields - 1], "zeta") == 0);
    for (size_t i = 1; i < v->n_fields; i++)
        CHECK(strcmp(v->keys[i - 1], v->keys[i]) < 0);
    const rn_value *stages = rn_value_field(v, "stages");
    CHECK(stages->n_items == 2 && stages->n_fields == 0);
    CHECK(strcmp(stages->path, "stages") == 0);
    CHECK(strcmp(stages->items[1]->path, "stages[2]") == 0);
    CHECK(strcmp(rn_value_field(stages->items[1], "lr")->path, "stages[2].lr") == 0);
    CHECK(strcmp(rn_value_field(stages->items[1], "train")->items[0]->path, "stages[2].train[1]") == 0);
    CHECK(strcmp(rn_value_field(v, "odd key")->path, "[\"odd key\"]") == 0);
    rn_value_free(v);

    /* Functions stay callable through the sandbox's state. */
    rn_sandbox *sb = rn_sandbox_new(getenv("RN_RECIPE_LIB"), NULL, err, sizeof err);
    v = rn_sandbox_run_file(sb, write_file("fn.lua", "return { cb = function(x) return x * 7 end }\n"),
                            err, sizeof err);
    CHECK(v != NULL);
    const rn_value *cb = rn_value_field(v, "cb");
    CHECK(cb && cb->type == RN_V_FUNCTION);
    lua_State *L = rn_sandbox_state(sb);
    lua_rawgeti(L, LUA_REGISTRYINDEX, cb->fn_ref);
    lua_pushinteger(L, 6);
    CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK && lua_tointeger(L, -1) == 42);
    lua_settop(L, 0);
    rn_value_free(v);
    rn_sandbox_free(sb);

    expect_error("floatkey.lua", "return { [1.5] = 1 }\n", "floatkey.lua: recipe: unsupported key [1.5]");
    expect_error("boolkey.lua", "return { data = { [true] = 1 } }\n",
                 "boolkey.lua: data: unsupported key [true]");
    expect_error("tablekey.lua", "return { x = { { [{}] = 1 } } }\n",
                 "tablekey.lua: x[1]: unsupported key of type table");
    expect_error("zerokey.lua", "return { [0] = 1 }\n", "unsupported key [0]");
    expect_error("gap.lua", "return { stages = { 1, nil, 3 } }\n",
                 "gap.lua: stages: array has a gap at [2]");
    expect_error("cycle.lua", "local t = { a = {} }\nt.a.back = t\nreturn t\n",
                 "cycle.lua: a.back: table contains itself (a cycle)");
    /* Shared (non-cyclic) tables are fine: each use becomes its own subtree. */
    v = run("shared.lua", "local s = { 1 }\nreturn { a = s, b = s }\n");
    CHECK(v != NULL && strcmp(rn_value_field(v, "b")->items[0]->path, "b[1]") == 0);
    rn_value_free(v);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_sandbox_XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_forbidden();
    test_errors();
    test_limits();
    test_import();
    test_binary_chunk();
    test_conversion();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rn_test_report("test_sandbox");
}
