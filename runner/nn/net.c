/* A model as a graph of primitive nodes (see net.h), and that graph run with the CPU layers. */
#include "net.h"
#include "nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct builder {
    rn_net *net;
    int cap_tensors, cap_nodes;
    const rn_model *model;
    char *err;
    size_t errlen;
} builder;

static int new_tensor(builder *b, const rn_shape *shape)
{
    rn_net *net = b->net;
    if (net->n_tensors == b->cap_tensors) {
        int cap = b->cap_tensors ? 2 * b->cap_tensors : 16;
        rn_shape *s = realloc(net->shapes, (size_t)cap * sizeof *s);
        if (!s) return -1;
        net->shapes = s;
        b->cap_tensors = cap;
    }
    net->shapes[net->n_tensors] = *shape;
    return net->n_tensors++;
}

static rn_node *new_node(builder *b)
{
    rn_net *net = b->net;
    if (net->n_nodes == b->cap_nodes) {
        int cap = b->cap_nodes ? 2 * b->cap_nodes : 16;
        rn_node *n = realloc(net->nodes, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        net->nodes = n;
        b->cap_nodes = cap;
    }
    rn_node *node = &net->nodes[net->n_nodes++];
    memset(node, 0, sizeof *node);
    node->in2 = -1;
    for (int k = 0; k < RN_NODE_MAX_PARAMS; k++) node->param[k] = -1;
    return node;
}

static int oom(builder *b)
{
    return rn_nn_err(b->err, b->errlen, "model: out of memory describing the network");
}

/* The model's index of a layer's parameter (by its tensor), or -1. */
static int param_index(const rn_model *m, const rn_tensor *value)
{
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].value == value) return i;
    return -1;
}

/* Appends the nodes of chain c reading tensor `in`; returns the tensor of its output, or -1. */
static int walk(builder *b, const rn_chain *c, int in)
{
    int cur = in;
    for (int i = 0; i < c->n; i++) {
        rn_layer *l = c->layers[i];
        const rn_shape *shape = &c->acts[i + 1].shape;
        const char *name = l->name ? l->name : "";
        if (strcmp(l->ops->type, "sequential") == 0) {
            const rn_chain *inner = rn_container_chain(l, 0);
            if (!inner || (cur = walk(b, inner, cur)) < 0) return -1;
            continue;
        }
        if (strcmp(l->ops->type, "residual") == 0) {
            const rn_chain *body = rn_container_chain(l, 0), *sc = rn_container_chain(l, 1);
            int bo = body ? walk(b, body, cur) : -1;
            if (bo < 0) return -1;
            int so = sc ? walk(b, sc, cur) : cur;
            if (so < 0) return -1;
            int sum = new_tensor(b, shape);
            rn_node *add = sum < 0 ? NULL : new_node(b);
            if (!add) return oom(b);
            add->kind = RN_NODE_ADD;
            add->in = bo;
            add->in2 = so;
            add->out = sum;
            add->name = name;
            cur = sum;
            if (rn_residual_relu(l)) {
                int act = new_tensor(b, shape);
                rn_node *relu = act < 0 ? NULL : new_node(b);
                if (!relu) return oom(b);
                relu->kind = RN_NODE_RELU;
                relu->in = sum;
                relu->out = act;
                relu->name = name;
                cur = act;
            }
            continue;
        }
        if (!l->ops->describe) {
            return rn_nn_err(b->err, b->errlen, "model: layer %s (%s) has no description for "
                             "another backend", name, l->ops->type);
        }
        int out = new_tensor(b, shape);
        rn_node *node = out < 0 ? NULL : new_node(b);
        if (!node) return oom(b);
        l->ops->describe(l, node);
        node->in = cur;
        node->out = out;
        node->layer = l;
        node->name = name;
        node->n_params = l->n_params < RN_NODE_MAX_PARAMS ? l->n_params : RN_NODE_MAX_PARAMS;
        for (int k = 0; k < node->n_params; k++)
            if ((node->param[k] = param_index(b->model, l->params[k].value)) < 0)
                return rn_nn_err(b->err, b->errlen, "model: %s's parameter %s is not the "
                                 "model's", name, l->params[k].name);
        cur = out;
    }
    return cur;
}

int rn_net_describe(const rn_model *m, rn_net *net, char *err, size_t errlen)
{
    memset(net, 0, sizeof *net);
    if (!m || m->n_layers < 1)
        return rn_nn_err(err, errlen, "model: describe on a model that is not initialised");
    builder b = {.net = net, .model = m, .err = err, .errlen = errlen};
    int in = new_tensor(&b, &m->chain.acts[0].shape);
    int out = in < 0 ? -1 : walk(&b, &m->chain, in);
    if (out < 0) {
        if (in < 0) oom(&b);
        rn_net_free(net);
        return -1;
    }
    net->input = in;
    net->output = out;
    return 0;
}

void rn_net_free(rn_net *net)
{
    if (!net) return;
    free(net->shapes);
    free(net->nodes);
    memset(net, 0, sizeof *net);
}

const char *rn_node_kind_name(rn_node_kind k)
{
    switch (k) {
    case RN_NODE_CONV2D: return "conv2d";
    case RN_NODE_LINEAR: return "linear";
    case RN_NODE_BATCHNORM2D: return "batch_norm2d";
    case RN_NODE_RELU: return "relu";
    case RN_NODE_LEAKY_RELU: return "leaky_relu";
    case RN_NODE_GELU: return "gelu";
    case RN_NODE_MAXPOOL2D: return "max_pool2d";
    case RN_NODE_AVGPOOL2D: return "avg_pool2d";
    case RN_NODE_GLOBAL_AVGPOOL2D: return "global_avg_pool2d";
    case RN_NODE_DROPOUT: return "dropout";
    case RN_NODE_FLATTEN: return "flatten";
    case RN_NODE_IDENTITY: return "identity";
    case RN_NODE_ADD: return "add";
    }
    return "?";
}

