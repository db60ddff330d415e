/* Parameter groups by name pattern (see param_groups.h). */
#include "param_groups.h"

#include <stdio.h>
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
    if (v->type != RN_V_TABLE || !v->n_items)
        return rn_value_expected(v, "a name pattern like \"layer4.*\", or a list of them with "
                                 "optional settings ({ \"fc.*\", lr = 0.01 })", err, errlen);
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
    const rn_value *groups;
    int group;      /* the group being matched */
    int *group_of;  /* per param */
    char *err;
    size_t errlen;
} match_ctx;

void rn_top_modules(const rn_model *m, char *buf, size_t len)
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
        if (!trainable(&c->m->params[i]) ||
            !rn_pattern_match(pattern->s, c->m->params[i].name))
            continue;
        any = 1;
        int was = c->group_of[i];
        if (was >= 0 && was != c->group) {
            snprintf(c->err, c->errlen, "%s: parameter \"%s\" is in groups \"%s\" and \"%s\"; "
                     "groups must not overlap", pattern->path, c->m->params[i].name,
                     c->groups->keys[was], c->groups->keys[c->group]);
            return -1;
        }
        c->group_of[i] = c->group;
    }
    if (!any) {
        char mods[256];
        rn_top_modules(c->m, mods, sizeof mods);
        snprintf(c->err, c->errlen, "%s: pattern \"%s\" matches no parameter (the model's "
                 "modules: %s)", pattern->path, pattern->s, mods);
        return -1;
    }
    return 0;
}

int rn_groups_assign(const rn_value *groups, const rn_model *m, int *group_of, char *err,
                     size_t errlen)
{
    for (int i = 0; i < m->n_params; i++) group_of[i] = -1;
    if (!groups) return 0;
    if (groups->type != RN_V_TABLE || groups->n_items)
        return rn_value_expected(groups, "a table of named groups { head = \"fc.*\", ... }",
                                 err, errlen);
    match_ctx c = {.m = m, .groups = groups, .group_of = group_of, .err = err,
                   .errlen = errlen};
    for (size_t g = 0; g < groups->n_fields; g++) {
        if (strcmp(groups->keys[g], "default") == 0) {
            snprintf(err, errlen, "%s: \"default\" is the name of the group of parameters in no "
                     "group; choose another", groups->fields[g]->path);
            return -1;
        }
        c.group = (int)g;
        if (each_pattern(groups->fields[g], match_one, &c, err, errlen)) return -1;
    }
    return 0;
}

int rn_groups_check(const rn_value *groups, const rn_model *m, char *err, size_t errlen)
{
    int *group_of = calloc((size_t)m->n_params + 1, sizeof *group_of);
    if (!group_of) {
        snprintf(err, errlen, "groups: out of memory");
        return -1;
    }
    int rc = rn_groups_assign(groups, m, group_of, err, errlen);
    free(group_of);
    return rc;
}
