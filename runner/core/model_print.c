/* The model as a table, and parameter groups by name pattern. */
#include "model_print.h"

#include <stdlib.h>
#include <string.h>

int rn_pattern_match(const char *p, const char *s)
{
    /* Iterative glob with one backtrack point: linear in practice, no recursion. */
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == '?' || *p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*') p++;
    return *p == '\0';
}

/* ---- groups -------------------------------------------------------------------------------- */

static int trainable(const rn_param_ref *p) { return p->grad != NULL; }

/* Calls fn for each pattern of a group's value (a string or a list of strings). */
static int each_pattern(const rn_value *v, int (*fn)(void *, const rn_value *), void *arg,
                        char *err, size_t errlen)
{
    if (v->type == RN_V_STRING) return fn(arg, v);
    if (v->type != RN_V_TABLE || v->n_fields || !v->n_items)
        return rn_value_expected(v, "a name pattern like \"layer4.*\" or a list of them", err,
                                 errlen);
    for (size_t i = 0; i < v->n_items; i++) {
        if (v->items[i]->type != RN_V_STRING)
            return rn_value_expected(v->items[i], "a name pattern like \"layer4.*\"", err,
                                     errlen);
        int rc = fn(arg, v->items[i]);
        if (rc) return rc;
    }
    return 0;
}

typedef struct match_ctx {
    const rn_model *m;
    char *err;
    size_t errlen;
    unsigned char *hit; /* per param: matched by this group (may be NULL) */
} match_ctx;

static void top_modules(const rn_model *m, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < m->n_params && off < len; i++) {
        const char *n = m->params[i].name, *dot = strchr(n, '.');
        size_t k = dot ? (size_t)(dot - n) : strlen(n);
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strncmp(m->params[j].name, n, k) == 0 &&
                   (m->params[j].name[k] == '.' || m->params[j].name[k] == 0);
        if (!seen)
            off += (size_t)snprintf(buf + off, len - off, "%s%.*s", off ? ", " : "", (int)k, n);
    }
}

static int match_one(void *arg, const rn_value *pattern)
{
    match_ctx *c = arg;
    int any = 0;
    for (int i = 0; i < c->m->n_params; i++) {
        if (!rn_pattern_match(pattern->s, c->m->params[i].name)) continue;
        any = 1;
        if (c->hit) c->hit[i] = 1;
    }
    if (!any) {
        char mods[256];
        top_modules(c->m, mods, sizeof mods);
        snprintf(c->err, c->errlen, "%s: pattern \"%s\" matches no parameter (the model's "
                 "modules: %s)", pattern->path, pattern->s, mods);
        return -1;
    }
    return 0;
}

int rn_groups_check(const rn_value *groups, const rn_model *m, char *err, size_t errlen)
{
    if (!groups) return 0;
    if (groups->type != RN_V_TABLE || groups->n_items)
        return rn_value_expected(groups, "a table of named groups { head = \"fc.*\", ... }",
                                 err, errlen);
    match_ctx c = {.m = m, .err = err, .errlen = errlen};
    for (size_t g = 0; g < groups->n_fields; g++)
        if (each_pattern(groups->fields[g], match_one, &c, err, errlen)) return -1;
    return 0;
}

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

static void print_chain(FILE *f, const rn_chain *c, int depth)
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
        fprintf(f, "  %-34s %-18s %-14s %12lld %10s\n", name, l->ops->type, shape,
                (long long)params, flops > 0 ? fl : "");
        const rn_chain *inner;
        for (int k = 0; (inner = rn_container_chain(l, k)); k++) {
            if (k == 1) fprintf(f, "  %*s(shortcut)\n", 2 * depth + 2, "");
            print_chain(f, inner, depth + 1);
        }
    }
}

typedef struct count_ctx {
    const rn_model *m;
    unsigned char *hit;
} count_ctx;

static int mark(void *arg, const rn_value *pattern)
{
    count_ctx *c = arg;
    for (int i = 0; i < c->m->n_params; i++)
        if (rn_pattern_match(pattern->s, c->m->params[i].name)) c->hit[i] = 1;
    return 0;
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

void rn_model_print(FILE *f, const rn_model *m, const char *name, const rn_value *groups)
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
    print_chain(f, &m->chain, 0);
    if (!groups || groups->type != RN_V_TABLE) return;
    fprintf(f, "parameter groups:\n");
    unsigned char *any = calloc((size_t)m->n_params + 1, 1);
    unsigned char *sel = calloc((size_t)m->n_params + 1, 1);
    char err[64];
    for (size_t g = 0; any && sel && g < groups->n_fields; g++) {
        memset(sel, 0, (size_t)m->n_params);
        count_ctx c = {.m = m, .hit = sel};
        each_pattern(groups->fields[g], mark, &c, err, sizeof err);
        group_line(f, groups->keys[g], m, sel);
        for (int i = 0; i < m->n_params; i++) any[i] |= sel[i];
    }
    if (any && sel) {
        for (int i = 0; i < m->n_params; i++) sel[i] = !any[i];
        group_line(f, "(in no group)", m, sel);
    }
    free(any);
    free(sel);
}
