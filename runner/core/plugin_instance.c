/* Plugin instances: a recipe node checked against the plugin's settings schema, then create(). */
#include "plugin_ctx.h"

#include "lua_callback.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- settings validation ------------------------------------------------------------------- */

static const char *type_word(rn_setting_type t)
{
    switch (t) {
    case RN_SETTING_NUMBER: return "a number";
    case RN_SETTING_INT: return "an integer";
    case RN_SETTING_BOOL: return "a boolean";
    case RN_SETTING_STRING: return "a string";
    case RN_SETTING_NUMBERS: return "a list of numbers";
    }
    return "?";
}

size_t rn_parse_numbers(const char *text, double *out, size_t cap)
{
    size_t n = 0;
    const char *c = text;
    for (;;) {
        char *end;
        double x = strtod(c, &end);
        if (end == c || !isfinite(x) || n == cap) return 0;
        out[n++] = x;
        while (*end == ' ' || *end == '\t') end++;
        if (!*end) return n;
        if (*end != ',') return 0;
        c = end + 1;
    }
}

static int choice_ok(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, s, n) == 0) return 1;
        if (!bar) break;
        c = bar + 1;
    }
    return 0;
}

static void list_settings(const rn_plugin *p, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < p->n_settings && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", p->settings[i].name);
    if (!p->n_settings) snprintf(buf, len, "none");
}

/* Checks one number (a NUMBER or INT setting, or an element of a NUMBERS list, whose own path
 * v has) against the schema's type and range. */
static int check_number(const rn_setting *s, const rn_value *v, char *err, size_t errlen)
{
    char what[160];
    int range = s->min <= s->max;
    int lo_open = (s->flags & RN_SETTING_MIN_EXCLUSIVE) != 0;
    int hi_open = (s->flags & RN_SETTING_MAX_EXCLUSIVE) != 0;
    const char *word = type_word(s->type == RN_SETTING_INT ? RN_SETTING_INT : RN_SETTING_NUMBER);
    int ok = v->type == RN_V_INT || v->type == RN_V_NUMBER;
    if (ok && s->type == RN_SETTING_INT && v->type == RN_V_NUMBER && v->n != floor(v->n)) ok = 0;
    int outside = range && (v->n < s->min || v->n > s->max || (lo_open && v->n == s->min) ||
                            (hi_open && v->n == s->max));
    if (ok && isfinite(v->n) && !outside) return 0;
    if (range)
        snprintf(what, sizeof what, "%s in %c%g, %g%c", word, lo_open ? '(' : '[', s->min,
                 s->max, hi_open ? ')' : ']');
    else
        snprintf(what, sizeof what, "%s", word);
    if (ok) {
        snprintf(err, errlen, "%s: expected %s, got %.17g", v->path, what, v->n);
        return -1;
    }
    return rn_value_expected(v, what, err, errlen);
}

/* A NUMBERS value: one number, or a table of 1..RN_MAX_SETTING_NUMBERS numbers and nothing else;
 * each element is checked under its own path ("...std[2]"). */
static int take_numbers(const rn_setting *s, const rn_value *v, rn_setting_value *out, char *err,
                        size_t errlen)
{
    if (v->type == RN_V_INT || v->type == RN_V_NUMBER) {
        if (check_number(s, v, err, errlen)) return -1;
        out->numbers[0] = v->n;
        out->n_numbers = 1;
        return 0;
    }
    if (v->type != RN_V_TABLE || v->n_fields || v->n_items < 1 ||
        v->n_items > RN_MAX_SETTING_NUMBERS) {
        char what[64];
        snprintf(what, sizeof what, "a list of 1 to %d numbers", RN_MAX_SETTING_NUMBERS);
        return rn_value_expected(v, what, err, errlen);
    }
    for (size_t k = 0; k < v->n_items; k++) {
        if (check_number(s, v->items[k], err, errlen)) return -1;
        out->numbers[k] = v->items[k]->n;
    }
    out->n_numbers = v->n_items;
    return 0;
}

