/* Model tables -> layers. The Lua side (recipes/lib/nn.lua) fills defaults; this side checks. */
#include "model_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <runner/plugin.h>

static int known_keys(const rn_value *t, const char *type, const char *const *known, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        int ok = 0;
        for (const char *const *k = known; *k; k++) ok |= strcmp(*k, t->keys[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "%s: unknown setting of layer %s", t->fields[i]->path, type);
            return -1;
        }
    }
    return 0;
}

static rn_layer *build_layer(const rn_value *t, uint64_t seed, char *err, size_t errlen)
{
    if (t->type != RN_V_TABLE || t->n_items != 1 || t->items[0]->type != RN_V_STRING) {
        rn_value_expected(t, "a layer table like {\"conv2d\", ...} (use recipes/lib/nn.lua)", err,
                          errlen);
        return NULL;
    }
    const char *type = t->items[0]->s;
    const char *name = "";
    if (rn_get_string(t, "name", 0, "", &name, err, errlen)) return NULL;
    int64_t in, out, k, stride, pad;
    int bias;
    if (strcmp(type, "conv2d") == 0) {
        static const char *const known[] = {"name", "in_channels", "out_channels", "kernel_size",
                                            "stride", "padding", "bias", NULL};
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_int(t, "in_channels", 1, 0, 1, 1 << 16, &in, err, errlen) ||
            rn_get_int(t, "out_channels", 1, 0, 1, 1 << 16, &out, err, errlen) ||
            rn_get_int(t, "kernel_size", 1, 0, 1, 64, &k, err, errlen) ||
            rn_get_int(t, "stride", 0, 1, 1, 64, &stride, err, errlen) ||
            rn_get_int(t, "padding", 0, 0, 0, 64, &pad, err, errlen) ||
            rn_get_bool(t, "bias", 0, 1, &bias, err, errlen))
            return NULL;
        return rn_conv2d_create(name, in, out, k, stride, pad, bias, seed, err, errlen);
    }
    if (strcmp(type, "linear") == 0) {
        static const char *const known[] = {"name", "in_features", "out_features", "bias", NULL};
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_int(t, "in_features", 1, 0, 1, 1 << 26, &in, err, errlen) ||
            rn_get_int(t, "out_features", 1, 0, 1, 1 << 26, &out, err, errlen) ||
            rn_get_bool(t, "bias", 0, 1, &bias, err, errlen))
            return NULL;
        return rn_linear_create(name, in, out, bias, seed, err, errlen);
    }
    if (strcmp(type, "max_pool2d") == 0) {
        static const char *const known[] = {"name", "kernel_size", "stride", NULL};
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_int(t, "kernel_size", 1, 0, 1, 64, &k, err, errlen) ||
            rn_get_int(t, "stride", 0, k, 1, 64, &stride, err, errlen))
            return NULL;
        return rn_maxpool2d_create(k, stride, err, errlen);
    }
    if (strcmp(type, "dropout") == 0) {
        static const char *const known[] = {"name", "p", NULL};
        double p;
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_number(t, "p", 0, 0.5, 0, 0.999, &p, err, errlen))
            return NULL;
        return rn_dropout_create(p, seed, err, errlen);
    }
    static const char *const none[] = {"name", NULL};
    if (strcmp(type, "relu") == 0)
        return known_keys(t, type, none, err, errlen) ? NULL : rn_relu_create();
    if (strcmp(type, "flatten") == 0)
        return known_keys(t, type, none, err, errlen) ? NULL : rn_flatten_create();
    snprintf(err, errlen, "%s: unknown layer \"%s\" (available: conv2d, linear, relu, max_pool2d, "
             "dropout, flatten)", t->items[0]->path, type);
    return NULL;
}

int rn_model_build(rn_model *m, const rn_value *spec, rn_shape in_shape, int64_t max_batch,
                   uint64_t seed, char *err, size_t errlen)
{
    const char *kind;
    if (rn_get_string(spec, "kind", 0, "sequential", &kind, err, errlen)) return -1;
    if (strcmp(kind, "sequential") != 0) {
        snprintf(err, errlen, "%s.kind: expected \"sequential\", got \"%s\"", spec->path, kind);
        return -1;
    }
    const rn_value *layers = rn_value_field(spec, "layers");
    if (!layers || layers->type != RN_V_TABLE || !layers->n_items || layers->n_fields) {
        if (!layers) {
            snprintf(err, errlen, "%s.layers: missing (expected a list of layers)", spec->path);
            return -1;
        }
        return rn_value_expected(layers, "a non-empty list of layers", err, errlen);
    }
    int n = (int)layers->n_items;
    rn_layer **ls = calloc((size_t)n, sizeof *ls);
    if (!ls) {
        snprintf(err, errlen, "%s: out of memory", spec->path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        ls[i] = build_layer(layers->items[i], rn_key3(seed, 0x6c61796572ull, (uint64_t)i), err,
                            errlen);
        if (!ls[i]) {
            for (int j = 0; j < i; j++) rn_layer_destroy(ls[j]);
            free(ls);
            return -1;
        }
    }
    return rn_model_init(m, ls, n, in_shape, max_batch, err, errlen);
}
