/* The run's trainable state in memory (see run_state.h). */
#include "run_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"
#include "train_device.h"

struct rn_run_state {
    float *floats;         /* parameters and buffers, then optimizer states, in model order */
    size_t n_floats;
    int64_t *group_steps;  /* per optimizer group */
    int64_t *layers;       /* per layer, depth first: calls, num_batches_tracked */
    size_t n_layers;
};

void rn_walk_layers(const rn_chain *c, void (*fn)(rn_layer *l, void *arg), void *arg)
{
    for (int i = 0; i < c->n; i++) {
        fn(c->layers[i], arg);
        const rn_chain *inner;
        for (int k = 0; (inner = rn_container_chain(c->layers[i], k)); k++)
            rn_walk_layers(inner, fn, arg);
    }
}

static size_t state_floats(const rn_opt_group *og)
{
    return ((const rn_optimizer_api *)og->opt.plugin->api)->state_floats(og->opt.self);
}

static size_t count_floats(const rn_run *r)
{
    size_t n = 0;
    for (int i = 0; i < r->model.n_params; i++)
        n += (size_t)rn_tensor_numel(r->model.params[i].value);
    for (int g = 0; g < r->opt.n; g++) {
        const rn_opt_group *og = &r->opt.v[g];
        size_t per = state_floats(og);
        for (size_t p = 0; p < og->n_all; p++) n += per * (size_t)og->params[p].numel;
    }
    return n;
}

static void count_layer(rn_layer *l, void *arg)
{
    (void)l;
    (*(size_t *)arg)++;
}

typedef struct layer_cursor {
    int64_t *v;
    size_t at;
} layer_cursor;

static void save_layer(rn_layer *l, void *arg)
{
    layer_cursor *c = arg;
    c->v[c->at++] = (int64_t)l->calls;
    c->v[c->at++] = rn_batchnorm2d_num_batches_tracked(l);
}

static void restore_layer(rn_layer *l, void *arg)
{
    layer_cursor *c = arg;
    l->calls = (uint64_t)c->v[c->at++];
    int64_t tracked = c->v[c->at++];
    if (tracked >= 0) rn_batchnorm2d_set_num_batches_tracked(l, tracked);
}

/* Copies between the run and the state: to_state 1 saves, 0 restores. */
static void copy_floats(rn_run *r, float *buf, int to_state)
{
    size_t at = 0;
    for (int i = 0; i < r->model.n_params; i++) {
        rn_tensor *v = r->model.params[i].value;
        size_t n = (size_t)rn_tensor_numel(v);
        if (to_state) memcpy(buf + at, v->data, n * sizeof(float));
        else memcpy(v->data, buf + at, n * sizeof(float));
        at += n;
    }
    for (int g = 0; g < r->opt.n; g++) {
        rn_opt_group *og = &r->opt.v[g];
        size_t per = state_floats(og);
        for (size_t p = 0; per && p < og->n_all; p++) {
            size_t n = per * (size_t)og->params[p].numel;
            if (to_state) memcpy(buf + at, og->params[p].state, n * sizeof(float));
            else memcpy(og->params[p].state, buf + at, n * sizeof(float));
            at += n;
        }
    }
}

int rn_run_state_save(rn_run *r, rn_run_state **out, char *err, size_t errlen)
{
    if (rn_dev_pull(r, err, errlen)) return -1; /* a GPU run: the device holds the state */
    rn_run_state *s = *out;
    if (!s) {
        s = calloc(1, sizeof *s);
        size_t layers = 0;
        rn_walk_layers(&r->model.chain, count_layer, &layers);
        if (s) {
            s->n_floats = count_floats(r);
            s->n_layers = layers;
            s->floats = malloc((s->n_floats + 1) * sizeof *s->floats);
            s->group_steps = calloc((size_t)r->opt.n + 1, sizeof *s->group_steps);
            s->layers = calloc(2 * layers + 1, sizeof *s->layers);
        }
        if (!s || !s->floats || !s->group_steps || !s->layers) {
            rn_run_state_free(s);
            snprintf(err, errlen, "out of memory for a copy of the run's state");
            return -1;
        }
        *out = s;
    }
    copy_floats((rn_run *)r, s->floats, 1);
    for (int g = 0; g < r->opt.n; g++) s->group_steps[g] = r->opt.v[g].g.step;
    layer_cursor c = {.v = s->layers};
    rn_walk_layers(&r->model.chain, save_layer, &c);
    return 0;
}

int rn_run_state_restore(rn_run *r, const rn_run_state *s, char *err, size_t errlen)
{
    copy_floats(r, s->floats, 0);
    for (int g = 0; g < r->opt.n; g++) r->opt.v[g].g.step = s->group_steps[g];
    layer_cursor c = {.v = s->layers};
    rn_walk_layers(&r->model.chain, restore_layer, &c);
    return rn_dev_push(r, err, errlen);
}

void rn_run_state_free(rn_run_state *s)
{
    if (!s) return;
    free(s->floats);
    free(s->group_steps);
    free(s->layers);
    free(s);
}
