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

int rn_net_describe(rn_model *m, rn_net *net, char *err, size_t errlen)
{
    memset(net, 0, sizeof *net);
    if (!m || m->n_layers < 1)
        return rn_nn_err(err, errlen, "model: describe on a model that is not initialised");
    /* Every gradient between layers float (first, so that the relayout builds the plans for
     * it): the graph runs the layers unfolded, where a layer's neighbour need not be the one
     * that takes its bf16 dx; rn_model_set_bf16 pairs them no more. */
    rn_chain_pair_bf16_grads(&m->chain, false);
    m->described = true;
    if (rn_model_set_layouts(m, false, err, errlen)) return -1;
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
