/* Model tables -> layers. The Lua side (recipes/lib/nn.lua) fills defaults; this side checks.
 * Containers (sequential, residual) nest: a child's name is prefixed with its parents' names, so
 * parameters get torchvision's names ("layer1.0.conv1.weight"). */
#include "model_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <runner/plugin.h>

typedef struct builder {
    uint64_t seed;
    uint64_t counter; /* layers built so far, depth first: each layer's init seed */
    char *err;
    size_t errlen;
} builder;

static rn_layer *build_layer(builder *b, const rn_value *t, const char *prefix, size_t index);

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

/* "prefix.name", or name alone at the top level. */
static char *full_name(const char *prefix, const char *name)
{
    size_t n = strlen(prefix) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", prefix, prefix[0] && name[0] ? "." : "", name);
    return s;
}

/* Builds the list `key` of table t (a list of layer tables) under prefix. *out is a malloc'ed
 * array of *n layers (NULL and 0 for an absent optional list). */
static int build_list(builder *b, const rn_value *t, const char *key, int required,
                      const char *prefix, rn_layer ***out, int *n)
{
    *out = NULL;
    *n = 0;
    const rn_value *list = rn_value_field(t, key);
    if (!list && !required) return 0;
    if (!list) {
        snprintf(b->err, b->errlen, "%s.%s: missing (expected a list of layers)", t->path, key);
        return -1;
    }
    if (list->type != RN_V_TABLE || list->n_fields || (required && !list->n_items))
        return rn_value_expected(list, required ? "a non-empty list of layers" : "a list of layers",
                                 b->err, b->errlen);
    rn_layer **ls = calloc(list->n_items + 1, sizeof *ls);
    if (!ls) {
        snprintf(b->err, b->errlen, "%s: out of memory", list->path);
        return -1;
    }
    for (size_t i = 0; i < list->n_items; i++) {
        ls[i] = build_layer(b, list->items[i], prefix, i);
        if (!ls[i]) {
            for (size_t j = 0; j < i; j++) rn_layer_destroy(ls[j]);
            free(ls);
            return -1;
        }
    }
    *out = ls;
    *n = (int)list->n_items;
    return 0;
}

static rn_layer *build_container(builder *b, const rn_value *t, const char *type,
                                 const char *name)
{
    char *path = NULL, *path2 = NULL;
    rn_layer **body = NULL, **shortcut = NULL, *l = NULL;
    int nb = 0, ns = 0, relu = 1;
    if (strcmp(type, "sequential") == 0) {
        static const char *const known[] = {"name", "layers", NULL};
        if (known_keys(t, type, known, b->err, b->errlen) ||
            build_list(b, t, "layers", 1, name, &body, &nb))
            return NULL;
        path = rn_path_join_key(t->path, "layers");
        l = rn_sequential_create(name, body, nb, path, b->err, b->errlen);
    } else {
        static const char *const known[] = {"name", "body", "shortcut", "relu", NULL};
        if (known_keys(t, type, known, b->err, b->errlen) ||
            rn_get_bool(t, "relu", 0, 1, &relu, b->err, b->errlen) ||
            build_list(b, t, "body", 1, name, &body, &nb))
            return NULL;
        if (build_list(b, t, "shortcut", 0, name, &shortcut, &ns)) {
            for (int i = 0; i < nb; i++) rn_layer_destroy(body[i]);
            free(body);
            return NULL;
        }
        path = rn_path_join_key(t->path, "body");
        path2 = rn_path_join_key(t->path, "shortcut");
        l = rn_residual_create(name, body, nb, shortcut, ns, relu, path, path2, b->err,
                               b->errlen);
    }
    free(path);
    free(path2);
    return l;
}

