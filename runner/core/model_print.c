/* The model as a table, with the sizes of its parameter groups. */
#include "model_print.h"

#include "param_groups.h"

#include <stdlib.h>
#include <string.h>

static int trainable(const rn_param_ref *p) { return p->grad != NULL; }

/* ---- the table ----------------------------------------------------------------------------- */

/* Forward FLOPs per image of a leaf: 2 multiply-adds per weight use. */
static double leaf_flops(const rn_layer *l, const rn_shape *out)
{
    if (!l->n_params || !l->params[0].grad) return 0;
    const rn_tensor *w = l->params[0].value;
    double uses = (double)rn_tensor_numel(w);
    if (strcmp(l->ops->type, "conv2d") == 0 && out->ndim == 4)
        return 2.0 * uses * (double)(out->d[2] * out->d[3]);
    if (strcmp(l->ops->type, "linear") == 0) return 2.0 * uses;
    return 0;
}

static void layer_totals(const rn_layer *l, const rn_shape *out, int64_t *params, double *flops)
{
    const rn_chain *c;
    int any = 0;
    for (int k = 0; (c = rn_container_chain(l, k)); k++) {
        any = 1;
        for (int i = 0; i < c->n; i++) layer_totals(c->layers[i], &c->acts[i + 1].shape, params,
                                                    flops);
    }
    if (any) return;
    for (int i = 0; i < l->n_params; i++)
        if (trainable(&l->params[i])) *params += rn_tensor_numel(l->params[i].value);
    *flops += leaf_flops(l, out);
}

static void human(double v, char *buf, size_t len)
{
    if (v >= 1e9) snprintf(buf, len, "%.2fG", v / 1e9);
    else if (v >= 1e6) snprintf(buf, len, "%.2fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, len, "%.1fk", v / 1e3);
    else snprintf(buf, len, "%.0f", v);
}

static void print_chain(FILE *f, const rn_chain *c, int depth, bool cpu)
{
    for (int i = 0; i < c->n; i++) {
        const rn_layer *l = c->layers[i];
        const rn_shape *out = &c->acts[i + 1].shape;
        int64_t params = 0;
        double flops = 0;
        layer_totals(l, out, &params, &flops);
        char shape[64], fl[32], name[96];
        rn_shape per = rn_shape_make(out->ndim - 1, out->d + 1);
        rn_shape_str(&per, shape, sizeof shape);
        human(flops, fl, sizeof fl);
        snprintf(name, sizeof name, "%*s%s", 2 * depth, "", l->name[0] ? l->name : "-");
        const char *kernel = cpu && l->ops->kernel ? l->ops->kernel(l) : "";
        char type[64];
        snprintf(type, sizeof type, kernel[0] ? "%s (%s)" : "%s", l->ops->type, kernel);
        fprintf(f, "  %-34s %-18s %-14s %12lld %10s\n", name, type, shape, (long long)params,
                flops > 0 ? fl : "");
        const rn_chain *inner;
        for (int k = 0; (inner = rn_container_chain(l, k)); k++) {
            if (k == 1) fprintf(f, "  %*s(shortcut)\n", 2 * depth + 2, "");
            print_chain(f, inner, depth + 1, cpu);
        }
    }
}

static void group_line(FILE *f, const char *name, const rn_model *m, const unsigned char *sel)
{
    int64_t numel = 0;
    int tensors = 0;
    for (int i = 0; i < m->n_params; i++) {
        if (!sel[i] || !trainable(&m->params[i])) continue;
        numel += rn_tensor_numel(m->params[i].value);
        tensors++;
    }
    fprintf(f, "  %-20s %12lld parameters in %d tensors\n", name, (long long)numel, tensors);
}

void rn_model_print(FILE *f, const rn_model *m, const char *name, const rn_value *groups,
                    bool cpu)
{
    int64_t params = 0;
    double flops = 0;
    for (int i = 0; i < m->n_layers; i++)
        layer_totals(m->layers[i], &m->acts[i + 1].shape, &params, &flops);
    char in[64], fl[32];
    rn_shape_str(&m->in_shape, in, sizeof in);
    human(flops, fl, sizeof fl);
    fprintf(f, "model %s: input %s, %lld parameters, %s FLOPs per image forward (training ~3x)\n",
            name && name[0] ? name : "(unnamed)", in, (long long)params, fl);
    fprintf(f, "  %-34s %-18s %-14s %12s %10s\n", "layer", "type", "output", "parameters",
            "FLOPs");
    print_chain(f, &m->chain, 0, cpu);
    if (!groups) return;
    fprintf(f, "parameter groups:\n");
    int *group_of = calloc((size_t)m->n_params + 1, sizeof *group_of);
    unsigned char *sel = calloc((size_t)m->n_params + 1, 1);
    char err[256];
    if (group_of && sel && rn_groups_assign(groups, m, group_of, err, sizeof err) == 0) {
        for (int g = -1; g < (int)groups->n_fields; g++) {
            for (int i = 0; i < m->n_params; i++) sel[i] = group_of[i] == g;
            group_line(f, g < 0 ? "default" : groups->keys[g], m, sel);
        }
    }
    free(group_of);
    free(sel);
}
