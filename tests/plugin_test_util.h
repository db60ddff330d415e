/* Helpers for the plugin tests: recipe nodes built by hand (the shape rn_sandbox_run_file gives),
 * the registry over the built plugin dir (RN_PLUGIN_DIR), and fixture paths (RN_FIXTURES). */
#ifndef RN_PLUGIN_TEST_UTIL_H
#define RN_PLUGIN_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_host.h"

static inline char *pt_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) abort();
    memcpy(d, s, n);
    return d;
}

static inline rn_value *pt_node(rn_vtype type, const char *path)
{
    rn_value *v = calloc(1, sizeof *v);
    if (!v) abort();
    v->type = type;
    v->path = pt_strdup(path);
    return v;
}

/* A plugin node {"id"} at `path` ("optimizer", "data.augment[1]"). */
static inline rn_value *pt_spec(const char *path, const char *id)
{
    rn_value *t = pt_node(RN_V_TABLE, path);
    char item_path[256];
    snprintf(item_path, sizeof item_path, "%s[1]", path);
    rn_value *s = pt_node(RN_V_STRING, item_path);
    s->s = pt_strdup(id);
    t->items = malloc(sizeof *t->items);
    t->items[0] = s;
    t->n_items = 1;
    return t;
}

/* Adds a named field (kept sorted by key, as the recipe loader does). */
static inline rn_value *pt_field(rn_value *t, const char *key, rn_vtype type)
{
    char path[256];
    snprintf(path, sizeof path, "%s.%s", t->path, key);
    rn_value *v = pt_node(type, path);
    t->keys = realloc(t->keys, (t->n_fields + 1) * sizeof *t->keys);
    t->fields = realloc(t->fields, (t->n_fields + 1) * sizeof *t->fields);
    size_t at = t->n_fields;
    while (at > 0 && strcmp(t->keys[at - 1], key) > 0) {
        t->keys[at] = t->keys[at - 1];
        t->fields[at] = t->fields[at - 1];
        at--;
    }
    t->keys[at] = pt_strdup(key);
    t->fields[at] = v;
    t->n_fields++;
    return v;
}

static inline rn_value *pt_num(rn_value *t, const char *key, double n)
{
    rn_value *v = pt_field(t, key, RN_V_NUMBER);
    v->n = n;
    return t;
}

static inline rn_value *pt_int(rn_value *t, const char *key, int64_t i)
{
    rn_value *v = pt_field(t, key, RN_V_INT);
    v->i = i;
    v->n = (double)i;
    return t;
}

static inline rn_value *pt_bool(rn_value *t, const char *key, int b)
{
    pt_field(t, key, RN_V_BOOL)->b = b;
    return t;
}

static inline rn_value *pt_str(rn_value *t, const char *key, const char *s)
{
    pt_field(t, key, RN_V_STRING)->s = pt_strdup(s);
    return t;
}

/* A list field {v[0], ..., v[n-1]} whose items carry their paths, as the recipe loader makes. */
static inline rn_value *pt_list(rn_value *t, const char *key, const double *v, size_t n)
{
    rn_value *l = pt_field(t, key, RN_V_TABLE);
    l->items = malloc((n ? n : 1) * sizeof *l->items);
    for (size_t k = 0; k < n; k++) {
        char path[300];
        snprintf(path, sizeof path, "%s[%zu]", l->path, k + 1);
        l->items[k] = pt_node(RN_V_NUMBER, path);
        l->items[k]->n = v[k];
    }
    l->n_items = n;
    return t;
}

static inline void pt_free(rn_value *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n_items; i++) pt_free(v->items[i]);
    for (size_t i = 0; i < v->n_fields; i++) {
        free(v->keys[i]);
        pt_free(v->fields[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->fields);
    free(v->s);
    free(v->path);
    free(v);
}

/* The registry over the built-in plugin dir; exits the test when it cannot be scanned. */
static inline rn_registry *pt_registry(void)
{
    const char *dir = getenv("RN_PLUGIN_DIR");
    if (!dir) {
        fprintf(stderr, "RN_PLUGIN_DIR is not set (run the test through ctest)\n");
        exit(2);
    }
    rn_registry *reg = NULL;
    char err[512];
    if (rn_registry_scan(&reg, &dir, 1, err, sizeof err)) {
        fprintf(stderr, "registry scan failed: %s\n", err);
        exit(2);
    }
    return reg;
}

/* Creates an instance from spec (which the helper frees); exits the test on failure. */
static inline void pt_create(rn_instance *inst, const rn_registry *reg, rn_plugin_kind kind,
                      rn_value *spec, const rn_run_view *run)
{
    char err[512];
    int rc = rn_instance_create(inst, reg, kind, spec, run, 1, err, sizeof err);
    pt_free(spec);
    if (rc) {
        fprintf(stderr, "rn_instance_create failed: %s\n", err);
        exit(2);
    }
}

/* Expects rn_instance_create to fail; returns the message in err. */
static inline int pt_create_fails(const rn_registry *reg, rn_plugin_kind kind, rn_value *spec,
                           char *err, size_t errlen)
{
    rn_instance inst;
    int rc = rn_instance_create(&inst, reg, kind, spec, NULL, 1, err, errlen);
    pt_free(spec);
    if (rc == 0) {
        rn_instance_destroy(&inst);
        snprintf(err, errlen, "(no error)");
        return 0;
    }
    return 1;
}

static inline FILE *pt_fixture(const char *name)
{
    const char *dir = getenv("RN_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open fixture %s\n", path);
        exit(2);
    }
    return f;
}

#endif