static rn_layer *build_leaf(builder *b, const rn_value *t, const char *type, const char *name,
                            uint64_t seed)
{
    char *err = b->err;
    size_t errlen = b->errlen;
    int64_t in, out, k, stride, pad;
    int bias;
    if (strcmp(type, "conv2d") == 0) {
        static const char *const known[] = {"name", "in_channels", "out_channels", "kernel_size",
                                            "stride", "padding", "dilation", "groups", "bias",
                                            NULL};
        rn_conv2d_args a;
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_int(t, "in_channels", 1, 0, 1, 1 << 16, &a.in_ch, err, errlen) ||
            rn_get_int(t, "out_channels", 1, 0, 1, 1 << 16, &a.out_ch, err, errlen) ||
            rn_get_int(t, "kernel_size", 1, 0, 1, 64, &a.kernel, err, errlen) ||
            rn_get_int(t, "stride", 0, 1, 1, 64, &a.stride, err, errlen) ||
            rn_get_int(t, "padding", 0, 0, 0, 64, &a.padding, err, errlen) ||
            rn_get_int(t, "dilation", 0, 1, 1, 64, &a.dilation, err, errlen) ||
            rn_get_int(t, "groups", 0, 1, 1, 1 << 16, &a.groups, err, errlen) ||
            rn_get_bool(t, "bias", 0, 1, &bias, err, errlen))
            return NULL;
        a.bias = bias;
        return rn_conv2d_create2(name, &a, seed, err, errlen);
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
    if (strcmp(type, "batch_norm2d") == 0) {
        static const char *const known[] = {"name", "num_features", "eps", "momentum", NULL};
        double eps, momentum;
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_int(t, "num_features", 1, 0, 1, 1 << 16, &in, err, errlen) ||
            rn_get_number(t, "eps", 0, 1e-5, 1e-30, 1, &eps, err, errlen) ||
            rn_get_number(t, "momentum", 0, 0.1, 0, 1, &momentum, err, errlen))
            return NULL;
        return rn_batchnorm2d_create(name, in, eps, momentum, err, errlen);
    }
    if (strcmp(type, "max_pool2d") == 0 || strcmp(type, "avg_pool2d") == 0) {
        static const char *const known[] = {"name", "kernel_size", "stride", "padding", NULL};
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_int(t, "kernel_size", 1, 0, 1, 64, &k, err, errlen) ||
            rn_get_int(t, "stride", 0, k, 1, 64, &stride, err, errlen) ||
            rn_get_int(t, "padding", 0, 0, 0, k / 2, &pad, err, errlen))
            return NULL;
        return type[0] == 'm' ? rn_maxpool2d_create2(k, stride, pad, err, errlen)
                              : rn_avgpool2d_create(k, stride, pad, true, err, errlen);
    }
    if (strcmp(type, "dropout") == 0) {
        static const char *const known[] = {"name", "p", NULL};
        double p;
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_number(t, "p", 0, 0.5, 0, 0.999, &p, err, errlen))
            return NULL;
        return rn_dropout_create(p, seed, err, errlen);
    }
    if (strcmp(type, "leaky_relu") == 0) {
        static const char *const known[] = {"name", "negative_slope", NULL};
        double slope;
        if (known_keys(t, type, known, err, errlen) ||
            rn_get_number(t, "negative_slope", 0, 0.01, 1, 0, &slope, err, errlen))
            return NULL;
        return rn_leaky_relu_create(slope, err, errlen);
    }
    static const char *const none[] = {"name", NULL};
    static const struct {
        const char *type;
        rn_layer *(*create)(void);
    } plain[] = {{"relu", rn_relu_create},
                 {"flatten", rn_flatten_create},
                 {"gelu", rn_gelu_create},
                 {"global_avg_pool2d", rn_global_avgpool2d_create},
                 {"identity", rn_identity_create}};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (strcmp(type, plain[i].type) == 0)
            return known_keys(t, type, none, err, errlen) ? NULL : plain[i].create();
    snprintf(err, errlen, "%s: unknown layer \"%s\" (available: conv2d, linear, batch_norm2d, "
             "relu, leaky_relu, gelu, max_pool2d, avg_pool2d, global_avg_pool2d, dropout, "
             "flatten, identity, sequential, residual)", t->items[0]->path, type);
    return NULL;
}

/* An unnamed layer is named by its 0-based index in its list, as nn.Sequential names children
 * ("features.0.weight"), so two unnamed layers never share parameter names. */
static rn_layer *build_layer(builder *b, const rn_value *t, const char *prefix, size_t index)
{
    if (t->type != RN_V_TABLE || t->n_items != 1 || t->items[0]->type != RN_V_STRING) {
        rn_value_expected(t, "a layer table like {\"conv2d\", ...} (use recipes/lib/nn.lua)",
                          b->err, b->errlen);
        return NULL;
    }
    const char *type = t->items[0]->s, *name = "";
    if (rn_get_string(t, "name", 0, "", &name, b->err, b->errlen)) return NULL;
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", index);
    char *full = full_name(prefix, name[0] ? name : idx);
    if (!full) {
        snprintf(b->err, b->errlen, "%s: out of memory", t->path);
        return NULL;
    }
    uint64_t seed = rn_key3(b->seed, 0x6c61796572ull /* "layer" */, b->counter++);
    rn_layer *l = strcmp(type, "sequential") == 0 || strcmp(type, "residual") == 0
                      ? build_container(b, t, type, full)
                      : build_leaf(b, t, type, full, seed);
    /* Layers without parameters take no name at creation; give them theirs for messages. */
    if (l && !l->name[0]) {
        char *copy = strdup(full);
        if (copy) {
            free(l->name);
            l->name = copy;
        }
    }
    free(full);
    return l;
}

int rn_model_build(rn_model *m, const rn_value *spec, rn_shape in_shape, int64_t max_batch,
                   uint64_t seed, char *err, size_t errlen)
{
    /* The top level is a sequential ({"sequential", name = ..., layers = {...}}) whose own name
     * does not prefix its children: torchvision's parameters start at "conv1", not "resnet18.". */
    if (spec->n_items != 1 || spec->items[0]->type != RN_V_STRING ||
        strcmp(spec->items[0]->s, "sequential") != 0)
        return rn_value_expected(spec, "a model: a sequential from lib.nn or lib.models", err,
                                 errlen);
    static const char *const known[] = {"name", "layers", NULL};
    if (known_keys(spec, "sequential", known, err, errlen)) return -1;
    builder b = {.seed = seed, .err = err, .errlen = errlen};
    rn_layer **layers;
    int n;
    if (build_list(&b, spec, "layers", 1, "", &layers, &n)) return -1;
    return rn_model_init(m, layers, n, in_shape, max_batch, err, errlen);
}
