/* Lua callbacks in a recipe: the tree keeps their functions (and their source), the "lua" callback
 * adapter calls them with a ctx table through a fake host, maps stop requests, reports errors
 * with the recipe's file:line, stops runaway hooks with the per-call budget, refuses bad hook
 * tables and functions outside callbacks, and recipe.lua written from the tree loads back. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lua_callback.h"
#include "lua_source.h"
#include "rn_test.h"
#include "sandbox.h"

static char dir[] = "/tmp/rn-luacb-XXXXXX";
static char err[1024];

/* ---- a fake host: known metrics, a log and an error line ----------------------------------- */

struct rn_ctx {
    char error[512];
    char log[4096];
    int n_log;
    int last_level;
};

static void fake_set_error(rn_ctx *ctx, const char *fmt, ...)
{
    if (ctx->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
}

static void fake_log(rn_ctx *ctx, rn_log_level level, const char *fmt, ...)
{
    size_t off = strlen(ctx->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->log + off, sizeof ctx->log - off, fmt, ap);
    va_end(ap);
    off = strlen(ctx->log);
    if (off + 1 < sizeof ctx->log)
        strcat(ctx->log, "\n");
    ctx->n_log++;
    ctx->last_level = (int)level;
}

static const char *const metric_names[] = {"test.acc", "test.loss", "train.loss"};

static size_t fake_metric_count(rn_ctx *ctx) { return 3; }

static int fake_metric_at(rn_ctx *ctx, size_t i, const char **name, double *value)
{
    static const double values[] = {0.925, 0.25, NAN};
    if (i >= 3)
        return 0;
    *name = metric_names[i];
    *value = values[i];
    return 1;
}

/* "test.acc": 0.5, 0.7, 0.9; "long": 0..99 (more than the adapter's stack buffer). */
static size_t fake_metric_history(rn_ctx *ctx, const char *name, double *out, size_t cap)
{
    size_t n = strcmp(name, "test.acc") == 0 ? 3 : strcmp(name, "long") == 0 ? 100 : 0;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = n == 3 ? 0.5 + 0.2 * (double)i : (double)i;
    return n;
}

static rn_host fake_host(void)
{
    rn_host h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    h.abi_major = RN_ABI_MAJOR;
    h.abi_minor = RN_ABI_MINOR;
    h.set_error = fake_set_error;
    h.log = fake_log;
    h.metric_count = fake_metric_count;
    h.metric_at = fake_metric_at;
    h.metric_history = fake_metric_history;
    return h;
}

static rn_event event(void)
{
    rn_event e = {sizeof e, "fit", 1, 3, 40, 120, 2, 5, 20, 140, 0.375, 0.0125, 2500.5, 12.25};
    return e;
}

/* ---- recipes ------------------------------------------------------------------------------- */

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

/* 1-based line of the first line of text containing marker. */
static int line_of(const char *text, const char *marker)
{
    const char *at = strstr(text, marker);
    if (at == NULL)
        return -1;
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

static rn_sandbox *new_sandbox(size_t memory)
{
    rn_sandbox_limits limits = {memory, 0};
    const char *lib = getenv("RN_RECIPE_LIB");
    rn_sandbox *sb = rn_sandbox_new(lib ? lib : "recipes", &limits, err, sizeof err);
    if (sb == NULL) {
        fprintf(stderr, "sandbox: %s\n", err);
        exit(2);
    }
    return sb;
}

static rn_value *load(rn_sandbox *sb, const char *path)
{
    err[0] = '\0';
    rn_value *v = rn_sandbox_run_file(sb, path, err, sizeof err);
    if (v == NULL)
        fprintf(stderr, "  load %s: %s\n", path, err);
    return v;
}

static const rn_value *callback_item(const rn_value *root, size_t i)
{
    return rn_value_item(rn_value_field(root, "callbacks"), i);
}

/* ---- the main recipe ------------------------------------------------------------------------ */

static const char recipe[] =
    "local limit = 0.9\n"
    "local fmt = string.format\n"
    "local calls = 0\n"
    "local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end\n"
    "return {\n"
    "  epochs = 1,\n"
    "  callbacks = {\n"
    "    { \"progress\" },\n"
    "    {\n"
    "      on_run_begin = function(ctx) ctx.stop(\"stage\") return \"stop_run\" end,\n"
    "      on_stage_begin = function(ctx) return \"stop_stage\" end,\n"
    "      on_step_end = function(ctx) ctx.stop(\"run\") end,\n"
    "      on_eval_end = function(ctx) return ctx.metrics[\"test.acc\"] > 2 and \"stop_run\" end,\n"
    "      on_epoch_end = function(ctx)\n"
    "        calls = calls + 1\n"
    "        local m = ctx.metrics\n"
    "        ctx.log(fmt(\"%s|%s|%d|%d|%d|%d|%d|%d|%d|%d\", ctx.hook, ctx.stage, ctx.stage_index,\n"
    "          ctx.stage_count, ctx.step, ctx.total_steps, ctx.epoch, ctx.epochs,\n"
    "          ctx.steps_per_epoch, ctx.global_step))\n"
    "        ctx.log(fmt(\"%.4f|%.4f|%.1f|%.2f|%s|%s\", ctx.loss, ctx.lr, ctx.images_per_s,\n"
    "          ctx.elapsed_s, math.type(ctx.step), math.type(ctx.loss)))\n"
    "        local nan = m[\"train.loss\"]\n"
    "        ctx.log(fmt(\"%.3f|%.2f|%s\", m[\"test.acc\"], m[\"test.loss\"], tostring(nan ~= nan)),\n"
    "          \"warn\")\n"
    "        local h, long, sum = ctx.history(\"test.acc\"), ctx.history(\"long\"), 0\n"
    "        for _, x in ipairs(long) do sum = sum + x end\n"
    "        ctx.log(fmt(\"%d|%.1f|%.1f|%d|%d|%d|%d\", #h, h[1], h[3], #long, sum,\n"
    "          #ctx.history(\"nothing\"), fact(5)))\n"
    "        local stop = m[\"test.acc\"] > limit\n"
    "        ctx.epoch = 99\n"
    "        ctx.metrics[\"test.acc\"] = 0\n"
    "        if stop then ctx.log(\"calls \" .. calls) return \"stop_run\" end\n"
    "      end,\n"
    "      on_run_end = function(ctx) return \"stop\" end,\n"
    "    },\n"
    "  },\n"
    "}\n";

static void test_hooks(void)
{
    rn_sandbox *sb = new_sandbox(0);
    rn_value *root = load(sb, write_file("cb.lua", recipe));
    CHECK(root != NULL);
    if (root == NULL) {
        rn_sandbox_free(sb);
        return;
    }
    const rn_value *spec = callback_item(root, 1);
    CHECK(rn_lua_callback_is_spec(spec));
    CHECK(!rn_lua_callback_is_spec(callback_item(root, 0)));
    CHECK(rn_lua_callback_check_tree(root, err, sizeof err) == 0);

    rn_host host = fake_host();
    rn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    void *self = NULL;
    CHECK(rn_lua_callback_create(sb, spec, &host, &ctx, &self, err, sizeof err) == 0);
    if (self == NULL) {
        fprintf(stderr, "  create: %s\n", err);
        rn_value_free(root);
        rn_sandbox_free(sb);
        return;
    }
    /* The adapter keeps its own references: the tree can go. */
    rn_value_free(root);

    const rn_callback_api *api = rn_lua_callback_plugin()->api;
    CHECK(api == &rn_lua_callback_api);
    CHECK(rn_lua_callback_plugin()->kind == RN_KIND_CALLBACK);
    CHECK(strcmp(rn_lua_callback_plugin()->id, "lua") == 0);
    rn_event e = event();

    /* Stop requests: the return value, ctx.stop, and the stronger of both. */
    CHECK(api->on_run_begin(self, &e) == RN_STOP_RUN);
    CHECK(api->on_stage_begin(self, &e) == RN_STOP_STAGE);
    CHECK(api->on_step_end(self, &e) == RN_STOP_RUN);
    CHECK(api->on_eval_end(self, &e) == RN_CONTINUE); /* `cond and "stop_run"` gives false */
    CHECK(api->on_stage_end(self, &e) == RN_CONTINUE); /* not defined */
    CHECK(ctx.error[0] == '\0');

    /* What the hook saw. */
    CHECK(api->on_epoch_end(self, &e) == RN_STOP_RUN);
    if (ctx.error[0])
        fprintf(stderr, "  on_epoch_end: %s\n", ctx.error);
    const char *want =
        "callbacks[2]: on_epoch_end|fit|1|3|40|120|2|5|20|140\n"
        "callbacks[2]: 0.3750|0.0125|2500.5|12.25|integer|float\n"
        "callbacks[2]: 0.925|0.25|true\n"
        "callbacks[2]: 3|0.5|0.9|100|4950|0|120\n"
        "callbacks[2]: calls 1\n";
    CHECK(strcmp(ctx.log, want) == 0);
    if (strcmp(ctx.log, want) != 0)
        fprintf(stderr, "  log:\n%s  want:\n%s", ctx.log, want);
    CHECK(ctx.n_log == 5 && ctx.last_level == RN_LOG_INFO);

    /* Writes to ctx did not stick: the second call sees the same values (and its upvalue state
     * goes on: calls is 2). */
    ctx.log[0] = '\0';
    CHECK(api->on_epoch_end(self, &e) == RN_STOP_RUN);
    CHECK(strstr(ctx.log, "|2|5|20|140\n") != NULL);
    CHECK(strstr(ctx.log, "calls 2\n") != NULL);

    /* A bad return value names the hook and where its function begins. */
    CHECK(api->on_run_end(self, &e) == RN_ERR);
    char line[700];
    snprintf(line, sizeof line, "callbacks[2].on_run_end: %s/cb.lua:%d: the hook returned string "
             "\"stop\" (expected nil, \"stop_stage\" or \"stop_run\")", dir,
             line_of(recipe, "on_run_end ="));
    CHECK(strcmp(ctx.error, line) == 0);
    if (strcmp(ctx.error, line) != 0)
        fprintf(stderr, "  got  %s\n  want %s\n", ctx.error, line);

    rn_lua_callback_destroy(self);
    rn_sandbox_free(sb);
}

/* ---- errors inside hooks -------------------------------------------------------------------- */

static const char errors_recipe[] =
    "return {\n"
    "  callbacks = {\n"
    "    {\n"
    "      on_epoch_end = function(ctx)\n"
    "        if ctx.metrics[\"val.acc\"] > 0.9 then return \"stop_run\" end\n"
    "      end,\n"
    "      on_eval_end = function(ctx)\n"
    "        local t = nil\n"
    "        return t.x\n"
    "      end,\n"
    "      on_step_end = function(ctx) return ctx.epcoh end,\n"
    "      on_stage_end = function(ctx) ctx.stop(\"everything\") end,\n"
    "      on_run_begin = function(ctx)\n"
    "        local n = 0\n"
    "        while true do n = n + 1 end\n"
    "      end,\n"
    "      on_stage_begin = function(ctx)\n"
    "        local ok = pcall(function() while true do end end)\n"
    "        return ok\n"
    "      end,\n"
    "      on_run_end = function(ctx)\n"
    "        local t = {}\n"
    "        for i = 1, 1e9 do t[i] = string.rep(\"x\", 1 << 20) .. i end\n"
    "      end,\n"
    "    },\n"
    "  },\n"
    "}\n";

/* Calls hook and checks the error line is exactly "callbacks[1].<hook>: <file>:<line>: <msg>". */
static void expect_hook_error(const rn_callback_api *api, void *self, rn_ctx *ctx,
                              int (*hook)(void *, const rn_event *), const char *name,
                              const char *marker, const char *msg)
{
    rn_event e = event();
    ctx->error[0] = '\0';
    CHECK(hook(self, &e) == RN_ERR);
    char want[800];
    if (marker)
        snprintf(want, sizeof want, "callbacks[1].%s: %s/errors.lua:%d: %s", name, dir,
                 line_of(errors_recipe, marker), msg);
    else
        snprintf(want, sizeof want, "callbacks[1].%s: %s", name, msg);
    CHECK(strcmp(ctx->error, want) == 0);
    if (strcmp(ctx->error, want) != 0)
        fprintf(stderr, "  got  %s\n  want %s\n", ctx->error, want);
    CHECK(strchr(ctx->error, '\n') == NULL);
}

static void test_errors(void)
{
    rn_sandbox *sb = new_sandbox(16 << 20);
    rn_value *root = load(sb, write_file("errors.lua", errors_recipe));
    CHECK(root != NULL);
    if (root == NULL) {
        rn_sandbox_free(sb);
        return;
    }
    rn_host host = fake_host();
    rn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    void *self = NULL;
    CHECK(rn_lua_callback_create(sb, callback_item(root, 0), &host, &ctx, &self, err,
                                 sizeof err) == 0);
    rn_value_free(root);
    if (self == NULL)
        return;
    const rn_callback_api *api = &rn_lua_callback_api;

    expect_hook_error(api, self, &ctx, api->on_epoch_end, "on_epoch_end", "val.acc",
                      "ctx.metrics has no metric 'val.acc' (metrics: test.acc, "
                      "test.loss, train.loss)");
    expect_hook_error(api, self, &ctx, api->on_eval_end, "on_eval_end", "return t.x",
                      "attempt to index a nil value (local 't')");
    expect_hook_error(api, self, &ctx, api->on_step_end, "on_step_end", "ctx.epcoh",
                      "ctx has no field 'epcoh' (fields: elapsed_s, epoch, epochs, global_step, "
                      "history, hook, images_per_s, log, loss, lr, metrics, stage, stage_count, "
                      "stage_index, step, steps_per_epoch, stop, total_steps)");
    expect_hook_error(api, self, &ctx, api->on_stage_end, "on_stage_end", "everything",
                      "ctx.stop: expected \"stage\" or \"run\", got string \"everything\"");

    /* A runaway hook is stopped by the per-call budget, every time, and pcall cannot hide it. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_hook_error(api, self, &ctx, api->on_run_begin, "on_run_begin", "n = n + 1",
                      "instruction budget of 10000000 exceeded (endless loop?)");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("a runaway hook stopped after %.3f s\n", seconds);
    CHECK(seconds < 5);
    expect_hook_error(api, self, &ctx, api->on_run_begin, "on_run_begin", "n = n + 1",
                      "instruction budget of 10000000 exceeded (endless loop?)");
    expect_hook_error(api, self, &ctx, api->on_stage_begin, "on_stage_begin", "while true do end",
                      "instruction budget of 10000000 exceeded (endless loop?)");
    rn_sandbox_set_call_budget(sb, 100000);
    expect_hook_error(api, self, &ctx, api->on_run_begin, "on_run_begin", "n = n + 1",
                      "instruction budget of 100000 exceeded (endless loop?)");
    rn_sandbox_set_call_budget(sb, 0);

    /* The memory cap holds inside hooks too. */
    expect_hook_error(api, self, &ctx, api->on_run_end, "on_run_end", NULL,
                      "memory limit of 16 MiB exceeded");

    /* After all that, the state still works: a fresh budget per call. */
    rn_lua_callback_destroy(self);
    rn_value *ok = load(sb, write_file("after.lua", "return { callbacks = { { on_epoch_end = "
                                                    "function(ctx) local n = 0\n for i = 1, 2000000 "
                                                    "do n = n + i end\n ctx.log(n) end } } }\n"));
    CHECK(ok != NULL);
    self = NULL;
    memset(&ctx, 0, sizeof ctx);
    if (ok && rn_lua_callback_create(sb, callback_item(ok, 0), &host, &ctx, &self, err,
                                     sizeof err) == 0) {
        rn_event e = event();
        for (int i = 0; i < 3; i++)
            CHECK(api->on_epoch_end(self, &e) == RN_CONTINUE);
        CHECK(strcmp(ctx.log, "callbacks[1]: 2000001000000\ncallbacks[1]: 2000001000000\n"
                              "callbacks[1]: 2000001000000\n") == 0);
        rn_lua_callback_destroy(self);
    }
    rn_value_free(ok);

    /* Lua's own errors call the table ctx. */
    ok = load(sb, write_file("arith.lua", "return { callbacks = { { on_epoch_end = "
                                          "function(ctx) return ctx + 1 end } } }\n"));
    self = NULL;
    memset(&ctx, 0, sizeof ctx);
    if (ok && rn_lua_callback_create(sb, callback_item(ok, 0), &host, &ctx, &self, err,
                                     sizeof err) == 0) {
        rn_event e = event();
        CHECK(api->on_epoch_end(self, &e) == RN_ERR);
        CHECK(strstr(ctx.error, "/arith.lua:1: attempt to perform arithmetic on a ctx value "
                                "(local 'ctx')") != NULL);
        rn_lua_callback_destroy(self);
    }
    rn_value_free(ok);
    rn_sandbox_free(sb);
}

/* ---- refusals ------------------------------------------------------------------------------- */

static void expect_create_error(rn_sandbox *sb, const char *name, const char *text,
                                size_t item, const char *want)
{
    rn_value *root = load(sb, write_file(name, text));
    CHECK(root != NULL);
    if (root == NULL)
        return;
    rn_host host = fake_host();
    rn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    void *self = (void *)&ctx;
    err[0] = '\0';
    CHECK(rn_lua_callback_create(sb, callback_item(root, item), &host, &ctx, &self, err,
                                 sizeof err) != 0);
    CHECK(self == (void *)&ctx);
    CHECK(strcmp(err, want) == 0);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "  got  %s\n  want %s\n", err, want);
    rn_value_free(root);
}

static void expect_tree_error(rn_sandbox *sb, const char *name, const char *text,
                              const char *want_path)
{
    rn_value *root = load(sb, write_file(name, text));
    CHECK(root != NULL);
    if (root == NULL)
        return;
    char want[400];
    snprintf(want, sizeof want, "%s: expected a value, got a Lua function (functions are only "
             "allowed as callback hooks: callbacks = { { on_epoch_end = function(ctx) ... end } })",
             want_path);
    CHECK(rn_lua_callback_check_tree(root, err, sizeof err) != 0);
    CHECK(strcmp(err, want) == 0);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "  got  %s\n  want %s\n", err, want);
    rn_value_free(root);
}

