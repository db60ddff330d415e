/* Settings validation through the real loader: the registry holds every built-in plugin under its
 * kind; an out-of-range value, a wrong type and an unknown key are refused by the host with the
 * recipe's key path; the sgd plugin's own checks (nesterov needs momentum, momentum < 1) name the
 * settings; an unknown id lists the ids that exist. ABI 1.1 NUMBERS settings (through a test-only
 * plugin, tests/abi_plugins/numbers_settings.c): a list or a single number is read back through
 * host->get_numbers, the default comes from its text, a required one is missing, each element is
 * range-checked under its own path, a wrong shape is refused. */
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

#define EXPECT_ERROR(kind, spec, ...)                                                  \
    do {                                                                               \
        char err_[512];                                                                \
        CHECK(pt_create_fails(reg, kind, spec, err_, sizeof err_));                    \
        const char *want_[] = {__VA_ARGS__};                                           \
        for (size_t k_ = 0; k_ < sizeof want_ / sizeof want_[0]; k_++) {               \
            int ok_ = strstr(err_, want_[k_]) != NULL;                                 \
            CHECK(ok_);                                                                \
            if (!ok_) fprintf(stderr, "  \"%s\" not in: %s\n", want_[k_], err_);       \
        }                                                                              \
        printf("  %s\n", err_);                                                        \
    } while (0)

static rn_value *ns_spec(void) { return pt_spec("data.augment[1]", "test.numbers_settings"); }

