/* The recipe tree: nodes, paths, lookup and the typed getters the validators use. */
#include "value.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *rn_vtype_name(rn_vtype t)
{
    switch (t) {
    case RN_V_NIL: return "nil";
    case RN_V_BOOL: return "boolean";
    case RN_V_INT:
    case RN_V_NUMBER: return "number";
    case RN_V_STRING: return "string";
    case RN_V_TABLE: return "table";
    case RN_V_FUNCTION: return "function";
    }
    return "?";
}

/* Floats print like Lua prints them: 0.5, 1e-05, and 3.0 (not 3) so they differ from integers. */
static void format_float(double x, char *buf, size_t len)
{
    snprintf(buf, len, "%.14g", x);
    if (isfinite(x) && strspn(buf, "-0123456789") == strlen(buf) && strlen(buf) + 2 < len)
        strcat(buf, ".0");
}

const char *rn_value_describe(const rn_value *v, char *buf, size_t len)
{
    char num[64];
    if (v == NULL) {
        snprintf(buf, len, "nil");
        return buf;
    }
    switch (v->type) {
    case RN_V_BOOL: snprintf(buf, len, "boolean %s", v->b ? "true" : "false"); break;
    case RN_V_INT: snprintf(buf, len, "number %" PRId64, v->i); break;
    case RN_V_NUMBER:
        format_float(v->n, num, sizeof num);
        snprintf(buf, len, "number %s", num);
        break;
    case RN_V_STRING: {
        size_t n = strlen(v->s);
        if (n > 40)
            snprintf(buf, len, "string \"%.37s...\"", v->s);
        else
            snprintf(buf, len, "string \"%s\"", v->s);
        break;
    }
    default: snprintf(buf, len, "%s", rn_vtype_name(v->type)); break;
    }
    return buf;
}

rn_value *rn_value_new(rn_vtype type, const char *path)
{
    rn_value *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    v->type = type;
    v->path = strdup(path ? path : "");
    if (v->path == NULL) {
        free(v);
        return NULL;
    }
    return v;
}

void rn_value_free(rn_value *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_items; i++)
        rn_value_free(v->items[i]);
    for (size_t i = 0; i < v->n_fields; i++) {
        free(v->keys ? v->keys[i] : NULL);
        rn_value_free(v->fields ? v->fields[i] : NULL);
    }
    free(v->items);
    free(v->keys);
    free(v->fields);
    free(v->s);
    free(v->fn_why);
    free(v->path);
    free(v);
}

rn_value *rn_value_clone(const rn_value *v)
{
    if (v == NULL)
        return NULL;
    rn_value *c = rn_value_new(v->type, v->path);
    if (c == NULL)
        return NULL;
    c->b = v->b;
    c->i = v->i;
    c->n = v->n;
    c->fn_ref = v->fn_ref;
    if (v->s && (c->s = strdup(v->s)) == NULL)
        goto fail;
    if (v->fn_why && (c->fn_why = strdup(v->fn_why)) == NULL)
        goto fail;
    if (v->n_items) {
        if ((c->items = calloc(v->n_items, sizeof *c->items)) == NULL)
            goto fail;
        c->n_items = v->n_items;
        for (size_t i = 0; i < v->n_items; i++)
            if (v->items[i] && (c->items[i] = rn_value_clone(v->items[i])) == NULL)
                goto fail;
    }
    if (v->n_fields) {
        c->keys = calloc(v->n_fields, sizeof *c->keys);
        c->fields = calloc(v->n_fields, sizeof *c->fields);
        if (c->keys == NULL || c->fields == NULL)
            goto fail;
        c->n_fields = v->n_fields;
        for (size_t i = 0; i < v->n_fields; i++) {
            if ((c->keys[i] = strdup(v->keys[i])) == NULL)
                goto fail;
            if (v->fields[i] && (c->fields[i] = rn_value_clone(v->fields[i])) == NULL)
                goto fail;
        }
    }
    return c;
fail:
    rn_value_free(c);
    return NULL;
}