static void test_refusals(void)
{
    rn_sandbox *sb = new_sandbox(0);
    expect_create_error(sb, "typo.lua",
                        "return { callbacks = { {'progress'},\n"
                        "  { on_epok_end = function(ctx) end } } }\n", 1,
                        "callbacks[2].on_epok_end: unknown hook (expected one of on_run_begin, "
                        "on_stage_begin, on_step_end, on_epoch_end, on_eval_end, on_stage_end, "
                        "on_run_end)");
    expect_create_error(sb, "notfn.lua", "return { callbacks = { { on_epoch_end = 5 } } }\n", 0,
                        "callbacks[1].on_epoch_end: expected a function, got number 5");
    expect_create_error(sb, "bare.lua", "return { callbacks = { function(ctx) end } }\n", 0,
                        "callbacks[1]: expected a table of hooks like { on_epoch_end = "
                        "function(ctx) ... end }, got function");
    expect_create_error(sb, "mixed.lua",
                        "return { callbacks = { { 'x', on_epoch_end = function() end } } }\n", 0,
                        "callbacks[1][1]: a table of Lua hooks has only named fields "
                        "(on_epoch_end = function(ctx) ... end); a plugin callback names its id "
                        "first ({\"progress\"})");

    /* Which items are Lua callbacks. */
    rn_value *root = load(sb, write_file("kinds.lua",
                                         "return { callbacks = { 'progress', {'csv_logger'},\n"
                                         "  { patience = 3 }, { on_epoch_end = 1 }, {},\n"
                                         "  { 'x', on_epoch_end = function() end },\n"
                                         "  function() end } }\n"));
    CHECK(root != NULL);
    if (root) {
        const int want[] = {0, 0, 0, 1, 0, 0, 1};
        for (size_t i = 0; i < 7; i++)
            CHECK(rn_lua_callback_is_spec(callback_item(root, i)) == want[i]);
    }
    rn_value_free(root);

    /* Functions anywhere else are refused with their key path. */
    expect_tree_error(sb, "lr.lua", "return { optimizer = { 'sgd', lr = function() end } }\n",
                      "optimizer.lr");
    expect_tree_error(sb, "desc.lua", "return { description = function() end }\n",
                      "description");
    expect_tree_error(sb, "deep.lua",
                      "return { data = { augment = { { 'hflip', p = { function() end } } } } }\n",
                      "data.augment[1].p[1]");
    expect_tree_error(sb, "nested.lua",
                      "return { callbacks = { { on_epoch_end = { function() end } } } }\n",
                      "callbacks[1].on_epoch_end[1]");
    expect_tree_error(sb, "stagecb.lua",
                      "return { stages = { { epochs = 1, schedule = { 'x', f = tostring } } } }\n",
                      "stages[1].schedule.f");
    root = load(sb, write_file("stageok.lua",
                               "return { stages = { { epochs = 1, callbacks = {\n"
                               "  { on_epoch_end = function() end } } } },\n"
                               "  callbacks = { function() end, { on_run_end = function() end } } }\n"));
    CHECK(root != NULL && rn_lua_callback_check_tree(root, err, sizeof err) == 0);
    rn_value_free(root);

    /* The descriptor cannot make an instance by id. */
    rn_host host = fake_host();
    rn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    void *self = NULL;
    CHECK(rn_lua_callback_plugin()->create(&host, &ctx, &self) == RN_ERR_CONFIG);
    CHECK(self == NULL && strstr(ctx.error, "made from its table in the recipe") != NULL);
    rn_sandbox_free(sb);
}

