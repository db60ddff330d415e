/* The graph of net.h run with the CPU layers its nodes stand for: how the tests hold a
 * description to its model, and what a CPU stand-in for a device backend executes. */
#include "net.h"
#include "nn_internal.h"

#include <stdlib.h>
#include <string.h>

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

/* Whether node k is a convolution whose output only the batch norm after it reads, which the
 * model's chain folds into it in eval mode (rn_chain_fold_bn): the graph runs it so too, through
 * the layer's own forward_bn (a stand-in backend carries its own copy of this file). */
static bool folds_next(const rn_net *net, int k)
{
    if (k + 1 >= net->n_nodes) return false;
    const rn_node *c = &net->nodes[k], *b = &net->nodes[k + 1];
    /* rn_nn_folds_bn's test, on the nodes: the stand-in compiles this file without the layers'
     * sources, so it knows a batch norm by its node's kind */
    if (!c->layer || !c->layer->ops->forward_bn || c->layer->relu_out || !b->layer ||
        b->kind != RN_NODE_BATCHNORM2D || b->in != c->out)
        return false;
    for (int j = 0; j < net->n_nodes; j++)
        if (j != k + 1 && (net->nodes[j].in == c->out || net->nodes[j].in2 == c->out))
            return false;
    return true;
}

int rn_net_forward(const rn_net *net, rn_tensor *acts, int64_t n, bool train, char *err,
                   size_t errlen)
{
    for (int k = 0; k < net->n_nodes; k++) {
        const rn_node *node = &net->nodes[k];
        rn_tensor x = rn_nn_batch_view(&acts[node->in], n);
        rn_tensor y = rn_nn_batch_view(&acts[node->out], n);
        int64_t total = rn_tensor_numel(&y);
        if (!train && folds_next(net, k)) { /* into the batch norm's output */
            rn_tensor yb = rn_nn_batch_view(&acts[net->nodes[k + 1].out], n);
            node->layer->err[0] = '\0';
            if (node->layer->ops->forward_bn(node->layer, net->nodes[k + 1].layer, &x, &yb))
                return node_err(node, "forward with the batch norm folded in", err, errlen);
            k++;
        } else if (node->kind == RN_NODE_ADD) { /* a residual sum, as container.c adds */
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
