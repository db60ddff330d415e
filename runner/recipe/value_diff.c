/* Where two recipe trees differ (see value.h). */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct diff_ctx {
    char *buf;
    size_t len, off;
    int found, max;
} diff_ctx;

/* A function's text as the resolved recipe writes it: what two loads of one recipe agree on. */
static char *function_text(const rn_value *v)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f) return NULL;
    rn_value_write_expr(v, 0, f);
    fclose(f);
    return text;
}

static void describe(const rn_value *v, char *buf, size_t len)
{
    if (!v) snprintf(buf, len, "nothing");
    else if (v->type == RN_V_FUNCTION) snprintf(buf, len, "a function");
    else rn_value_describe(v, buf, len);
}

static void report(diff_ctx *c, const char *path, const rn_value *a, const rn_value *b)
{
    if (++c->found > c->max || c->off >= c->len) return;
    char x[96], y[96];
    describe(a, x, sizeof x);
    describe(b, y, sizeof y);
    c->off += (size_t)snprintf(c->buf + c->off, c->len - c->off, "%s%s: %s -> %s",
                               c->found > 1 ? "; " : "", path[0] ? path : "(the recipe)", x, y);
}

static int leaf_equal(const rn_value *a, const rn_value *b)
{
    if (a->type == RN_V_FUNCTION) {
        char *x = function_text(a), *y = function_text(b);
        int same = x && y && strcmp(x, y) == 0;
        free(x);
        free(y);
        return same;
    }
    return rn_value_equal(a, b);
}

static void walk(diff_ctx *c, const char *path, const rn_value *a, const rn_value *b)
{
    if (!a || !b || a->type != b->type) {
        int numbers = a && b && (a->type == RN_V_INT || a->type == RN_V_NUMBER) &&
                      (b->type == RN_V_INT || b->type == RN_V_NUMBER);
        if (!numbers || a->n != b->n) report(c, path, a, b);
        return;
    }
    if (a->type != RN_V_TABLE) {
        if (!leaf_equal(a, b)) report(c, path, a, b);
        return;
    }
    size_t n = a->n_items > b->n_items ? a->n_items : b->n_items;
    for (size_t i = 0; i < n; i++) {
        char *p = rn_path_join_index(path, i + 1);
        walk(c, p ? p : path, i < a->n_items ? a->items[i] : NULL,
             i < b->n_items ? b->items[i] : NULL);
        free(p);
    }
    /* fields are sorted by key: merge the two lists */
    size_t i = 0, j = 0;
    while (i < a->n_fields || j < b->n_fields) {
        int cmp = i == a->n_fields ? 1 : j == b->n_fields ? -1 : strcmp(a->keys[i], b->keys[j]);
        const char *key = cmp <= 0 ? a->keys[i] : b->keys[j];
        char *p = rn_path_join_key(path, key);
        walk(c, p ? p : path, cmp <= 0 ? a->fields[i] : NULL, cmp >= 0 ? b->fields[j] : NULL);
        free(p);
        if (cmp <= 0) i++;
        if (cmp >= 0) j++;
    }
}

int rn_value_diff(const rn_value *a, const rn_value *b, char *buf, size_t len, int max)
{
    diff_ctx c = {.buf = buf, .len = len, .max = max};
    buf[0] = 0;
    walk(&c, "", a, b);
    if (c.found > max && c.off < len)
        snprintf(buf + c.off, len - c.off, "; and %d more", c.found - max);
    return c.found;
}