/* ---- the tree: --set, clone, equal ---------------------------------------------------------- */

static void test_tree(void)
{
    rn_sandbox *sb = new_sandbox(0);
    rn_value *root = load(sb, write_file("tree.lua",
                                         "return { callbacks = { { on_epoch_end = function(ctx) "
                                         "return 'stop_run' end,\n"
                                         "  on_run_end = function(ctx) end } } }\n"));
    CHECK(root != NULL);
    if (root == NULL) {
        rn_sandbox_free(sb);
        return;
    }
    const rn_value *fn = rn_value_field(callback_item(root, 0), "on_epoch_end");
    CHECK(fn && fn->type == RN_V_FUNCTION && fn->fn_ref != LUA_NOREF);
    CHECK(fn && fn->s && strcmp(fn->s, "function(ctx) return 'stop_run' end") == 0);

    rn_value *copy = rn_value_clone(root);
    CHECK(copy && rn_value_equal(root, copy));
    const rn_value *cfn = rn_value_field(callback_item(copy, 0), "on_epoch_end");
    CHECK(cfn && cfn->type == RN_V_FUNCTION && cfn->fn_ref == fn->fn_ref &&
          strcmp(cfn->s, fn->s) == 0);
    /* Functions with other text differ. */
    CHECK(!rn_value_equal(fn, rn_value_field(callback_item(root, 0), "on_run_end")));

    CHECK(rn_value_set(copy, "callbacks[1].on_epoch_end=function(ctx) end", err, sizeof err) != 0);
    CHECK(strcmp(err, "--set callbacks[1].on_epoch_end=function(ctx) end: functions cannot be "
                      "given on the command line (write the callback in the recipe)") == 0);
    CHECK(rn_value_set(copy, "callbacks[1].on_epoch_end.x=1", err, sizeof err) != 0);
    CHECK(strcmp(err, "--set callbacks[1].on_epoch_end.x=1: callbacks[1].on_epoch_end is a "
                      "function, not a table") == 0);
    CHECK(rn_value_set(copy, "callbacks[1].on_epoch_end=nil", err, sizeof err) == 0);
    CHECK(rn_value_field(callback_item(copy, 0), "on_epoch_end") == NULL);
    CHECK(rn_value_set(copy, "callbacks[1].on_run_end=\"functional\"", err, sizeof err) == 0);
    CHECK(rn_value_field(callback_item(copy, 0), "on_run_end")->type == RN_V_STRING);
    CHECK(!rn_value_equal(root, copy));
    /* The function the tree no longer has still runs from the original. */
    rn_host host = fake_host();
    rn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    void *self = NULL;
    CHECK(rn_lua_callback_create(sb, callback_item(root, 0), &host, &ctx, &self, err,
                                 sizeof err) == 0);
    rn_value_free(copy);
    rn_value_free(root);
    rn_event e = event();
    CHECK(self && rn_lua_callback_api.on_epoch_end(self, &e) == RN_STOP_RUN);
    rn_lua_callback_destroy(self);
    rn_sandbox_free(sb);
}