/* ---- the graph on the CPU ------------------------------------------------------------------ */

int rn_net_buffers(const rn_net *net, rn_tensor **acts, rn_tensor **grads)
{
    *acts = calloc((size_t)net->n_tensors, sizeof **acts);
    *grads = calloc((size_t)net->n_tensors, sizeof **grads);
    if (!*acts || !*grads) goto fail;
    for (int t = 0; t < net->n_tensors; t++)
        if (rn_tensor_alloc(&(*acts)[t], net->shapes[t]) ||
            rn_tensor_alloc(&(*grads)[t], net->shapes[t]))
            goto fail;
    return 0;
fail:
    rn_net_buffers_free(net, *acts, *grads);
    *acts = *grads = NULL;
    return -1;
}

void rn_net_buffers_free(const rn_net *net, rn_tensor *acts, rn_tensor *grads)
{
    for (int t = 0; t < net->n_tensors; t++) {
        if (acts) rn_tensor_free(&acts[t]);
        if (grads) rn_tensor_free(&grads[t]);
    }
    free(acts);
    free(grads);
}

static int node_err(const rn_node *node, const char *what, char *err, size_t errlen)
{
    return rn_nn_err(err, errlen, "net node %s (%s): %s failed: %s", node->name,
                     rn_node_kind_name(node->kind), what,
                     node->layer && node->layer->err[0] ? node->layer->err : "(no reason)");
}

int rn_net_forward(const rn_net *net, rn_tensor *acts, int64_t n, bool train, char *err,
                   size_t errlen)
{
    for (int k = 0; k < net->n_nodes; k++) {
        const rn_node *node = &net->nodes[k];
        rn_tensor x = rn_nn_batch_view(&acts[node->in], n);
        rn_tensor y = rn_nn_batch_view(&acts[node->out], n);
        int64_t total = rn_tensor_numel(&y);
        if (node->kind == RN_NODE_ADD) { /* a residual sum, as container.c adds */
            const float *a = x.data, *b = acts[node->in2].data;
            for (int64_t i = 0; i < total; i++) y.data[i] = a[i] + b[i];
        } else if (!node->layer) { /* a residual block's activation: relu of the sum */
            for (int64_t i = 0; i < total; i++) y.data[i] = x.data[i] < 0.0f ? 0.0f : x.data[i];
        } else {
            node->layer->err[0] = '\0';
            if (node->layer->ops->forward(node->layer, &x, &y, train))
                return node_err(node, "forward", err, errlen);
        }
    }
    return 0;
}

/* g[t] = its first contribution, or g[t] + the next (*seen marks the first). */
static void accumulate(rn_tensor *g, bool *seen, const float *d, int64_t total)
{
    if (!*seen) memcpy(g->data, d, (size_t)total * sizeof *d);
    else
        for (int64_t i = 0; i < total; i++) g->data[i] += d[i];
    *seen = true;
}

int rn_net_backward(const rn_net *net, rn_tensor *acts, rn_tensor *grads, int64_t n, char *err,
                    size_t errlen)
{
    bool *seen = calloc((size_t)net->n_tensors, sizeof *seen);
    int64_t most = 0;
    for (int t = 0; t < net->n_tensors; t++)
        if (rn_shape_numel(&net->shapes[t]) > most) most = rn_shape_numel(&net->shapes[t]);
    float *tmp = rn_falloc(most);
    if (!seen || !tmp) {
        free(seen);
        rn_ffree(tmp);
        return rn_nn_err(err, errlen, "net: out of memory for the backward pass");
    }
    seen[net->output] = true;
    int rc = 0;
    for (int k = net->n_nodes - 1; k >= 0 && rc == 0; k--) {
        const rn_node *node = &net->nodes[k];
        rn_tensor x = rn_nn_batch_view(&acts[node->in], n);
        rn_tensor y = rn_nn_batch_view(&acts[node->out], n);
        rn_tensor dy = rn_nn_batch_view(&grads[node->out], n);
        rn_tensor gx = rn_nn_batch_view(&grads[node->in], n);
        int64_t in_total = rn_tensor_numel(&x), out_total = rn_tensor_numel(&y);
        if (!seen[node->out]) continue; /* nothing flows back through it */
        if (node->kind == RN_NODE_ADD) {
            accumulate(&gx, &seen[node->in], dy.data, out_total);
            rn_tensor g2 = rn_nn_batch_view(&grads[node->in2], n);
            accumulate(&g2, &seen[node->in2], dy.data, out_total);
            continue;
        }
        if (!node->layer) { /* relu of a residual sum: dz = dy where y > 0 */
            for (int64_t i = 0; i < out_total; i++) tmp[i] = !(y.data[i] > 0.0f) ? 0.0f : dy.data[i];
            accumulate(&gx, &seen[node->in], tmp, in_total);
            continue;
        }
        rn_tensor dx = x;
        dx.data = tmp;
        bool want_dx = node->in != net->input;
        node->layer->err[0] = '\0';
        if (node->layer->ops->backward(node->layer, &x, &y, &dy, want_dx ? &dx : NULL))
            rc = node_err(node, "backward", err, errlen);
        else if (want_dx)
            accumulate(&gx, &seen[node->in], tmp, in_total);
    }
    free(seen);
    rn_ffree(tmp);
    return rc;
}
