/* --set key.path=value: overrides applied to the recipe tree after loading. */
#include "value.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct segment {
    char *key;    /* field name, or NULL for an index */
    size_t index; /* 1-based when key == NULL */
} segment;

static void segments_free(segment *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].key);
    free(s);
}

static int is_name_start(int c) { return c == '_' || isalpha(c); }
static int is_name_char(int c) { return c == '_' || isalnum(c); }

/* "a.b[2].c" and a["odd key"] -> segments. Returns 0, -1 on a malformed path (ENOMEM aside). */
static int parse_path(const char *p, size_t len, segment **out, size_t *n_out)
{
    segment *segs = NULL;
    size_t n = 0, i = 0;
    while (i < len) {
        segment sg = {NULL, 0};
        if (n > 0 && p[i] == '.')
            i++;
        else if (n > 0 && p[i] != '[')
            goto bad;
        if (i < len && p[i] == '[') {
            i++;
            if (i < len && (p[i] == '"' || p[i] == '\'')) {
                char q = p[i++];
                size_t start = i;
                while (i < len && p[i] != q)
                    i++;
                if (i + 1 >= len || p[i + 1] != ']')
                    goto bad;
                sg.key = strndup(p + start, i - start);
                if (sg.key == NULL)
                    goto bad;
                i += 2;
            } else {
                size_t start = i;
                while (i < len && isdigit((unsigned char)p[i]))
                    i++;
                if (i == start || i - start > 18 || i >= len || p[i] != ']')
                    goto bad;
                sg.index = (size_t)strtoull(p + start, NULL, 10);
                if (sg.index == 0)
                    goto bad;
                i++;
            }
        } else {
            size_t start = i;
            if (i >= len || !is_name_start((unsigned char)p[i]))
                goto bad;
            while (i < len && is_name_char((unsigned char)p[i]))
                i++;
            sg.key = strndup(p + start, i - start);
            if (sg.key == NULL)
                goto bad;
        }
        segment *grown = realloc(segs, (n + 1) * sizeof *segs);
        if (grown == NULL) {
            free(sg.key);
            goto bad;
        }
        segs = grown;
        segs[n++] = sg;
    }
    *out = segs;
    *n_out = n;
    return 0;
bad:
    segments_free(segs, n);
    return -1;
}

static void trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* A Lua numeral (decimal or hex integer, decimal float); 1 when text is one. */
static int parse_number(const char *text, rn_value *v)
{
    const char *p = text + (*text == '-' || *text == '+');
    char *end;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (!isxdigit((unsigned char)p[2]) || strspn(p + 2, "0123456789abcdefABCDEF") != strlen(p + 2))
            return 0;
        /* Like Lua: hex integers wrap around. */
        uint64_t u = strtoull(p + 2, NULL, 16);
        v->type = RN_V_INT;
        v->i = (int64_t)(*text == '-' ? (uint64_t)0 - u : u);
        v->n = (double)v->i;
        return 1;
    }
    if (strspn(p, "0123456789.eE+-") != strlen(p) || strpbrk(p, "0123456789") == NULL)
        return 0;
    if (strpbrk(p, ".eE") == NULL) {
        errno = 0;
        long long x = strtoll(text, &end, 10);
        if (*end == '\0' && errno == 0) {
            v->type = RN_V_INT;
            v->i = x;
            v->n = (double)x;
            return 1;
        }
    }
    errno = 0;
    double d = strtod(text, &end);
    if (*end != '\0')
        return 0;
    v->type = RN_V_NUMBER;
    v->n = d;
    return 1;
}

/* Parses the literal into v (a fresh RN_V_NIL node); returns 0, or -1 with err set. */
static int parse_literal(const char *text, size_t len, rn_value *v, const char *assignment,
                         char *err, size_t errlen)
{
    trim(&text, &len);
    char *s = strndup(text, len);
    if (s == NULL)
        goto oom;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        v->type = RN_V_BOOL;
        v->b = s[0] == 't';
        free(s);
        return 0;
    }
    if (strcmp(s, "nil") == 0) {
        free(s);
        return 0;
    }
    /* --set does not evaluate Lua: a function would silently become a string. */
    if (strncmp(s, "function", 8) == 0 && (s[8] == '(' || isspace((unsigned char)s[8]))) {
        snprintf(err, errlen, "--set %s: functions cannot be given on the command line (write "
                 "the callback in the recipe)", assignment);
        free(s);
        return -1;
    }
    if (parse_number(s, v)) {
        free(s);
        return 0;
    }
    v->type = RN_V_STRING;
    if (len > 0 && (s[0] == '"' || s[0] == '\'')) {
        char q = s[0];
        size_t o = 0, i = 1;
        for (; i < len && s[i] != q; i++) {
            char c = s[i];
            if (c == '\\' && i + 1 < len) {
                c = s[++i];
                switch (c) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case 'a': c = '\a'; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'v': c = '\v'; break;
                default:
                    if (isdigit((unsigned char)c)) {
                        int x = 0, k = 0;
                        while (k < 3 && i < len && isdigit((unsigned char)s[i]))
                            x = x * 10 + (s[i++] - '0'), k++;
                        i--;
                        if (x == 0 || x > 255) {
                            snprintf(err, errlen, "--set %s: bad escape in string", assignment);
                            free(s);
                            return -1;
                        }
                        c = (char)x;
                    }
                    break;
                }
            }
            s[o++] = c;
        }
        if (i != len - 1) {
            snprintf(err, errlen, "--set %s: unterminated or malformed string literal", assignment);
            free(s);
            return -1;
        }
        s[o] = '\0';
    }
    v->s = s;
    return 0;