/* ---- recipe.lua written from the tree ------------------------------------------------------- */

static char *write_tree(const rn_value *v)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL && rn_value_write_lua(v, f) == 0);
    fclose(f);
    return text;
}

/* Calls every hook of callbacks[item] with the fake host; returns the log plus the controls. */
static void run_hooks(rn_sandbox *sb, const rn_value *root, size_t item, char *out, size_t len)
{
    rn_host host = fake_host();
    rn_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    void *self = NULL;
    out[0] = '\0';
    if (rn_lua_callback_create(sb, callback_item(root, item), &host, &ctx, &self, err,
                               sizeof err) != 0) {
        snprintf(out, len, "create: %s", err);
        return;
    }
    rn_event e = event();
    const rn_callback_api *a = &rn_lua_callback_api;
    int (*hooks[])(void *, const rn_event *) = {a->on_run_begin, a->on_stage_begin,
                                               a->on_step_end,  a->on_epoch_end,
                                               a->on_eval_end,  a->on_stage_end,
                                               a->on_run_end};
    char rcs[64] = "";
    for (size_t i = 0; i < 7; i++) {
        int rc = hooks[i](self, &e);
        snprintf(rcs + strlen(rcs), sizeof rcs - strlen(rcs), "%d ", rc);
    }
    snprintf(out, len, "%s%s| %s", ctx.log, rcs, ctx.error);
    rn_lua_callback_destroy(self);
}

