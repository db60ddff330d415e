/* Settings validation through the real loader: the registry holds every built-in plugin under its
 * kind; an out-of-range value, a wrong type and an unknown key are refused by the host with the
 * recipe's key path; the sgd plugin's own checks (nesterov needs momentum, momentum < 1) name the
 * settings; an unknown id lists the ids that exist. */
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
    rn_registry_free(reg);
    return rn_test_report("test_plugin_settings");
}