/* Checks one recipe value against its schema entry and stores it. */
static int take_value(const rn_setting *s, const rn_value *v, rn_setting_value *out, char *err,
                      size_t errlen)
{
    char what[160];
    out->given = 1;
    switch (s->type) {
    case RN_SETTING_NUMBER:
    case RN_SETTING_INT:
        if (check_number(s, v, err, errlen)) return -1;
        out->number = v->n;
        return 0;
    case RN_SETTING_NUMBERS:
        return take_numbers(s, v, out, err, errlen);
    case RN_SETTING_BOOL:
        if (v->type != RN_V_BOOL) return rn_value_expected(v, "a boolean", err, errlen);
        out->number = v->b;
        return 0;
    case RN_SETTING_STRING:
        if (v->type != RN_V_STRING) return rn_value_expected(v, "a string", err, errlen);
        if (s->choices && !choice_ok(s->choices, v->s)) {
            snprintf(what, sizeof what, "one of %s", s->choices);
            return rn_value_expected(v, what, err, errlen);
        }
        free(out->string);
        out->string = strdup(v->s);
        return 0;
    }
    return -1;
}

static int apply_table(const rn_plugin *p, const rn_value *t, rn_setting_value *values,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        size_t k;
        const rn_setting *s = rn_find_setting(p, t->keys[i], &k);
        if (!s) {
            char names[512];
            list_settings(p, names, sizeof names);
            snprintf(err, errlen, "%s: unknown setting of %s \"%s\" (settings: %s)",
                     t->fields[i]->path, rn_kind_name(p->kind), p->id, names);
            return -1;
        }
        if (take_value(s, t->fields[i], &values[k], err, errlen)) return -1;
    }
    return 0;
}

static void free_values(const rn_plugin *p, rn_setting_value *values)
{
    if (!values) return;
    for (size_t i = 0; i < p->n_settings; i++) free(values[i].string);
    free(values);
}

/* The instance's host side: its settings and the state copy host->save_state kept. */
static void free_ctx(rn_ctx *ctx)
{
    if (ctx->state_copy && ctx->run && ctx->run->ops) ctx->run->ops->free_state(ctx->state_copy);
    free_values(ctx->plugin, ctx->values);
    free(ctx);
}