/* Binary search over the sorted keys: index of key, or -(insertion point) - 1. */
static long field_index(const rn_value *t, const char *key)
{
    size_t lo = 0, hi = t->n_fields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->keys[mid], key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

const rn_value *rn_value_field(const rn_value *t, const char *key)
{
    if (t == NULL || t->type != RN_V_TABLE || key == NULL)
        return NULL;
    long i = field_index(t, key);
    return i >= 0 ? t->fields[i] : NULL;
}

const rn_value *rn_value_item(const rn_value *t, size_t i)
{
    if (t == NULL || t->type != RN_V_TABLE || i >= t->n_items)
        return NULL;
    return t->items[i];
}

int rn_value_put_field(rn_value *t, const char *key, rn_value *child)
{
    if (t == NULL || t->type != RN_V_TABLE) {
        rn_value_free(child);
        return -1;
    }
    long i = field_index(t, key);
    if (i >= 0) {
        rn_value_free(t->fields[i]);
        t->fields[i] = child;
        return 0;
    }
    size_t at = (size_t)(-i - 1);
    char *k = strdup(key);
    char **keys = realloc(t->keys, (t->n_fields + 1) * sizeof *keys);
    if (keys)
        t->keys = keys;
    rn_value **fields = realloc(t->fields, (t->n_fields + 1) * sizeof *fields);
    if (fields)
        t->fields = fields;
    if (k == NULL || keys == NULL || fields == NULL) {
        free(k);
        rn_value_free(child);
        return -1;
    }
    memmove(t->keys + at + 1, t->keys + at, (t->n_fields - at) * sizeof *keys);
    memmove(t->fields + at + 1, t->fields + at, (t->n_fields - at) * sizeof *fields);
    t->keys[at] = k;
    t->fields[at] = child;
    t->n_fields++;
    return 0;
}

int rn_value_push_item(rn_value *t, rn_value *child)
{
    if (t == NULL || t->type != RN_V_TABLE) {
        rn_value_free(child);
        return -1;
    }
    rn_value **items = realloc(t->items, (t->n_items + 1) * sizeof *items);
    if (items == NULL) {
        rn_value_free(child);
        return -1;
    }
    t->items = items;
    t->items[t->n_items++] = child;
    return 0;
}

int rn_value_equal(const rn_value *a, const rn_value *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case RN_V_NIL: return 1;
    case RN_V_FUNCTION: return a->s == NULL ? b->s == NULL : b->s && strcmp(a->s, b->s) == 0;
    case RN_V_BOOL: return !a->b == !b->b;
    case RN_V_INT: return a->i == b->i;
    case RN_V_NUMBER: return a->n == b->n || (isnan(a->n) && isnan(b->n));
    case RN_V_STRING: return strcmp(a->s, b->s) == 0;
    case RN_V_TABLE:
        if (a->n_items != b->n_items || a->n_fields != b->n_fields)
            return 0;
        for (size_t i = 0; i < a->n_items; i++)
            if (!rn_value_equal(a->items[i], b->items[i]))
                return 0;
        for (size_t i = 0; i < a->n_fields; i++)
            if (strcmp(a->keys[i], b->keys[i]) != 0 || !rn_value_equal(a->fields[i], b->fields[i]))
                return 0;
        return 1;
    }
    return 0;
}

/* --- paths ---------------------------------------------------------------------------------- */

const char *rn_value_display_path(const char *path)
{
    return path && *path ? path : "recipe";
}

static int is_identifier(const char *s)
{
    static const char *const reserved[] = {
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
        "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"};
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return 0;
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strcmp(s, reserved[i]) == 0)
            return 0;
    return 1;
}

int rn_value_is_identifier(const char *s)
{
    return is_identifier(s);
}

static char *path_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *rn_path_join_key(const char *parent, const char *key)
{
    if (parent == NULL)
        parent = "";
    if (is_identifier(key))
        return *parent ? path_printf("%s.%s", parent, key) : strdup(key);
    return path_printf("%s[\"%s\"]", parent, key);
}

