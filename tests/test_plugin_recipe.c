/* Plugins made from a real recipe: the fixture recipes in tests/fixtures/plugins/ run in the recipe
 * sandbox, and each plugin node goes through rn_instance_create exactly as the runner does. Checks that every
 * built-in plugin accepts its documented settings from Lua (integers, floats, booleans, strings,
 * a bare id string), that the values arrive (read back through the host), and that bad settings
 * are refused with the recipe's key path. */
#include <string.h>
#include <unistd.h>

#include "plugin_test_util.h"
#include "rn_test.h"
#include "sandbox.h"

static rn_value *load(rn_sandbox *sb, const char *name)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/plugins/%s", getenv("RN_FIXTURES"), name);
    rn_value *v = rn_sandbox_run_file(sb, path, err, sizeof err);
    if (!v) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    return v;
}

static const rn_value *at(const rn_value *root, const char *a, const char *b, int item)
{
    const rn_value *v = rn_value_field(root, a);
    if (v && b) v = rn_value_field(v, b);
    if (v && item >= 0) v = rn_value_item(v, (size_t)item);
    if (!v) {
        fprintf(stderr, "fixture lacks %s.%s[%d]\n", a, b ? b : "", item);
        exit(2);
    }
    return v;
}

static void make(const rn_registry *reg, rn_plugin_kind kind, const rn_value *spec,
                 const char *key, double expect)
{
    char dir[] = "/tmp/rn_plugin_recipe_XXXXXX";
    if (!mkdtemp(dir)) exit(2);
    rn_metrics m = {0};
    rn_run_view run = {.run_dir = dir, .seed = 7, .metrics = &m};
    rn_instance inst;
    char err[512];
    int rc = rn_instance_create(&inst, reg, kind, spec, &run, 1, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    double v = -1;
    if (key) {
        CHECK(rn_instance_number(&inst, key, &v));
        CHECK_NEAR(v, expect, 0, 1e-15);
    }
    rn_instance_destroy(&inst);
    rmdir(dir);
}

static void refused(const rn_registry *reg, rn_plugin_kind kind, const rn_value *root,
                    const char *name, const char *want)
{
    rn_instance inst;
    char err[512];
    int rc = rn_instance_create(&inst, reg, kind, at(root, name, NULL, -1), NULL, 1, err,
                                sizeof err);
    CHECK(rc != 0);
    if (rc == 0) {
        rn_instance_destroy(&inst);
        return;
    }
    int ok = strstr(err, want) != NULL;
    CHECK(ok);
    printf("  %s%s\n", err, ok ? "" : "   <-- expected the key path in it");
}

int main(void)
{
    rn_registry *reg = pt_registry();
    char err[512];
    rn_sandbox *sb = rn_sandbox_new(".", NULL, err, sizeof err);
    if (!sb) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    rn_value *good = load(sb, "all_builtin.lua");
    make(reg, RN_KIND_AUGMENT, at(good, "data", "augment", 0), "padding", 2);
    make(reg, RN_KIND_AUGMENT, at(good, "data", "augment", 1), "p", 0.25);
    make(reg, RN_KIND_OPTIMIZER, at(good, "optimizer", NULL, -1), "momentum", 0.9);
    make(reg, RN_KIND_OPTIMIZER, at(good, "optimizer", NULL, -1), "nesterov", 1);
    make(reg, RN_KIND_SCHEDULER, at(good, "schedule", NULL, -1), "warmup_epochs", 1);
    make(reg, RN_KIND_SCHEDULER, rn_value_field(at(good, "stages", NULL, 0), "schedule"), "factor", 0.5);
    make(reg, RN_KIND_CALLBACK, at(good, "callbacks", NULL, 0), "refresh_s", 0.1); /* bare "progress" */
    make(reg, RN_KIND_CALLBACK, at(good, "callbacks", NULL, 1), "every_steps", 10);

    rn_value *bad = load(sb, "bad_settings.lua");
    refused(reg, RN_KIND_OPTIMIZER, bad, "out_of_range", "out_of_range.momentum");
    refused(reg, RN_KIND_OPTIMIZER, bad, "unknown_key", "unknown_key.momentun");
    refused(reg, RN_KIND_OPTIMIZER, bad, "wrong_type", "wrong_type.lr");
    refused(reg, RN_KIND_AUGMENT, bad, "not_integer", "not_integer.size");
    refused(reg, RN_KIND_CALLBACK, bad, "bad_choice", "bad_choice.every");
    refused(reg, RN_KIND_AUGMENT, bad, "positional", "positional[2]");
    make(reg, RN_KIND_OPTIMIZER, at(bad, "ok", NULL, -1), "lr", 0.1);

    rn_value_free(good);
    rn_value_free(bad);
    rn_sandbox_free(sb);
    rn_registry_free(reg);
    return rn_test_report("test_plugin_recipe");
}
