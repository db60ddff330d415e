/* constant plugin: lr = base * factor at every step (exact), momentum untouched. */
#include "plugin_test_util.h"
#include "rn_test.h"

int main(void)
{
    rn_registry *reg = pt_registry();
    rn_instance plain, scaled;
    pt_create(&plain, reg, RN_KIND_SCHEDULER, pt_spec("schedule", "constant"), NULL);
    pt_create(&scaled, reg, RN_KIND_SCHEDULER,
              pt_num(pt_spec("schedule", "constant"), "factor", 0.25), NULL);
    const rn_scheduler_api *api = plain.plugin->api;
    for (int64_t t = 0; t < 100; t += 7) {
        rn_sched_at at = {sizeof at, t, 100, 10, t / 10};
        rn_sched_values v = {sizeof v, 0.4, 0.9, 0.4, 0.9};
        CHECK(api->values(plain.self, &at, &v) == RN_OK);
        CHECK(v.lr == 0.4 && v.momentum == 0.9);
        CHECK(api->values(scaled.self, &at, &v) == RN_OK);
        CHECK(v.lr == 0.1 && v.momentum == 0.9);
    }
    rn_instance_destroy(&plain);
    rn_instance_destroy(&scaled);
    rn_registry_free(reg);
    return rn_test_report("test_constant");
}
