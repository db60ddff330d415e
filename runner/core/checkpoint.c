/* Checkpoints (see checkpoint.h). */
#include "checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_state.h"
#include "safetensors.h"

#define FORMAT "runner-checkpoint-1"

static void layer_out(rn_layer *l, void *arg)
{
    json_array_append_new(arg, json_pack("[I, I]", (json_int_t)l->calls,
                                         (json_int_t)rn_batchnorm2d_num_batches_tracked(l)));
}

static json_t *history_json(const rn_metrics *m)
{
    json_t *names = json_array(), *rows = json_array();
    for (size_t i = 0; i < m->n; i++) json_array_append_new(names, json_string(m->names[i]));
    double *col = malloc((m->epochs + 1) * sizeof *col);
    for (size_t e = 0; col && e < m->epochs; e++) json_array_append_new(rows, json_array());
    for (size_t i = 0; col && i < m->n; i++) {
        rn_metrics_history(m, m->names[i], col, m->epochs);
        for (size_t e = 0; e < m->epochs; e++)
            json_array_append_new(json_array_get(rows, e),
                                  isfinite(col[e]) ? json_real(col[e]) : json_null());
    }
    free(col);
    return json_pack("{s:o, s:o}", "names", names, "rows", rows);
}

int rn_checkpoint_write(const char *path, const rn_run *r, char *err, size_t errlen)
{
    const rn_model *m = &r->model;
    int n = m->n_params;
    for (int g = 0; g < r->opt.n; g++) n += (int)r->opt.v[g].n_all;
    rn_param_ref *refs = calloc((size_t)n + 1, sizeof *refs);
    rn_tensor *views = calloc((size_t)n + 1, sizeof *views);
    char **names = calloc((size_t)n + 1, sizeof *names);
    json_t *steps = json_object(), *layers = json_array();
    int k = 0, rc = -1;
    if (!refs || !views || !names) goto out;
    for (int i = 0; i < m->n_params; i++) refs[k++] = m->params[i];
    for (int g = 0; g < r->opt.n; g++) {
        const rn_opt_group *og = &r->opt.v[g];
        size_t per = ((const rn_optimizer_api *)og->opt.plugin->api)->state_floats(og->opt.self);
        json_object_set_new(steps, og->name, json_integer(og->g.step));
        for (size_t p = 0; per && p < og->n_all; p++) {
            const rn_param *q = &og->params[p];
            size_t len = strlen(og->name) + strlen(q->name) + 16;
            names[k] = malloc(len);
            if (!names[k]) goto out;
            snprintf(names[k], len, "optimizer.%s.%s", og->name, q->name);
            int64_t numel = q->numel * (int64_t)per;
            views[k] = (rn_tensor){.shape = rn_shape_make(1, &numel), .data = q->state,
                                   .borrowed = 1};
            refs[k] = (rn_param_ref){.name = names[k], .value = &views[k]};
            k++;
        }
    }
    rn_walk_layers(&m->chain, layer_out, layers);
    char global[32], epochs[32];
    snprintf(global, sizeof global, "%" PRId64, r->global_step);
    snprintf(epochs, sizeof epochs, "%" PRId64, r->epochs_done);
    json_t *hist = history_json(&r->metrics);
    char *steps_s = json_dumps(steps, JSON_COMPACT), *layers_s = json_dumps(layers, JSON_COMPACT);
    char *hist_s = json_dumps(hist, JSON_COMPACT);
    json_decref(hist);
    if (steps_s && layers_s && hist_s) {
        const char *meta[] = {"format", FORMAT, "global_step", global, "epochs_done", epochs,
                              "group_steps", steps_s, "layers", layers_s, "metric_history",
                              hist_s};
        rc = rn_safetensors_write(path, refs, k, meta, 6, err, errlen);
    } else {
        snprintf(err, errlen, "%s: cannot encode the checkpoint's metadata", path);
    }
    free(steps_s);
    free(layers_s);
    free(hist_s);
out:
    if (rc && !err[0]) snprintf(err, errlen, "%s: out of memory", path);
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(views);
    free(refs);
    json_decref(steps);
    json_decref(layers);
    return rc;
}

typedef struct layer_in {
    json_t *list;
    size_t at;
    int bad;
} layer_in;

static void layer_restore(rn_layer *l, void *arg)
{
    layer_in *c = arg;
    json_int_t calls, tracked;
    if (json_unpack(json_array_get(c->list, c->at++), "[I, I]", &calls, &tracked)) {
        c->bad = 1;
        return;
    }
    l->calls = (uint64_t)calls;
    if (tracked >= 0) rn_batchnorm2d_set_num_batches_tracked(l, tracked);
}