static const char module_text[] =
    "local M = {}\n"
    "local scale = 10\n"
    "function M.on_step_end(ctx) ctx.log('module ' .. ctx.step * scale) end\n"
    "function M:method(ctx) return self, ctx end\n"
    "return M\n";

static const char round_recipe[] =
    "#!/usr/bin/env runner\n"
    "local helpers = import 'cbmod'\n"
    "local limit, name = 0.9, \"best\\n\\\"acc\\\"\"\n"
    "local floor, strlib = math.floor, string\n"
    "local levels = { warn = 'warn', list = { 1, 2.5, true } }\n"
    "local recipe\n"
    "local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end\n"
    "local function shared() return 'shared' end\n"
    "recipe = {\n"
    "  epochs = 1,\n"
    "  callbacks = {\n"
    "    { 'progress' },\n"
    "    { on_run_begin = function(ctx) ctx.log('a') end, on_stage_begin = function(ctx) "
    "ctx.log('b' .. ctx.stage) end },\n"
    "    {\n"
    "      on_epoch_end = function(ctx)\n"
    "        -- a comment with end and function in it: [[ end ]]\n"
    "        local s = [==[ ]] end function ( ]==]\n"
    "        ctx.log(strlib.format('%s %d %d %s', name, floor(ctx.metrics['test.acc'] * 100),\n"
    "          fact(4), levels.list[2]), levels.warn)\n"
    "        if ctx.metrics['test.acc'] > limit then return 'stop_run' end\n"
    "      end,\n"
    "      on_step_end = helpers.on_step_end,\n"
    "      on_eval_end = function(ctx) return shared() == 'shared' and 'stop_stage' end,\n"
    "      on_run_end = function(ctx) return recipe.epochs end,\n"
    "      on_stage_end = math.type,\n"
    "    },\n"
    "  },\n"
    "}\n"
    "return recipe\n";