char *rn_path_join_index(const char *parent, size_t lua_index)
{
    return path_printf("%s[%zu]", parent ? parent : "", lua_index);
}

/* --- getters -------------------------------------------------------------------------------- */

int rn_value_expected(const rn_value *v, const char *what, char *err, size_t errlen)
{
    char d[96];
    snprintf(err, errlen, "%s: expected %s, got %s", rn_value_display_path(v ? v->path : ""), what,
             rn_value_describe(v, d, sizeof d));
    return -1;
}

/* Looks up key in t. Returns 1 with *v set when present, 0 when absent (or an error when it is
 * required: "<path>: missing (expected <what>)"), -1 on error. */
static int lookup(const rn_value *t, const char *key, int required, const char *what,
                  const rn_value **v, char *err, size_t errlen)
{
    *v = NULL;
    if (t != NULL && t->type != RN_V_TABLE)
        return rn_value_expected(t, "a table", err, errlen);
    *v = rn_value_field(t, key);
    if (*v != NULL && (*v)->type != RN_V_NIL)
        return 1;
    if (!required)
        return 0;
    char *path = rn_path_join_key(t ? t->path : "", key);
    snprintf(err, errlen, "%s: missing (expected %s)", path ? path : key, what);
    free(path);
    return -1;
}

int rn_get_number(const rn_value *t, const char *key, int required, double def, double min,
                  double max, double *out, char *err, size_t errlen)
{
    const rn_value *v;
    int r = lookup(t, key, required, "a number", &v, err, errlen);
    *out = def;
    if (r <= 0)
        return r;
    if (v->type != RN_V_INT && v->type != RN_V_NUMBER)
        return rn_value_expected(v, "a number", err, errlen);
    double x = v->type == RN_V_INT ? (double)v->i : v->n;
    if (min <= max && !(x >= min && x <= max)) {
        char got[64];
        if (v->type == RN_V_INT)
            snprintf(got, sizeof got, "%" PRId64, v->i);
        else
            format_float(x, got, sizeof got);
        snprintf(err, errlen, "%s: expected a number in [%.14g, %.14g], got %s", v->path, min, max,
                 got);
        return -1;
    }
    *out = x;
    return 0;
}

int rn_get_int(const rn_value *t, const char *key, int required, int64_t def, int64_t min,
               int64_t max, int64_t *out, char *err, size_t errlen)
{
    const rn_value *v;
    int r = lookup(t, key, required, "an integer", &v, err, errlen);
    *out = def;
    if (r <= 0)
        return r;
    int64_t x;
    /* 2^7 is the float 128.0 in Lua: accept floats that hold an integer exactly. */
    if (v->type == RN_V_INT)
        x = v->i;
    else if (v->type == RN_V_NUMBER && v->n == floor(v->n) && v->n >= -9223372036854775808.0 &&
             v->n < 9223372036854775808.0)
        x = (int64_t)v->n;
    else
        return rn_value_expected(v, "an integer", err, errlen);
    if (min <= max && (x < min || x > max)) {
        snprintf(err, errlen, "%s: expected an integer in [%" PRId64 ", %" PRId64 "], got %" PRId64,
                 v->path, min, max, x);
        return -1;
    }
    *out = x;
    return 0;
}

int rn_get_bool(const rn_value *t, const char *key, int required, int def, int *out, char *err,
                size_t errlen)
{
    const rn_value *v;
    int r = lookup(t, key, required, "a boolean", &v, err, errlen);
    *out = def;
    if (r <= 0)
        return r;
    if (v->type != RN_V_BOOL)
        return rn_value_expected(v, "a boolean", err, errlen);
    *out = v->b;
    return 0;
}

int rn_get_string(const rn_value *t, const char *key, int required, const char *def,
                  const char **out, char *err, size_t errlen)
{
    const rn_value *v;
    int r = lookup(t, key, required, "a string", &v, err, errlen);
    *out = def;
    if (r <= 0)
        return r;
    if (v->type != RN_V_STRING)
        return rn_value_expected(v, "a string", err, errlen);
    *out = v->s;
    return 0;
}