static int read_tensor(rn_safetensors *st, const char *path, const char *name, float *dst,
                       const int64_t *shape, int ndim, char *err, size_t errlen)
{
    const rn_st_tensor *t = rn_safetensors_find(st, name);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    if (!t) {
        snprintf(err, errlen, "%s: no tensor \"%s\" (a checkpoint of another recipe?)", path,
                 name);
        return -1;
    }
    int64_t have = 1;
    for (int d = 0; d < t->ndim; d++) have *= t->shape[d];
    if (have != numel) {
        snprintf(err, errlen, "%s: tensor \"%s\" has %" PRId64 " values, the run has %" PRId64,
                 path, name, have, numel);
        return -1;
    }
    return rn_safetensors_read_f32(st, name, dst, numel, err, errlen);
}

int rn_checkpoint_read(const char *path, rn_run *r, char *err, size_t errlen)
{
    rn_safetensors *st;
    if (rn_safetensors_open(&st, path, err, errlen)) return -1;
    int rc = -1;
    json_t *steps = NULL, *layers = NULL, *hist = NULL;
    const char *format = rn_safetensors_metadata(st, "format");
    if (!format || strcmp(format, FORMAT) != 0) {
        snprintf(err, errlen, "%s: not a runner checkpoint (format \"%s\", expected \"%s\")", path,
                 format ? format : "none", FORMAT);
        goto out;
    }
    rn_model *m = &r->model;
    for (int i = 0; i < m->n_params; i++) {
        const rn_tensor *v = m->params[i].value;
        if (read_tensor(st, path, m->params[i].name, v->data, v->shape.d, v->shape.ndim, err,
                        errlen))
            goto out;
    }
    steps = json_loads(rn_safetensors_metadata(st, "group_steps") ?
                       rn_safetensors_metadata(st, "group_steps") : "", 0, NULL);
    for (int g = 0; g < r->opt.n; g++) {
        rn_opt_group *og = &r->opt.v[g];
        json_t *s = json_object_get(steps, og->name);
        if (!json_is_integer(s)) {
            snprintf(err, errlen, "%s: no optimizer group \"%s\" (a checkpoint of another "
                     "recipe?)", path, og->name);
            goto out;
        }
        og->g.step = json_integer_value(s);
        size_t per = ((const rn_optimizer_api *)og->opt.plugin->api)->state_floats(og->opt.self);
        for (size_t p = 0; per && p < og->n_all; p++) {
            char name[512];
            snprintf(name, sizeof name, "optimizer.%s.%s", og->name, og->params[p].name);
            int64_t numel = og->params[p].numel * (int64_t)per;
            if (read_tensor(st, path, name, og->params[p].state, &numel, 1, err, errlen))
                goto out;
        }
    }
    layers = json_loads(rn_safetensors_metadata(st, "layers") ?
                        rn_safetensors_metadata(st, "layers") : "", 0, NULL);
    layer_in li = {.list = layers};
    rn_walk_layers(&m->chain, layer_restore, &li);
    if (li.bad || li.at != json_array_size(layers)) {
        snprintf(err, errlen, "%s: the layer states do not fit this model", path);
        goto out;
    }
    hist = json_loads(rn_safetensors_metadata(st, "metric_history") ?
                      rn_safetensors_metadata(st, "metric_history") : "", 0, NULL);
    json_t *names = json_object_get(hist, "names"), *rows = json_object_get(hist, "rows");
    rn_metrics_clear_history(&r->metrics);
    for (size_t e = 0; e < json_array_size(rows); e++) {
        json_t *row = json_array_get(rows, e);
        for (size_t i = 0; i < json_array_size(names); i++) {
            json_t *v = json_array_get(row, i);
            rn_metrics_set(&r->metrics, json_string_value(json_array_get(names, i)),
                           json_is_number(v) ? json_number_value(v) : NAN);
        }
        rn_metrics_end_epoch(&r->metrics);
    }
    r->global_step = strtoll(rn_safetensors_metadata(st, "global_step") ?
                             rn_safetensors_metadata(st, "global_step") : "0", NULL, 10);
    r->epochs_done = strtoll(rn_safetensors_metadata(st, "epochs_done") ?
                             rn_safetensors_metadata(st, "epochs_done") : "0", NULL, 10);
    rc = 0;
out:
    json_decref(steps);
    json_decref(layers);
    json_decref(hist);
    rn_safetensors_close(st);
    return rc;
}
