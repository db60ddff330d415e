/* What a stage trains (see stage_groups.h). */
#include "stage_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "param_groups.h"
#include "run_state.h"

/* The layer group of an optimizer group: its name without ".no_decay". */
static size_t base_len(const char *name)
{
    size_t n = strlen(name);
    return n > 9 && strcmp(name + n - 9, ".no_decay") == 0 ? n - 9 : n;
}

static int select_entry(const char *entry, const rn_opt_groups *og, const rn_model *m, bool *mask)
{
    int any = 0;
    for (int g = 0; g < og->n; g++) {
        const rn_opt_group *q = &og->v[g];
        size_t k = base_len(q->name);
        if (strcmp(q->name, entry) && (strlen(entry) != k || strncmp(q->name, entry, k)))
            continue;
        for (size_t p = 0; p < q->n_all; p++) mask[q->model_index[p]] = true;
        any = 1;
    }
    if (any) return 1;
    for (int i = 0; i < m->n_params; i++) {
        if (!m->params[i].grad || !rn_pattern_match(entry, m->params[i].name)) continue;
        mask[i] = true;
        any = 1;
    }
    return any;
}

typedef struct bn_ctx {
    const rn_model *m;
    bool *mask;
} bn_ctx;

static void mark_bn(rn_layer *l, void *arg)
{
    bn_ctx *c = arg;
    if (strcmp(l->ops->type, "batch_norm2d") != 0) return;
    for (int k = 0; k < l->n_params; k++)
        for (int i = 0; i < c->m->n_params; i++)
            if (c->m->params[i].value == l->params[k].value && c->m->params[i].grad)
                c->mask[i] = true;
}

int rn_stage_mask(const rn_value *train, bool train_bn, const rn_opt_groups *og,
                  const rn_model *m, bool *mask, char *err, size_t errlen)
{
    for (int i = 0; i < m->n_params; i++) mask[i] = false;
    size_t n = train->type == RN_V_STRING ? 1 : train->n_items;
    for (size_t k = 0; k < n; k++) {
        const rn_value *e = train->type == RN_V_STRING ? train : train->items[k];
        if (select_entry(e->s, og, m, mask)) continue;
        char groups[256] = "";
        size_t off = 0;
        for (int g = 0; g < og->n && off < sizeof groups; g++)
            off += (size_t)snprintf(groups + off, sizeof groups - off, "%s%s", g ? ", " : "",
                                    og->v[g].name);
        char mods[256];
        rn_top_modules(m, mods, sizeof mods);
        snprintf(err, errlen, "%s: \"%s\" is no parameter group and matches no parameter "
                 "(groups: %s; the model's modules: %s)", e->path, e->s, groups, mods);
        return -1;
    }
    if (train_bn) {
        bn_ctx c = {.m = m, .mask = mask};
        rn_walk_layers(&m->chain, mark_bn, &c);
    }
    return 0;
}

int rn_lr_ranks(const rn_opt_groups *og, int *rank, int *n)
{
    /* first[g]: where g's layer group starts (the earliest first parameter of its halves). */
    int *first = malloc(((size_t)og->n + 1) * sizeof *first);
    if (!first) return -1;
    for (int g = 0; g < og->n; g++) {
        size_t k = base_len(og->v[g].name);
        first[g] = 1 << 30;
        for (int h = 0; h < og->n; h++)
            if (base_len(og->v[h].name) == k && !strncmp(og->v[h].name, og->v[g].name, k) &&
                og->v[h].n_all && og->v[h].model_index[0] < first[g])
                first[g] = og->v[h].model_index[0];
    }
    /* rank: how many distinct layer-group starts come before g's. */
    *n = 0;
    for (int g = 0; g < og->n; g++) {
        int below = 0, counted = 0;
        for (int h = 0; h < og->n; h++) {
            int earlier_dup = 0;
            for (int j = 0; j < h; j++) earlier_dup |= first[j] == first[h];
            if (!earlier_dup && first[h] < first[g]) below++;
            if (h < g && first[h] == first[g]) counted = 1;
        }
        rank[g] = below;
        if (!counted) (*n)++;
    }
    free(first);
    return 0;
}