oom:
    snprintf(err, errlen, "--set %s: out of memory", assignment);
    return -1;
}

static void remove_field(rn_value *t, const char *key)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        if (strcmp(t->keys[i], key) == 0) {
            free(t->keys[i]);
            rn_value_free(t->fields[i]);
            memmove(t->keys + i, t->keys + i + 1, (t->n_fields - i - 1) * sizeof *t->keys);
            memmove(t->fields + i, t->fields + i + 1, (t->n_fields - i - 1) * sizeof *t->fields);
            t->n_fields--;
            return;
        }
    }
}

/* Stores node (owned) under segment sg of table t; replaces what was there. */
static int store(rn_value *t, const segment *sg, rn_value *node, const char *assignment, char *err,
                 size_t errlen)
{
    if (sg->key) {
        if (rn_value_put_field(t, sg->key, node) != 0)
            goto oom;
        return 0;
    }
    if (sg->index <= t->n_items) {
        rn_value_free(t->items[sg->index - 1]);
        t->items[sg->index - 1] = node;
        return 0;
    }
    if (rn_value_push_item(t, node) != 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "--set %s: out of memory", assignment);
    return -1;
}

int rn_value_set(rn_value *root, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    if (eq == NULL) {
        snprintf(err, errlen, "--set %s: missing '=' (expected key.path=value)", assignment);
        return -1;
    }
    const char *p = assignment;
    size_t plen = (size_t)(eq - assignment);
    trim(&p, &plen);
    if (plen == 0) {
        snprintf(err, errlen, "--set %s: empty key path", assignment);
        return -1;
    }
    segment *segs;
    size_t n;
    if (parse_path(p, plen, &segs, &n) != 0) {
        snprintf(err, errlen, "--set %s: bad key path '%.*s' (expected names joined by '.', and "
                 "[n] for items)", assignment, (int)plen, p);
        return -1;
    }
    int rc = -1;
    rn_value *node = NULL;
    rn_value *t = root;
    if (t == NULL || t->type != RN_V_TABLE) {
        snprintf(err, errlen, "--set %s: the recipe is not a table", assignment);
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        const segment *sg = &segs[k];
        char *path = sg->key ? rn_path_join_key(t->path, sg->key)
                             : rn_path_join_index(t->path, sg->index);
        if (path == NULL)
            goto oom;
        if (sg->key == NULL && sg->index > t->n_items + 1) {
            snprintf(err, errlen, "--set %s: %s has %zu items; setting %s would leave a gap",
                     assignment, rn_value_display_path(t->path), t->n_items, path);
            free(path);
            goto done;
        }
        rn_value *child = sg->key ? (rn_value *)rn_value_field(t, sg->key)
                                  : (sg->index <= t->n_items ? t->items[sg->index - 1] : NULL);
        if (k + 1 == n) {
            node = rn_value_new(RN_V_NIL, path);
            free(path);
            if (node == NULL)
                goto oom;
            if (parse_literal(eq + 1, strlen(eq + 1), node, assignment, err, errlen) != 0)
                goto done;
            if (node->type == RN_V_NIL) {
                /* `key=nil` removes a field; an item can only be removed from the end. */
                if (sg->key) {
                    remove_field(t, sg->key);
                } else if (sg->index == t->n_items) {
                    rn_value_free(t->items[--t->n_items]);
                } else if (sg->index < t->n_items) {
                    snprintf(err, errlen, "--set %s: only the last item of %s can be removed",
                             assignment, rn_value_display_path(t->path));
                    goto done;
                }
                rc = 0;
                goto done;
            }
            rc = store(t, sg, node, assignment, err, errlen);
            node = NULL;
            goto done;
        }
        if (child == NULL || child->type == RN_V_NIL) {
            child = rn_value_new(RN_V_TABLE, path);
            free(path);
            if (child == NULL || store(t, sg, child, assignment, err, errlen) != 0)
                goto oom;
        } else {
            if (child->type != RN_V_TABLE) {
                snprintf(err, errlen, "--set %s: %s is a %s, not a table", assignment, path,
                         rn_vtype_name(child->type));
                free(path);
                goto done;
            }
            free(path);
        }
        t = child;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "--set %s: out of memory", assignment);
done:
    rn_value_free(node);
    segments_free(segs, n);
    return rc;
}