static void test_write_lua(void)
{
    write_file("cbmod.lua", module_text);
    rn_sandbox *sb = new_sandbox(0);
    rn_value *root = load(sb, write_file("round.lua", round_recipe));
    CHECK(root != NULL);
    if (root == NULL) {
        rn_sandbox_free(sb);
        return;
    }
    const rn_value *item = callback_item(root, 2);
    const rn_value *epoch = rn_value_field(item, "on_epoch_end");
    const char *head = "(function()\n  local fact = (function()\n  local fact\n  fact = function(n)";
    CHECK(epoch->s != NULL && strncmp(epoch->s, head, strlen(head)) == 0);
    CHECK(epoch->s && strstr(epoch->s, "  local floor = math.floor\n") != NULL);
    CHECK(epoch->s && strstr(epoch->s, "  local strlib = string\n") != NULL);
    CHECK(epoch->s && strstr(epoch->s, "  local limit = 0.90000000000000002\n") != NULL);
    CHECK(epoch->s && strstr(epoch->s, "  local name = \"best\\n\\\"acc\\\"\"\n") != NULL);
    CHECK(epoch->s && strstr(epoch->s, "local fact = (function()\n") != NULL);
    const rn_value *step = rn_value_field(item, "on_step_end");
    CHECK(step->s && strstr(step->s, "local scale = 10\n") != NULL);
    CHECK(step->s && strstr(step->s, "return function(ctx) ctx.log('module ' .. ctx.step * "
                                     "scale) end\n") != NULL);
    const rn_value *run_end = rn_value_field(item, "on_run_end");
    CHECK(run_end->s == NULL && run_end->fn_why &&
          strstr(run_end->fn_why, "upvalue recipe: table contains itself") != NULL);
    if (run_end->fn_why)
        printf("no source for on_run_end: %s\n", run_end->fn_why);
    CHECK(strcmp(rn_value_field(item, "on_stage_end")->s, "math.type") == 0);
    /* Two functions on one line, told apart by their keys. */
    const rn_value *two = callback_item(root, 1);
    CHECK(strcmp(rn_value_field(two, "on_run_begin")->s, "function(ctx) ctx.log('a') end") == 0);
    CHECK(strcmp(rn_value_field(two, "on_stage_begin")->s,
                 "function(ctx) ctx.log('b' .. ctx.stage) end") == 0);

    char *text = write_tree(root);
    const char *path = write_file("resolved.lua", text);

    /* Loads back in a fresh sandbox to an equal tree, whose hooks behave the same. */
    rn_sandbox *sb2 = new_sandbox(0);
    rn_value *back = load(sb2, path);
    CHECK(back != NULL);
    if (back) {
        char *again = write_tree(back);
        CHECK(strcmp(text, again) == 0); /* writing is a fixed point */
        free(again);
        /* Equal, but for the stub: read back, it is a function with source. */
        rn_value *r1 = rn_value_clone(root), *r2 = rn_value_clone(back);
        CHECK(r1 && r2 && !rn_value_equal(r1, r2));
        CHECK(rn_value_set(r1, "callbacks[3].on_run_end=nil", err, sizeof err) == 0);
        CHECK(rn_value_set(r2, "callbacks[3].on_run_end=nil", err, sizeof err) == 0);
        CHECK(rn_value_equal(r1, r2));
        rn_value_free(r1);
        rn_value_free(r2);
        char a[5000], b[5000];
        for (size_t i = 1; i <= 2; i++) {
            run_hooks(sb, root, i, a, sizeof a);
            run_hooks(sb2, back, i, b, sizeof b);
            if (i == 2) {
                /* Everything but on_run_end, which has no source: the stub says so. */
                CHECK(strstr(a, "callbacks[3].on_run_end: ") != NULL &&
                      strstr(a, "the hook returned number 1") != NULL);
                char want[600];
                snprintf(want, sizeof want, "callbacks[3].on_run_end: %s:%d: callbacks[3]."
                         "on_run_end: the source of this Lua function could not be written to "
                         "recipe.lua (upvalue recipe: table contains itself (a cycle))", path,
                         line_of(text, "runner: a stub"));
                CHECK(strstr(b, want) != NULL);
                if (strstr(b, want) == NULL)
                    fprintf(stderr, "  got  %s\n  want %s\n", b, want);
                *strstr(a, "| ") = '\0';
                *strstr(b, "| ") = '\0';
            }
            CHECK(strcmp(a, b) == 0);
            if (strcmp(a, b) != 0)
                fprintf(stderr, "  original: %s\n  reloaded: %s\n", a, b);
        }
        CHECK(strstr(a, "module 400\n") != NULL);
        CHECK(strstr(a, "best\n\"acc\" 92 24 2.5\n") != NULL);
    }
    if (getenv("RN_SHOW_RECIPE"))
        fputs(text, stdout);
    free(text);
    rn_value_free(back);
    rn_sandbox_free(sb2);
    rn_value_free(root);
    rn_sandbox_free(sb);
}

