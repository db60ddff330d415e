/* A sequential model (see model.h): a chain plus the input, logits and logit-gradient buffers. */
#include "model.h"
#include "nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rn_model_free(rn_model *m)
{
    if (!m) return;
    if (m->acts) {
        rn_tensor_free(&m->acts[0]);
        rn_tensor_free(&m->acts[m->n_layers]);
        rn_tensor_free(&m->grads[m->n_layers]);
    }
    rn_chain_free(&m->chain);
    for (int l = 0; m->gpool && l < RN_GRAD_LEVELS; l++)
        for (int b = 0; b < 2; b++) rn_ffree(m->gpool->buf[l][b]);
    free(m->gpool);
    memset(m, 0, sizeof *m);
}

/* One set of activation-gradient buffers per nesting level for the whole model (chain.h). */
static int share_grads(rn_model *m)
{
    if (!(m->gpool = calloc(1, sizeof *m->gpool))) return -1;
    rn_chain_share_grads(&m->chain, m->gpool, 0, false);
    for (int l = 0; l < RN_GRAD_LEVELS; l++)
        for (int b = 0; b < 2; b++)
            if (m->gpool->need[l][b] && !(m->gpool->buf[l][b] = rn_falloc(m->gpool->need[l][b])))
                return -1;
    rn_chain_share_grads(&m->chain, m->gpool, 0, true);
    return 0;
}

int rn_model_init(rn_model *m, rn_layer **layers, int n, rn_shape in_shape, int64_t max_batch,
                  char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (n < 1 || !layers || max_batch < 1 || in_shape.ndim < 1 || in_shape.ndim >= RN_MAX_DIMS) {
        rn_nn_err(err, errlen, "model: expected at least one layer, max_batch >= 1 and a 1- to "
                               "3-d sample shape, got %d layers, max_batch %lld, %d-d samples",
                  n, (long long)max_batch, in_shape.ndim);
        for (int i = 0; layers && i < n; i++) rn_layer_destroy(layers[i]);
        free(layers);
        return -1;
    }
    rn_shape s = {.ndim = in_shape.ndim + 1}, out;
    s.d[0] = max_batch;
    for (int i = 0; i < in_shape.ndim; i++) s.d[i + 1] = in_shape.d[i];
    if (rn_chain_init(&m->chain, layers, n, &s, &out, "model.layers", err, errlen)) return -1;
    m->in_shape = in_shape;
    m->max_batch = max_batch;
    m->layers = m->chain.layers;
    m->n_layers = n;
    m->acts = m->chain.acts;
    m->grads = m->chain.grads;
    m->params = m->chain.params;
    m->n_params = m->chain.n_params;
    if (rn_tensor_alloc(&m->acts[0], s) || rn_tensor_alloc(&m->acts[n], out) ||
        rn_tensor_alloc(&m->grads[n], out) || share_grads(m)) {
        rn_model_free(m);
        return rn_nn_err(err, errlen, "model: out of memory for the activations of batch %lld",
                         (long long)max_batch);
    }
    m->grads[0].shape = s;
    if (rn_model_set_layouts(m, true, err, errlen)) {
        rn_model_free(m);
        return -1;
    }
    /* Names key checkpoints and safetensors files: two tensors with one name would lose one. */
    for (int i = 0; i < m->n_params; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(m->params[i].name, m->params[j].name) == 0) {
                rn_nn_err(err, errlen, "model: two parameters are both named \"%s\"; give the "
                          "layers distinct names", m->params[i].name);
                rn_model_free(m);
                return -1;
            }
    return 0;
}

int rn_model_set_layouts(rn_model *m, bool allow, char *err, size_t errlen)
{
    if (!m || m->n_layers < 1)
        return rn_nn_err(err, errlen, "model: set_layouts on a model that is not initialised");
    /* a described model's graph reads and writes its layers' tensors plain (net.h) */
    return rn_chain_set_layouts(&m->chain, false, false, allow && !m->described, err, errlen);
}

static int check_batch(rn_model *m, int64_t n)
{
    m->err[0] = '\0';
    if (n < 1 || n > m->max_batch)
        return rn_nn_err(m->err, sizeof m->err, "model: batch of %lld samples, expected 1..%lld",
                         (long long)n, (long long)m->max_batch);
    return 0;
}

int rn_model_forward(rn_model *m, int64_t n, bool train, rn_tensor *out)
{
    if (check_batch(m, n)) return -1;
    rn_tensor x = rn_nn_batch_view(&m->acts[0], n), y = rn_nn_batch_view(&m->acts[m->n_layers], n);
    if (rn_chain_forward(&m->chain, &x, &y, train, m->err, sizeof m->err)) return -1;
    if (out) *out = y;
    return 0;
}

int rn_model_backward(rn_model *m, int64_t n)
{
    if (check_batch(m, n)) return -1;
    rn_tensor x = rn_nn_batch_view(&m->acts[0], n), y = rn_nn_batch_view(&m->acts[m->n_layers], n);
    rn_tensor dy = rn_nn_batch_view(&m->grads[m->n_layers], n);
    return rn_chain_backward(&m->chain, &x, &y, &dy, NULL, m->err, sizeof m->err);
}

int64_t rn_model_param_count(const rn_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].grad) total += rn_tensor_numel(m->params[i].value);
    return total;
}

int rn_model_set_trainable(rn_model *m, const bool *trainable, bool train_bn, char *err,
                           size_t errlen)
{
    if (!m || m->n_layers < 1)
        return rn_nn_err(err, errlen, "model: set_trainable on a model that is not initialised");
    rn_chain_set_trainable(&m->chain, trainable, train_bn);
    return 0;
}

static void chain_set_bf16(const rn_chain *c, bool on)
{
    for (int i = 0; i < c->n; i++) {
        rn_layer *l = c->layers[i];
        if (strcmp(l->ops->type, "conv2d") == 0) rn_conv2d_set_bf16(l, on);
        else if (strcmp(l->ops->type, "linear") == 0) rn_linear_set_bf16(l, on);
        for (int k = 0; k < 2; k++) {
            const rn_chain *inner = rn_container_chain(l, k);
            if (inner) chain_set_bf16(inner, on);
        }
    }
}

void rn_model_fold_bn(rn_model *m, bool on)
{
    if (m && m->n_layers > 0) rn_chain_fold_bn(&m->chain, on);
}

void rn_model_set_bf16(rn_model *m, bool on)
{
    if (m && m->n_layers > 0) {
        chain_set_bf16(&m->chain, on);
        rn_chain_pair_bf16_grads(&m->chain, on && !m->described);
    }
}
