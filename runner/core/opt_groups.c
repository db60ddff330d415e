/* Optimizer instances per parameter group (see opt_groups.h). */
#include "opt_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "param_groups.h"

/* The optimizer spec for group g: a copy of the recipe's with the group's settings on top. */
static rn_value *group_spec(const rn_value *optimizer, const rn_value *group)
{
    rn_value *spec = rn_value_clone(optimizer);
    if (!spec || !group || group->type != RN_V_TABLE) return spec;
    if (spec->type == RN_V_STRING) { /* "sgd" -> { "sgd" } so settings can be added */
        rn_value *t = rn_value_new(RN_V_TABLE, spec->path);
        rn_value_push_item(t, spec);
        spec = t;
    }
    for (size_t i = 0; i < group->n_fields; i++)
        rn_value_put_field(spec, group->keys[i], rn_value_clone(group->fields[i]));
    return spec;
}

static int setup_group(rn_opt_group *og, const char *name, const rn_value *spec, const int *group_of,
                       int which, const rn_model *m, const rn_registry *reg,
                       const rn_run_view *view, uint64_t slot, char *err, size_t errlen)
{
    og->name = strdup(name);
    if (rn_instance_create(&og->opt, reg, RN_KIND_OPTIMIZER, spec, view, slot, err, errlen))
        return -1;
    const char *where = spec->path[0] ? spec->path : "optimizer";
    /* The group's base values come from the optimizer's settings of these names (plugin.h). */
    if (!rn_instance_number(&og->opt, "lr", &og->base_lr)) {
        snprintf(err, errlen, "%s: optimizer \"%s\" declares no \"lr\" setting, so runner cannot "
                 "schedule its learning rate", where, og->opt.plugin->id);
        return -1;
    }
    if (!rn_instance_number(&og->opt, "momentum", &og->base_momentum))
        rn_instance_number(&og->opt, "beta1", &og->base_momentum);
    double wd = 0;
    rn_instance_number(&og->opt, "weight_decay", &wd);

    size_t per = ((const rn_optimizer_api *)og->opt.plugin->api)->state_floats(og->opt.self), n = 0;
    og->params = calloc((size_t)m->n_params + 1, sizeof *og->params);
    if (!og->params) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    for (int i = 0; i < m->n_params; i++) {
        const rn_param_ref *p = &m->params[i];
        if (!p->grad || group_of[i] != which) continue;
        rn_param *q = &og->params[n++];
        og->g.n_params = n; /* so a failure below frees what was allocated */
        q->name = p->name;
        q->value = p->value->data;
        q->grad = p->grad->data;
        q->numel = rn_tensor_numel(p->value);
        if (per && !(q->state = rn_falloc(q->numel * (int64_t)per))) {
            snprintf(err, errlen, "%s: out of memory for the optimizer state of %s", where,
                     p->name);
            return -1;
        }
    }
    og->g = (rn_group){.struct_size = sizeof(rn_group), .name = og->name, .params = og->params,
                       .n_params = n, .lr = og->base_lr, .momentum = og->base_momentum,
                       .weight_decay = wd};
    return 0;
}

int rn_opt_groups_create(rn_opt_groups *og, const rn_value *optimizer, const rn_value *groups,
                         const rn_model *m, const rn_registry *reg, const rn_run_view *view,
                         char *err, size_t errlen)
{
    memset(og, 0, sizeof *og);
    int *group_of = calloc((size_t)m->n_params + 1, sizeof *group_of);
    size_t named = groups ? groups->n_fields : 0;
    og->v = calloc(named + 1, sizeof *og->v);
    if (!group_of || !og->v) {
        free(group_of);
        snprintf(err, errlen, "optimizer: out of memory");
        return -1;
    }
    int rc = rn_groups_assign(groups, m, group_of, err, errlen);
    int in_default = 0;
    for (int i = 0; i < m->n_params; i++) in_default |= m->params[i].grad && group_of[i] < 0;
    if (rc == 0 && in_default) {
        rc = setup_group(&og->v[og->n++], "default", optimizer, group_of, -1, m, reg, view, 0,
                         err, errlen);
    }
    for (size_t g = 0; rc == 0 && g < named; g++) {
        rn_value *spec = group_spec(optimizer, groups->fields[g]);
        rc = spec ? setup_group(&og->v[og->n++], groups->keys[g], spec, group_of, (int)g, m, reg,
                                view, g + 1, err, errlen)
                  : (snprintf(err, errlen, "optimizer: out of memory"), -1);
        rn_value_free(spec);
    }
    free(group_of);
    if (rc) rn_opt_groups_free(og);
    return rc;
}

void rn_opt_groups_free(rn_opt_groups *og)
{
    for (int i = 0; og->v && i < og->n; i++) {
        rn_opt_group *g = &og->v[i];
        rn_instance_destroy(&g->opt);
        for (size_t k = 0; g->params && k < g->g.n_params; k++) rn_ffree(g->params[k].state);
        free(g->params);
        free(g->name);
    }
    free(og->v);
    memset(og, 0, sizeof *og);
}

int rn_opt_groups_step(rn_opt_groups *og, char *err, size_t errlen)
{
    for (int i = 0; i < og->n; i++) {
        rn_opt_group *g = &og->v[i];
        const rn_optimizer_api *api = g->opt.plugin->api;
        if (api->step(g->opt.self, &g->g) != RN_OK) {
            snprintf(err, errlen, "optimizer (group %s): %s", g->name, rn_instance_error(&g->opt));
            return -1;
        }
        g->g.step++;
    }
    return 0;
}
