/* The example third-party plugin (examples/plugins/step_decay.c, built with its one cc line):
 * found by scanning the built-in dir and then its own dir like RUNNER_PLUGIN_PATH, and its lr
 * equals StepLR's closed form base * gamma^(epoch // step_size) (to 1e-15 relative). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

int main(void)
{
    const char *dirs[2] = {getenv("RN_PLUGIN_DIR"), getenv("RN_EXAMPLE_PLUGIN_DIR")};
    if (!dirs[0] || !dirs[1]) return 2;
    rn_registry *reg = NULL;
    char err[512];
    if (rn_registry_scan(&reg, dirs, 2, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const char *path = NULL;
    const rn_plugin *p = rn_registry_find(reg, RN_KIND_SCHEDULER, "org.example.step_decay",
                                          "schedule", &path, err, sizeof err);
    CHECK(p != NULL);
    if (!p) return rn_test_report("test_step_decay");
    CHECK(strstr(path, "example_plugins/step_decay.so") != NULL);

    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_SCHEDULER,
              pt_num(pt_int(pt_spec("schedule", "org.example.step_decay"), "step_size_epochs", 3),
                     "gamma", 0.5),
              NULL);
    const rn_scheduler_api *api = inst.plugin->api;
    for (int64_t epoch = 0; epoch < 10; epoch++) {
        rn_sched_at at = {sizeof at, epoch * 7 + 3, 70, 7, epoch};
        rn_sched_values v = {sizeof v, 0.2, 0.9, 0.2, 0.9};
        CHECK(api->values(inst.self, &at, &v) == RN_OK);
        CHECK_NEAR(v.lr, 0.2 * pow(0.5, (double)(epoch / 3)), 0, 1e-15);
        CHECK(v.momentum == 0.9);
    }
    rn_instance_destroy(&inst);

    CHECK(pt_create_fails(reg, RN_KIND_SCHEDULER,
                          pt_int(pt_spec("schedule", "org.example.step_decay"), "step_size_epochs", 0),
                          err, sizeof err));
    CHECK(strstr(err, "schedule.step_size_epochs") != NULL);
    rn_registry_free(reg);
    return rn_test_report("test_step_decay");
}