static void numbers_settings(void)
{
    const char *abi = getenv("RN_ABI_PLUGIN_DIR");
    if (!abi) {
        fprintf(stderr, "RN_ABI_PLUGIN_DIR is not set (run the test through ctest)\n");
        exit(2);
    }
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/numbers_settings", abi);
    const char *dirs[] = {dir};
    rn_registry *reg = NULL;
    if (rn_registry_scan(&reg, dirs, 1, err, sizeof err)) {
        fprintf(stderr, "numbers_settings scan: %s\n", err);
        exit(2);
    }
    const rn_host *host = rn_host_table();
    CHECK(host->struct_size >= offsetof(rn_host, get_numbers) + sizeof host->get_numbers);
    double out[RN_MAX_SETTING_NUMBERS + 1];

    /* A list is kept whole; the default comes from "0.5, 0.25,1e-1". */
    rn_instance inst;
    const double std3[] = {0.229, 0.224, 0.225};
    pt_create(&inst, reg, RN_KIND_AUGMENT, pt_list(ns_spec(), "std", std3, 3), NULL);
    CHECK(host->get_numbers(inst.ctx, "std", out, RN_MAX_SETTING_NUMBERS) == 3);
    CHECK(out[0] == 0.229 && out[1] == 0.224 && out[2] == 0.225);
    CHECK(host->has_setting(inst.ctx, "std") == 1);
    CHECK(host->get_numbers(inst.ctx, "gains", out, RN_MAX_SETTING_NUMBERS) == 3);
    CHECK(out[0] == 0.5 && out[1] == 0.25 && out[2] == 0.1);
    CHECK(host->has_setting(inst.ctx, "gains") == 0);
    /* cap limits the copy, not the count */
    out[1] = -1;
    CHECK(host->get_numbers(inst.ctx, "std", out, 1) == 3 && out[0] == 0.229 && out[1] == -1);
    CHECK(host->get_numbers(inst.ctx, "std", NULL, 0) == 3);
    /* Another type or an unknown key holds no numbers; the plain NUMBER is not a list. */
    CHECK(host->get_numbers(inst.ctx, "scale", out, RN_MAX_SETTING_NUMBERS) == 0);
    CHECK(host->get_numbers(inst.ctx, "nope", out, RN_MAX_SETTING_NUMBERS) == 0);
    double num = 0;
    CHECK(!rn_instance_number(&inst, "std", &num));
    CHECK(rn_instance_number(&inst, "scale", &num) && num == 2);
    rn_instance_destroy(&inst);

    /* A single number is a list of one; 16 numbers are the most; an integer is a number. */
    pt_create(&inst, reg, RN_KIND_AUGMENT, pt_int(pt_num(ns_spec(), "std", 0.5), "gains", 1),
              NULL);
    CHECK(host->get_numbers(inst.ctx, "std", out, RN_MAX_SETTING_NUMBERS) == 1 && out[0] == 0.5);
    CHECK(host->get_numbers(inst.ctx, "gains", out, RN_MAX_SETTING_NUMBERS) == 1 && out[0] == 1);
    rn_instance_destroy(&inst);
    double many[RN_MAX_SETTING_NUMBERS + 1];
    for (size_t k = 0; k <= RN_MAX_SETTING_NUMBERS; k++) many[k] = 0.125 * (double)(k + 1);
    pt_create(&inst, reg, RN_KIND_AUGMENT,
              pt_list(ns_spec(), "std", many, RN_MAX_SETTING_NUMBERS), NULL);
    CHECK(host->get_numbers(inst.ctx, "std", out, RN_MAX_SETTING_NUMBERS + 1) ==
          RN_MAX_SETTING_NUMBERS);
    CHECK(out[RN_MAX_SETTING_NUMBERS - 1] == 2.0);
    rn_instance_destroy(&inst);

    /* Required and missing. */
    EXPECT_ERROR(RN_KIND_AUGMENT, ns_spec(), "data.augment[1].std: missing",
                 "a list of numbers");
    /* Each element is checked under its own path; the minimum is exclusive. */
    const double std0[] = {0.5, 0, 0.5};
    EXPECT_ERROR(RN_KIND_AUGMENT, pt_list(ns_spec(), "std", std0, 3),
                 "data.augment[1].std[2]: expected a number in (0, inf], got 0");
    EXPECT_ERROR(RN_KIND_AUGMENT, pt_num(ns_spec(), "std", -1),
                 "data.augment[1].std: expected a number in (0, inf], got -1");
    const double g[] = {0.5, 1.5};
    EXPECT_ERROR(RN_KIND_AUGMENT, pt_list(pt_num(ns_spec(), "std", 1), "gains", g, 2),
                 "data.augment[1].gains[2]: expected a number in [0, 1], got 1.5");
    /* Wrong shapes: a string, named keys, too many, none, a non-number element. */
    EXPECT_ERROR(RN_KIND_AUGMENT, pt_str(ns_spec(), "std", "0.5"),
                 "data.augment[1].std: expected a list of 1 to 16 numbers, got string");
    rn_value *named = ns_spec();
    pt_num(pt_field(named, "std", RN_V_TABLE), "r", 0.5);
    EXPECT_ERROR(RN_KIND_AUGMENT, named,
                 "data.augment[1].std: expected a list of 1 to 16 numbers");
    rn_value *mixed = pt_list(ns_spec(), "std", std3, 3);
    pt_num((rn_value *)rn_value_field(mixed, "std"), "r", 0.5);
    EXPECT_ERROR(RN_KIND_AUGMENT, mixed, "data.augment[1].std: expected a list of 1 to 16 numbers");
    EXPECT_ERROR(RN_KIND_AUGMENT, pt_list(ns_spec(), "std", many, RN_MAX_SETTING_NUMBERS + 1),
                 "data.augment[1].std: expected a list of 1 to 16 numbers, got table");
    EXPECT_ERROR(RN_KIND_AUGMENT, pt_list(ns_spec(), "std", many, 0),
                 "data.augment[1].std: expected a list of 1 to 16 numbers");
    rn_value *strs = pt_list(ns_spec(), "std", std3, 3);
    rn_value *item = ((rn_value *)rn_value_field(strs, "std"))->items[2];
    item->type = RN_V_STRING;
    item->s = pt_strdup("x");
    EXPECT_ERROR(RN_KIND_AUGMENT, strs, "data.augment[1].std[3]: expected a number in (0, inf]",
                 "string");
    rn_registry_free(reg);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    struct { const char *id; rn_plugin_kind kind; } builtin[] = {
        {"sgd", RN_KIND_OPTIMIZER},    {"constant", RN_KIND_SCHEDULER},
        {"cosine", RN_KIND_SCHEDULER}, {"random_crop", RN_KIND_AUGMENT},
        {"hflip", RN_KIND_AUGMENT},    {"progress", RN_KIND_CALLBACK},
        {"csv_logger", RN_KIND_CALLBACK},
    };
    char err[512];
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        const char *path = NULL;
        const rn_plugin *p = rn_registry_find(reg, builtin[i].kind, builtin[i].id, "test", &path,
                                              err, sizeof err);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK(path && strstr(path, builtin[i].id) && strstr(path, ".so"));
        CHECK(p->summary && p->version && p->settings);
        for (size_t k = 0; k < p->n_settings; k++) CHECK(p->settings[k].doc != NULL);
    }

    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_num(pt_spec("optimizer", "sgd"), "momentum", 1.5),
                 "optimizer.momentum", "[0, 1)", "1.5");
    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_num(pt_spec("optimizer", "sgd"), "momentun", 0.9),
                 "optimizer.momentun", "unknown setting", "momentum");
    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_str(pt_spec("optimizer", "sgd"), "lr", "fast"),
                 "optimizer.lr", "number");
    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_num(pt_spec("optimizer", "sgd"), "weight_decay", -1e-4),
                 "optimizer.weight_decay");
    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_num(pt_spec("optimizer", "sgd"), "momentum", 1.0),
                 "optimizer.momentum", "[0, 1)", "got 1");
    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_bool(pt_spec("optimizer", "sgd"), "nesterov", 1),
                 "optimizer", "nesterov", "momentum");
    EXPECT_ERROR(RN_KIND_OPTIMIZER,
                 pt_num(pt_num(pt_bool(pt_spec("optimizer", "sgd"), "nesterov", 1), "momentum", 0.9),
                        "dampening", 0.1),
                 "nesterov", "dampening");
    EXPECT_ERROR(RN_KIND_OPTIMIZER, pt_spec("optimizer", "sgdd"), "optimizer", "sgdd", "sgd");
    EXPECT_ERROR(RN_KIND_SCHEDULER, pt_num(pt_spec("schedule", "constant"), "factr", 2),
                 "schedule.factr");

    /* Defaults: lr 0.01, momentum 0, so no optimizer state. */
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, pt_spec("optimizer", "sgd"), NULL);
    double lr = 0;
    CHECK(rn_instance_number(&inst, "lr", &lr) && lr == 0.01);
    CHECK(((const rn_optimizer_api *)inst.plugin->api)->state_floats(inst.self) == 0);
    rn_instance_destroy(&inst);

    /* normalize's schema: std = 0 is refused under the element's path. */
    const double std_bad[] = {0.5, 0, 0.5}, mean3[] = {0.5, 0.5, 0.5};
    EXPECT_ERROR(RN_KIND_AUGMENT,
                 pt_list(pt_list(pt_spec("data.augment[1]", "normalize"), "mean", mean3, 3), "std",
                         std_bad, 3),
                 "data.augment[1].std[2]: expected a number in (0, inf], got 0");
    rn_registry_free(reg);
    numbers_settings();
    return rn_test_report("test_plugin_settings");
}
