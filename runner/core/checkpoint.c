/* Checkpoints (see checkpoint.h). */
#include "checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lr_find.h"
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

/* ---- the run's position and the callbacks' own state ---------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* Decodes into a malloc'ed buffer; -1 on a malformed string. */
static int b64_decode(const char *s, unsigned char **out, size_t *n)
{
    size_t len = strlen(s);
    if (len % 4) return -1;
    unsigned char *p = malloc(len / 4 * 3 + 1);
    if (!p) return -1;
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *c = strchr(b64, s[i + j]);
            if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (!c || !s[i + j] || pad) {
                free(p);
                return -1;
            }
            v = v << 6 | (uint32_t)(c - b64);
        }
        p[k++] = (unsigned char)(v >> 16);
        if (pad < 2) p[k++] = (unsigned char)(v >> 8);
        if (pad < 1) p[k++] = (unsigned char)v;
    }
    *out = p;
    *n = k;
    return 0;
}

static json_t *real(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static double get_real(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int64_t get_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Everything about the run that is not a tensor: where it is (rn_run_pos), the lr factor
 * callbacks set, the best epoch so far, the LR finder's suggestions, each callback's own state,
 * the latest metric values, the counters summary.json reports. */
static json_t *run_json(const rn_run *r, char *err, size_t errlen)
{
    const rn_run_pos *p = &r->pos;
    json_t *j = json_object();
    json_object_set_new(j, "position", json_pack(
        "{s:i, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "stage", p->stage, "epoch",
        (json_int_t)p->epoch, "step", (json_int_t)p->step, "epoch_steps",
        (json_int_t)p->epoch_steps, "epoch_good", (json_int_t)p->epoch_good, "epoch_loss",
        json_real(p->epoch_loss), "epoch_samples", (json_int_t)p->epoch_samples,
        "loader_epoch", (json_int_t)p->loader_epoch));
    json_object_set_new(j, "lr_scale", json_real(r->lr_scale));
    if (r->scaling) /* fp16: GradScaler's state_dict, for an exact resume */
        json_object_set_new(j, "grad_scaler", json_pack(
            "{s:f, s:I, s:I}", "scale", (double)r->scaler.scale, "growth_tracker",
            (json_int_t)r->scaler.growth_tracker, "skipped", (json_int_t)r->scaler.skipped));
    json_object_set_new(j, "best", json_pack(
        "{s:o, s:o, s:o, s:o, s:i, s:I}", "test.acc",
        real(r->best_acc), "test.loss", real(r->best_loss), "val.acc", real(r->best_val_acc),
        "val.loss", real(r->best_val_loss), "stage", r->best_stage, "epoch",
        (json_int_t)r->best_epoch));
    json_object_set_new(j, "train_images", json_integer(r->train_images));
    json_object_set_new(j, "train_seconds", json_real(r->train_seconds));
    json_t *joined = json_array();
    for (int g = 0; r->joined && g < r->opt.n; g++)
        json_array_append_new(joined, json_boolean(r->joined[g]));
    json_object_set_new(j, "joined", joined);
    if (r->lr_find) {
        json_t *lf = json_object();
        const rn_lr_find_result *res = r->lr_find;
        json_object_set_new(lf, "stage", json_integer(res->stage));
        for (int w = 0; w < RN_SUGGESTIONS; w++)
            json_object_set_new(lf, rn_suggestion_names[w], json_pack(
                "[o, o, o, o]", real(res->suggest[w]), real(res->suggest_loss[w]),
                real(res->spread_lo[w]), real(res->spread_hi[w])));
        json_object_set_new(lf, "repeats", json_integer(res->repeats));
        json_object_set_new(lf, "points", json_integer(res->points));
        json_object_set_new(lf, "stopped", json_string(res->stopped));
        json_object_set_new(lf, "seconds", json_real(res->seconds));
        json_object_set_new(j, "lr_find", lf);
    }
    json_t *values = json_object();
    for (size_t i = 0; i < r->metrics.n; i++)
        json_object_set_new(values, r->metrics.names[i], real(r->metrics.values[i]));
    json_object_set_new(j, "metrics", values);
    json_t *cbs = json_array();
    json_object_set_new(j, "callbacks", cbs);
    for (int i = 0; i < r->n_callbacks; i++) {
        const rn_instance *cb = &r->callbacks[i];
        const rn_callback_api *api = cb->plugin->api;
        size_t (*size_fn)(void *) = rn_callback_hook(api, state_size);
        if (!size_fn) {
            json_array_append_new(cbs, json_null());
            continue;
        }
        size_t n = size_fn(cb->self);
        unsigned char *buf = malloc(n + 1);
        char *text = NULL;
        if (!buf || rn_callback_hook(api, state_save)(cb->self, buf, n) != RN_OK ||
            !(text = b64_encode(buf, n))) {
            snprintf(err, errlen, "callbacks[%d] (%s): cannot save its state: %s", i + 1,
                     cb->plugin->id, rn_instance_error(cb));
            free(buf);
            json_decref(j);
            return NULL;
        }
        json_array_append_new(cbs, json_pack("{s:s, s:s}", "id", cb->plugin->id, "state", text));
        free(buf);
        free(text);
    }
    return j;
}

static int run_restore(rn_run *r, const json_t *j, const char *path, char *err, size_t errlen)
{
    const json_t *p = json_object_get(j, "position");
    if (!json_is_object(p)) {
        snprintf(err, errlen, "%s: no run position (a checkpoint of an older runner?)", path);
        return -1;
    }
    r->pos = (rn_run_pos){
        .stage = (int)get_int(p, "stage"), .epoch = get_int(p, "epoch"),
        .step = get_int(p, "step"), .epoch_steps = get_int(p, "epoch_steps"),
        .epoch_good = get_int(p, "epoch_good"), .epoch_loss = get_real(p, "epoch_loss"),
        .epoch_samples = get_int(p, "epoch_samples"),
        .loader_epoch = get_int(p, "loader_epoch"),
    };
    if (r->pos.stage < 0 || r->pos.stage > r->plan->n_stages) {
        snprintf(err, errlen, "%s: stage %d, but the recipe has %d stages", path, r->pos.stage,
                 r->plan->n_stages);
        return -1;
    }
    r->lr_scale = get_real(j, "lr_scale");
    if (!(r->lr_scale > 0)) r->lr_scale = 1;
    const json_t *gs = json_object_get(j, "grad_scaler");
    if (r->scaling && json_is_object(gs)) {
        double scale = get_real(gs, "scale");
        if (!(scale > 0 && scale <= FLT_MAX)) {
            snprintf(err, errlen, "%s: grad_scaler.scale: expected a positive float, got %g",
                     path, scale);
            return -1;
        }
        r->scaler.scale = (float)scale;
        r->scaler.growth_tracker = get_int(gs, "growth_tracker");
        r->scaler.skipped = get_int(gs, "skipped");
    }
    const json_t *b = json_object_get(j, "best");
    r->best_acc = get_real(b, "test.acc");
    r->best_loss = get_real(b, "test.loss");
    r->best_val_acc = get_real(b, "val.acc");
    r->best_val_loss = get_real(b, "val.loss");
    r->best_stage = (int)get_int(b, "stage");
    r->best_epoch = json_is_integer(json_object_get(b, "epoch")) ? get_int(b, "epoch") : -1;
    r->train_images = get_int(j, "train_images");
    r->train_seconds = get_real(j, "train_seconds");
    const json_t *joined = json_object_get(j, "joined");
    for (int g = 0; r->joined && g < r->opt.n; g++)
        r->joined[g] = json_is_true(json_array_get(joined, (size_t)g));
    const json_t *lf = json_object_get(j, "lr_find");
    if (json_is_object(lf)) {
        rn_lr_find_free(r->lr_find);
        r->lr_find = calloc(1, sizeof *r->lr_find);
        if (!r->lr_find) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        rn_lr_find_result *res = r->lr_find;
        res->stage = (int)get_int(lf, "stage");
        for (int w = 0; w < RN_SUGGESTIONS; w++) {
            const json_t *v = json_object_get(lf, rn_suggestion_names[w]);
            double *dst[4] = {&res->suggest[w], &res->suggest_loss[w], &res->spread_lo[w],
                              &res->spread_hi[w]};
            for (size_t k = 0; k < 4; k++) {
                const json_t *x = json_array_get(v, k);
                *dst[k] = json_is_number(x) ? json_number_value(x) : NAN;
            }
        }
        res->repeats = get_int(lf, "repeats");
        res->points = get_int(lf, "points");
        res->seconds = get_real(lf, "seconds");
        const char *why = json_string_value(json_object_get(lf, "stopped"));
        snprintf(res->stopped, sizeof res->stopped, "%s", why ? why : "");
        if (res->stage < 0 || res->stage >= r->plan->n_stages ||
            r->plan->stages[res->stage].kind != RN_STAGE_LR_FIND) {
            snprintf(err, errlen, "%s: the LR finder's stage %d is not an lr_find stage of this "
                     "recipe", path, res->stage);
            return -1;
        }
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(j, "metrics"), name, v)
        rn_metrics_set(&r->metrics, name, json_is_number(v) ? json_number_value(v) : NAN);
    const json_t *cbs = json_object_get(j, "callbacks");
    for (int i = 0; i < r->n_callbacks; i++) {
        const rn_instance *cb = &r->callbacks[i];
        const rn_callback_api *api = cb->plugin->api;
        const json_t *c = json_array_get(cbs, (size_t)i);
        int (*load)(void *, const void *, size_t) = rn_callback_hook(api, state_load);
        if (!load) continue;
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *text = json_string_value(json_object_get(c, "state"));
        unsigned char *buf;
        size_t n;
        if (!id || strcmp(id, cb->plugin->id) || !text || b64_decode(text, &buf, &n)) {
            snprintf(err, errlen, "%s: no saved state for callbacks[%d] (%s)", path, i + 1,
                     cb->plugin->id);
            return -1;
        }
        int rc = load(cb->self, buf, n);
        free(buf);
        if (rc != RN_OK) {
            snprintf(err, errlen, "%s: callbacks[%d] (%s) refused its saved state: %s", path,
                     i + 1, cb->plugin->id, rn_instance_error(cb));
            return -1;
        }
    }
    return 0;
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
    json_t *hist = history_json(&r->metrics), *run = run_json(r, err, errlen);
    char *steps_s = json_dumps(steps, JSON_COMPACT), *layers_s = json_dumps(layers, JSON_COMPACT);
    char *hist_s = json_dumps(hist, JSON_COMPACT);
    char *run_s = run ? json_dumps(run, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(hist);
    json_decref(run);
    if (steps_s && layers_s && hist_s && run_s) {
        const char *meta[] = {"format", FORMAT, "global_step", global, "epochs_done", epochs,
                              "group_steps", steps_s, "layers", layers_s, "metric_history",
                              hist_s, "run", run_s};
        rc = rn_safetensors_write(path, refs, k, meta, 7, err, errlen);
    } else if (!err[0]) {
        snprintf(err, errlen, "%s: cannot encode the checkpoint's metadata", path);
    }
    free(steps_s);
    free(layers_s);
    free(hist_s);
    free(run_s);
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
    json_t *steps = NULL, *layers = NULL, *hist = NULL, *run = NULL;
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
    const char *run_s = rn_safetensors_metadata(st, "run");
    run = run_s ? json_loads(run_s, 0, NULL) : NULL;
    if (run && run_restore(r, run, path, err, errlen)) goto out;
    r->global_step = strtoll(rn_safetensors_metadata(st, "global_step") ?
                             rn_safetensors_metadata(st, "global_step") : "0", NULL, 10);
    r->epochs_done = strtoll(rn_safetensors_metadata(st, "epochs_done") ?
                             rn_safetensors_metadata(st, "epochs_done") : "0", NULL, 10);
    rc = 0;
out:
    json_decref(steps);
    json_decref(layers);
    json_decref(hist);
    json_decref(run);
    rn_safetensors_close(st);
    return rc;
}