/* ---- cutting a function out of its chunk --------------------------------------------------- */

static void expect_cut(const char *text, int first, int last, int nparams, int vararg,
                       const char *name, const char *want)
{
    rn_lua_fn_info fn = {first, last, nparams, vararg, name};
    char why[200] = "";
    char *got = rn_lua_cut_function(text, strlen(text), &fn, why, sizeof why);
    if (want == NULL) {
        CHECK(got == NULL && why[0] != '\0');
    } else {
        CHECK(got != NULL && strcmp(got, want) == 0);
        if (got == NULL || strcmp(got, want) != 0)
            fprintf(stderr, "  cut: got %s (%s)\n  want %s\n", got ? got : "NULL", why, want);
    }
    free(got);
}

static void test_cut(void)
{
    const char *t = "local M = {}\nfunction M:on(a, ...) return self end\n"
                    "function M.f() end\nlocal g = function\n(ctx)\n  return 1 end\n";
    expect_cut(t, 2, 2, 2, 1, "on", "function(self, a, ...) return self end");
    expect_cut(t, 3, 3, 0, 0, "f", "function() end");
    expect_cut(t, 5, 6, 1, 0, "g", "function(ctx)\n  return 1 end");
    /* Strings and comments that look like code; repeat/until and if blocks inside. */
    t = "--[==[ function x() end\n]==] local s = 'end' local f = function(a) -- end\n"
        "  repeat a = a - 1 until a < 0 if a then do end end\n  return \"function\\\n end\" end\n";
    expect_cut(t, 2, 5, 1, 0, "f",
               "function(a) -- end\n  repeat a = a - 1 until a < 0 if a then do end end\n"
               "  return \"function\\\n end\" end");
    /* Nested on one line: the key picks the outer one; without a key it is ambiguous. */
    t = "local f = function(a) return function(b) return a + b end end\n";
    expect_cut(t, 1, 1, 1, 0, "f", "function(a) return function(b) return a + b end end");
    expect_cut(t, 1, 1, 1, 0, NULL, NULL);
    /* The same text twice is not ambiguous. */
    t = "return { function(x) end, function(x) end }\n";
    expect_cut(t, 1, 1, 1, 0, NULL, "function(x) end");
    /* Lines that hold no such function. */
    expect_cut(t, 2, 2, 1, 0, NULL, NULL);
    expect_cut(t, 1, 1, 3, 0, NULL, NULL);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_hooks();
    test_errors();
    test_refusals();
    test_tree();
    test_write_lua();
    test_cut();
    rn_test_rmtree(dir);
    return rn_test_report("test_lua_callback");
}