int rn_instance_create(rn_instance *inst, const rn_registry *reg, rn_plugin_kind kind,
                       const rn_value *spec, const rn_run_view *run, uint64_t slot,
                       char *err, size_t errlen)
{
    memset(inst, 0, sizeof *inst);
    const char *id = NULL;
    if (spec->type == RN_V_STRING) {
        id = spec->s;
    } else if (spec->type == RN_V_TABLE && spec->n_items >= 1 &&
               spec->items[0]->type == RN_V_STRING) {
        id = spec->items[0]->s;
        if (spec->n_items > 1) {
            char what[96];
            snprintf(what, sizeof what, "a named setting (%s = value)", rn_kind_name(kind));
            return rn_value_expected(spec->items[1], what, err, errlen);
        }
    } else {
        char what[128];
        snprintf(what, sizeof what, "a %s: a table like {\"id\", setting = value}",
                 rn_kind_name(kind));
        return rn_value_expected(spec, what, err, errlen);
    }
    const char *where = spec->path && spec->path[0] ? spec->path : "recipe";
    const char *path = NULL;
    const rn_plugin *p = rn_registry_find(reg, kind, id, where, &path, err, errlen);
    if (!p) return -1;
    unsigned device = run && run->device ? run->device : RN_DEVICE_CPU;
    if (!(p->devices & device)) {
        const char *dev = device == RN_DEVICE_CUDA ? "cuda" : "cpu";
        snprintf(err, errlen, "%s: %s \"%s\" %s (%s) has no %s variant (it runs on:%s%s), and "
                 "this run trains on %s", where, rn_kind_name(kind), id, p->version, path, dev,
                 p->devices & RN_DEVICE_CPU ? " cpu" : "", p->devices & RN_DEVICE_CUDA ? " cuda" : "",
                 dev);
        return -1;
    }

    rn_ctx *ctx = calloc(1, sizeof *ctx);
    rn_setting_value *values = calloc(p->n_settings ? p->n_settings : 1, sizeof *values);
    if (!ctx || !values) {
        free(ctx);
        free(values);
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    for (size_t i = 0; i < p->n_settings; i++) {
        values[i].number = p->settings[i].default_number;
        if (p->settings[i].type == RN_SETTING_STRING && p->settings[i].default_string)
            values[i].string = strdup(p->settings[i].default_string);
        /* The registry refused a default that does not parse: 0 numbers means required. */
        if (p->settings[i].type == RN_SETTING_NUMBERS && p->settings[i].default_string)
            values[i].n_numbers = rn_parse_numbers(p->settings[i].default_string,
                                                   values[i].numbers, RN_MAX_SETTING_NUMBERS);
    }
    int rc = spec->type == RN_V_TABLE ? apply_table(p, spec, values, err, errlen) : 0;
    for (size_t i = 0; rc == 0 && i < p->n_settings; i++) {
        const rn_setting *st = &p->settings[i];
        int missing = (st->flags & RN_SETTING_REQUIRED) && !values[i].given;
        if (st->type == RN_SETTING_STRING && !values[i].string) missing = 1;
        if (st->type == RN_SETTING_NUMBERS && !values[i].n_numbers) missing = 1;
        if (missing) {
            snprintf(err, errlen, "%s.%s: missing (expected %s: %s)", where, st->name,
                     type_word(st->type), st->doc ? st->doc : "required");
            rc = -1;
        }
    }
    if (rc) {
        free_values(p, values);
        free(ctx);
        return -1;
    }
    ctx->plugin = p;
    ctx->values = values;
    ctx->run = run;
    ctx->seed = rn_mix64((run ? run->seed : 0) ^ rn_mix64(slot * 0x100 + (uint64_t)kind));

    void *self = NULL;
    if (p->create(rn_host_table(), ctx, &self) != RN_OK) {
        snprintf(err, errlen, "%s: %s", where,
                 ctx->error[0] ? ctx->error : "plugin create failed without a message");
        free_ctx(ctx);
        return -1;
    }
    inst->plugin = p;
    inst->path = path;
    inst->self = self;
    inst->ctx = ctx;
    return 0;
}

int rn_instance_create_lua(rn_instance *inst, rn_sandbox *sb, const rn_value *spec,
                           const rn_run_view *run, uint64_t slot, const char *recipe_path,
                           char *err, size_t errlen)
{
    memset(inst, 0, sizeof *inst);
    if (!sb) {
        snprintf(err, errlen, "%s: a Lua callback needs the recipe's sandbox (this caller has "
                 "none)", spec->path);
        return -1;
    }
    rn_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "%s: out of memory", spec->path);
        return -1;
    }
    ctx->plugin = rn_lua_callback_plugin();
    ctx->run = run;
    ctx->seed = rn_mix64((run ? run->seed : 0) ^ rn_mix64(slot * 0x100 + RN_KIND_CALLBACK));
    if (rn_lua_callback_create(sb, spec, rn_host_table(), ctx, &inst->self, err, errlen)) {
        free_ctx(ctx);
        return -1;
    }
    inst->plugin = ctx->plugin;
    inst->ctx = ctx;
    inst->path = recipe_path; /* provenance hashes the recipe for it */
    return 0;
}

void rn_instance_destroy(rn_instance *inst)
{
    if (!inst->plugin) return;
    inst->plugin->destroy(inst->self);
    free_ctx(inst->ctx);
    memset(inst, 0, sizeof *inst);
}

const char *rn_instance_error(const rn_instance *inst)
{
    return inst->ctx && inst->ctx->error[0] ? inst->ctx->error : "unknown plugin error";
}

int rn_instance_number(const rn_instance *inst, const char *key, double *out)
{
    size_t i;
    const rn_setting *s = rn_find_setting(inst->plugin, key, &i);
    if (!s || s->type == RN_SETTING_STRING || s->type == RN_SETTING_NUMBERS) return 0;
    *out = inst->ctx->values[i].number;
    return 1;
}

const char *rn_instance_string(const rn_instance *inst, const char *key)
{
    size_t i;
    const rn_setting *s = rn_find_setting(inst->plugin, key, &i);
    if (!s || s->type != RN_SETTING_STRING || !inst->ctx->values) return NULL;
    return inst->ctx->values[i].string;
}

uint64_t rn_instance_seed(const rn_instance *inst) { return inst->ctx->seed; }
