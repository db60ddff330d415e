/* Optimizer instances per parameter group (see opt_groups.h). */
#include "opt_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "param_groups.h"

/* The optimizer spec for a group: a copy of the recipe's, as a table, with the group's
 * settings (its named fields; group may be NULL) on top. */
static rn_value *group_spec(const rn_value *optimizer, const rn_value *group)
{
    rn_value *spec = rn_value_clone(optimizer);
    if (spec && spec->type == RN_V_STRING) { /* "sgd" -> { "sgd" } so settings can be added */
        rn_value *t = rn_value_new(RN_V_TABLE, spec->path);
        if (!t) {
            rn_value_free(spec);
            return NULL;
        }
        rn_value_push_item(t, spec);
        spec = t;
    }
    if (!spec || !group || group->type != RN_V_TABLE) return spec;
    for (size_t i = 0; i < group->n_fields; i++)
        rn_value_put_field(spec, group->keys[i], rn_value_clone(group->fields[i]));
    return spec;
}

static int setup_group(rn_opt_group *og, const char *name, const rn_value *spec,
                       const unsigned char *member, const rn_model *m, const rn_registry *reg,
                       const rn_run_view *view, char *err, size_t errlen)
{
    og->name = strdup(name);
    if (rn_instance_create(&og->opt, reg, RN_KIND_OPTIMIZER, spec, view, 0, err, errlen))
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
    og->active = calloc((size_t)m->n_params + 1, sizeof *og->active);
    og->model_index = calloc((size_t)m->n_params + 1, sizeof *og->model_index);
    og->active_index = calloc((size_t)m->n_params + 1, sizeof *og->active_index);
    if (!og->params || !og->active || !og->model_index || !og->active_index) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    for (int i = 0; i < m->n_params; i++) {
        const rn_param_ref *p = &m->params[i];
        if (!member[i]) continue;
        og->model_index[n] = i;
        rn_param *q = &og->params[n++];
        og->n_all = n; /* so a failure below frees what was allocated */
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
    memcpy(og->active, og->params, n * sizeof *og->active);
    memcpy(og->active_index, og->model_index, n * sizeof *og->active_index);
    og->g = (rn_group){.struct_size = sizeof(rn_group), .name = og->name, .params = og->active,
                       .n_params = n, .lr = og->base_lr, .momentum = og->base_momentum,
                       .weight_decay = wd};
    return 0;
}

/* The next free group slot (counted before it is set up, so a failure frees it too). */
static rn_opt_group *next_group(rn_opt_groups *og) { return &og->v[og->n++]; }

/* timm's rule for "no weight decay on biases and norm layers": 1-d tensors and biases. */
static int bias_or_norm(const rn_param_ref *p)
{
    size_t n = strlen(p->name);
    return p->value->shape.ndim <= 1 || (n >= 5 && strcmp(p->name + n - 5, ".bias") == 0);
}

/* The weight decay a spec's optimizer would use (its "weight_decay" setting, 0 without one). */
static int spec_weight_decay(const rn_value *spec, const rn_registry *reg,
                             const rn_run_view *view, double *wd, char *err, size_t errlen)
{
    rn_instance probe;
    if (rn_instance_create(&probe, reg, RN_KIND_OPTIMIZER, spec, view, 0, err, errlen)) return -1;
    *wd = 0;
    rn_instance_number(&probe, "weight_decay", wd);
    rn_instance_destroy(&probe);
    return 0;
}

/* One recipe group (or the default one): one optimizer group, or two when biases and norm
 * parameters are kept out of weight decay. */
static int add_groups(rn_opt_groups *og, const char *name, const rn_value *spec, int which,
                      const int *group_of, int decay_bias_and_norm, const rn_model *m,
                      const rn_registry *reg, const rn_run_view *view, unsigned char *member,
                      char *err, size_t errlen)
{
    int any = 0, split = 0;
    for (int i = 0; i < m->n_params; i++) {
        member[i] = m->params[i].grad && group_of[i] == which;
        any |= member[i];
        split |= member[i] && bias_or_norm(&m->params[i]);
    }
    if (!any) return 0;
    double wd = 0;
    if (!decay_bias_and_norm && split && spec_weight_decay(spec, reg, view, &wd, err, errlen))
        return -1;
    if (decay_bias_and_norm || !split || wd == 0)
        return setup_group(next_group(og), name, spec, member, m, reg, view, err, errlen);

    unsigned char *rest = member + m->n_params; /* the second half of the mask buffer */
    int decayed = 0;
    for (int i = 0; i < m->n_params; i++) {
        rest[i] = member[i] && bias_or_norm(&m->params[i]);
        member[i] = member[i] && !rest[i];
        decayed |= member[i];
    }
    if (decayed && setup_group(next_group(og), name, spec, member, m, reg, view, err, errlen))
        return -1;
    rn_value *nodecay = rn_value_clone(spec);
    rn_value *zero = rn_value_new(RN_V_NUMBER, "decay_bias_and_norm");
    char sub[160];
    snprintf(sub, sizeof sub, "%s.no_decay", name);
    int rc = -1;
    if (nodecay && zero && nodecay->type == RN_V_TABLE) {
        zero->n = 0;
        rn_value_put_field(nodecay, "weight_decay", zero);
        zero = NULL;
        rc = setup_group(next_group(og), sub, nodecay, rest, m, reg, view, err, errlen);
    } else {
        snprintf(err, errlen, "optimizer: out of memory");
    }
    rn_value_free(zero);
    rn_value_free(nodecay);
    return rc;
}

int rn_opt_groups_create(rn_opt_groups *og, const rn_value *optimizer, const rn_value *groups,
                         int decay_bias_and_norm, const rn_model *m, const rn_registry *reg,
                         const rn_run_view *view, char *err, size_t errlen)
{
    memset(og, 0, sizeof *og);
    int *group_of = calloc((size_t)m->n_params + 1, sizeof *group_of);
    unsigned char *member = calloc(2 * (size_t)m->n_params + 1, 1);
    size_t named = groups ? groups->n_fields : 0;
    og->v = calloc(2 * (named + 1), sizeof *og->v);
    if (!group_of || !member || !og->v) {
        free(group_of);
        free(member);
        free(og->v);
        og->v = NULL;
        snprintf(err, errlen, "optimizer: out of memory");
        return -1;
    }
    int rc = rn_groups_assign(groups, m, group_of, err, errlen);
    rn_value *spec = rc ? NULL : group_spec(optimizer, NULL);
    if (rc == 0)
        rc = spec ? add_groups(og, "default", spec, -1, group_of, decay_bias_and_norm, m, reg, view,
                               member, err, errlen)
                  : (snprintf(err, errlen, "optimizer: out of memory"), -1);
    rn_value_free(spec);
    for (size_t g = 0; rc == 0 && g < named; g++) {
        spec = group_spec(optimizer, groups->fields[g]);
        rc = spec ? add_groups(og, groups->keys[g], spec, (int)g, group_of, decay_bias_and_norm, m,
                               reg, view, member, err, errlen)
                  : (snprintf(err, errlen, "optimizer: out of memory"), -1);
        rn_value_free(spec);
    }
    free(group_of);
    free(member);
    if (rc) rn_opt_groups_free(og);
    return rc;
}

void rn_opt_groups_free(rn_opt_groups *og)
{
    for (int i = 0; og->v && i < og->n; i++) {
        rn_opt_group *g = &og->v[i];
        rn_instance_destroy(&g->opt);
        for (size_t k = 0; g->params && k < g->n_all; k++) rn_ffree(g->params[k].state);
        free(g->params);
        free(g->active);
        free(g->active_index);
        free(g->model_index);
        free(g->name);
    }
    free(og->v);
    memset(og, 0, sizeof *og);
}

void rn_opt_groups_set_trainable(rn_opt_groups *og, const bool *trainable)
{
    for (int i = 0; i < og->n; i++) {
        rn_opt_group *g = &og->v[i];
        size_t n = 0;
        for (size_t k = 0; k < g->n_all; k++)
            if (!trainable || trainable[g->model_index[k]]) {
                g->active_index[n] = g->model_index[k];
                g->active[n++] = g->params[k];
            }
        g->g.n_params = n;
    }
}

int rn_opt_groups_step(rn_opt_groups *og, char *err, size_t errlen)
{
    for (int i = 0; i < og->n; i++) {
        rn_opt_group *g = &og->v[i];
        if (!g->g.n_params) continue; /* frozen in this stage */
        const rn_optimizer_api *api = g->opt.plugin->api;
        if (api->step(g->opt.self, &g->g) != RN_OK) {
            snprintf(err, errlen, "optimizer (group %s): %s", g->name, rn_instance_error(&g->opt));
            return -1;
        }
        g->g.step++;
    }
    return 0;
}
