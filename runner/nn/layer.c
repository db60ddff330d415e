/* rn_layer_destroy and helpers shared by the layers. */
#include "nn_internal.h"

#include <runner/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rn_layer *rn_nn_layer_new(const rn_layer_ops *ops, const char *name, size_t impl_size,
                          int n_params)
{
    rn_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->ops = ops;
    l->name = strdup(name ? name : "");
    l->impl = calloc(1, impl_size ? impl_size : 1);
    l->params = n_params ? calloc((size_t)n_params, sizeof *l->params) : NULL;
    l->n_params = n_params;
    if (!l->name || !l->impl || (n_params && !l->params)) {
        free(l->name);
        free(l->impl);
        free(l->params);
        free(l);
        return NULL;
    }
    return l;
}

int rn_nn_layer_set_param(rn_layer *l, int i, const char *suffix, rn_tensor *value,
                          rn_tensor *grad)
{
    size_t len = strlen(l->name) + strlen(suffix) + 2;
    char *full = malloc(len);
    if (!full) return -1;
    snprintf(full, len, "%s%s%s", l->name, l->name[0] ? "." : "", suffix);
    l->params[i].name = full;
    l->params[i].value = value;
    l->params[i].grad = grad;
    return 0;
}

void rn_layer_destroy(rn_layer *l)
{
    if (!l) return;
    if (l->ops && l->ops->destroy) l->ops->destroy(l); /* frees what impl points to */
    for (int i = 0; i < l->n_params; i++) free(l->params[i].name);
    free(l->params);
    free(l->impl);
    free(l->name);
    free(l);
}

const char *rn_nn_layer_label(const rn_layer *l, char *buf, size_t len)
{
    if (l->name && l->name[0])
        snprintf(buf, len, "%s %s", l->ops->type, l->name);
    else
        snprintf(buf, len, "%s", l->ops->type);
    return buf;
}

const char *rn_nn_sample_str(const rn_shape *s, char *buf, size_t len)
{
    if (s->ndim <= 1) {
        snprintf(buf, len, "a scalar per sample");
        return buf;
    }
    rn_shape per = rn_shape_make(s->ndim - 1, s->d + 1);
    return rn_shape_str(&per, buf, len);
}

int rn_nn_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void rn_nn_fill_uniform(float *p, int64_t n, double bound, uint64_t key)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * rn_uniform(key, (uint64_t)i) - 1.0) * bound);
}

rn_tensor rn_nn_batch_view(const rn_tensor *t, int64_t n)
{
    rn_tensor v = *t;
    v.shape.d[0] = n;
    v.borrowed = 1;
    return v;
}

bool rn_nn_layer_trains(const rn_layer *l)
{
    for (int i = 0; i < l->n_params; i++)
        if (l->params[i].grad && !l->params[i].frozen) return true;
    return false;
}
