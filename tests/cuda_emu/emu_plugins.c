/* C helpers for the emulated-kernel tests: see emu_plugins.h. */
#include "emu_plugins.h"

#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "../../plugins/augment/mix_common.h"

void *emu_registry_open(void)
{
    return pt_registry();
}

void emu_registry_close(void *reg)
{
    rn_registry_free(reg);
}

static rn_value *augment_spec(const char *id, const emu_setting *settings, int n_settings)
{
    rn_value *spec = pt_spec("data.augment[1]", id);
    for (int k = 0; k < n_settings; k++) {
        const emu_setting *s = &settings[k];
        switch (s->type) {
        case 'i': pt_int(spec, s->key, (int64_t)s->num); break;
        case 'b': pt_bool(spec, s->key, s->num != 0); break;
        case 's': pt_str(spec, s->key, s->str); break;
        default: pt_num(spec, s->key, s->num); break;
        }
    }
    return spec;
}

int emu_augment_apply(void *reg, const char *id, const emu_setting *settings, int n_settings,
                      rn_batch *b)
{
    rn_value *spec = augment_spec(id, settings, n_settings);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec, NULL);
    const rn_augment_api *api = inst.plugin->api;
    int rc = api->apply(inst.self, b);
    if (rc != RN_OK) fprintf(stderr, "%s: %s\n", id, rn_instance_error(&inst));
    rn_instance_destroy(&inst);
    return rc;
}

int emu_augment_device_plan(void *reg, const char *id, const emu_setting *settings,
                            int n_settings, const rn_batch *b, rn_augment_op *op)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, augment_spec(id, settings, n_settings), NULL);
    const rn_augment_api *api = inst.plugin->api;
    if (api->struct_size < offsetof(rn_augment_api, device_plan) + sizeof api->device_plan ||
        !api->device_plan) {
        fprintf(stderr, "%s: no device_plan\n", id);
        exit(2);
    }
    int rc = api->device_plan(inst.self, b, op);
    if (rc != RN_OK) fprintf(stderr, "%s: %s\n", id, rn_instance_error(&inst));
    rn_instance_destroy(&inst);
    return rc;
}

int emu_mix_plan(double prob, double switch_prob, double cutmix_alpha, double mixup_alpha,
                 int correct_lam, int elem, const rn_batch *b, rn_mix_sample *plan)
{
    mix m = {.host = rn_host_table()};
    m.cfg = (mix_config){prob, switch_prob, cutmix_alpha, mixup_alpha, correct_lam, elem};
    int rc = mix_plan(&m, b, 0);
    for (int64_t i = 0; rc >= 0 && i < b->n; i++) {
        rn_mix_sample keep = {RN_MIX_KEEP, (int32_t)i, 1.0f, 0.0f, 0, 0, 0, 0};
        plan[i] = rc == 1 ? m.plan[i] : keep;
    }
    mix_destroy_scratch(&m);
    return rc < 0 ? -1 : 0;
}
