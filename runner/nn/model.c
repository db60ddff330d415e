/* A sequential model (see model.h). */
#include "model.h"
#include "nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_buffers(rn_model *m, int n)
{
    if (m->acts)
        for (int i = 0; i <= n; i++) rn_tensor_free(&m->acts[i]);
    if (m->grads)
        for (int i = 0; i <= n; i++) rn_tensor_free(&m->grads[i]);
    free(m->acts);
    free(m->grads);
    free(m->params);
}

void rn_model_free(rn_model *m)
{
    if (!m) return;
    free_buffers(m, m->n_layers);
    for (int i = 0; i < m->n_layers; i++) rn_layer_destroy(m->layers[i]);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* "model.layers[i] (linear fc1): <msg>", with the layer's own "linear fc1: " prefix dropped.
 * The index is 1-based, as in the recipe's key path (Lua lists start at 1). */
static void layer_error(char *err, size_t errlen, int i, const rn_layer *l, const char *msg)
{
    char label[96];
    rn_nn_layer_label(l, label, sizeof label);
    size_t ll = strlen(label);
    if (strncmp(msg, label, ll) == 0 && msg[ll] == ':' && msg[ll + 1] == ' ') msg += ll + 2;
    else if (strncmp(msg, l->ops->type, strlen(l->ops->type)) == 0 &&
             msg[strlen(l->ops->type)] == ':' && msg[strlen(l->ops->type) + 1] == ' ')
        msg += strlen(l->ops->type) + 2;
    rn_nn_err(err, errlen, "model.layers[%d] (%s): %s", i + 1, label, msg);
}

int rn_model_init(rn_model *m, rn_layer **layers, int n, rn_shape in_shape, int64_t max_batch,
                  char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->layers = layers;
    m->n_layers = n;
    m->in_shape = in_shape;
    m->max_batch = max_batch;
    if (n < 1 || !layers || max_batch < 1 || in_shape.ndim < 1 || in_shape.ndim >= RN_MAX_DIMS) {
        rn_nn_err(err, errlen, "model: expected at least one layer, max_batch >= 1 and a 1- to "
                               "3-d sample shape, got %d layers, max_batch %lld, %d-d samples",
                  n, (long long)max_batch, in_shape.ndim);
        goto fail;
    }
    m->acts = calloc((size_t)n + 1, sizeof *m->acts);
    m->grads = calloc((size_t)n + 1, sizeof *m->grads);
    if (!m->acts || !m->grads) goto oom;

    /* shapes first, so a mismatch is reported before anything large is allocated */
    rn_shape s = {.ndim = in_shape.ndim + 1};
    s.d[0] = max_batch;
    for (int i = 0; i < in_shape.ndim; i++) s.d[i + 1] = in_shape.d[i];
    m->acts[0].shape = s;
    m->grads[0].shape = s;
    char msg[320];
    for (int i = 0; i < n; i++) {
        rn_layer *l = layers[i];
        rn_shape out = {0};
        msg[0] = '\0';
        if (l->ops->setup(l, &m->acts[i].shape, &out, msg, sizeof msg)) {
            layer_error(err, errlen, i, l, msg);
            goto fail;
        }
        m->acts[i + 1].shape = out;
        m->grads[i + 1].shape = out;
    }
    for (int i = 0; i <= n; i++) {
        /* flatten's output is its input under another shape: share the buffers */
        if (i > 0 && layers[i - 1]->ops->output_is_input) {
            m->acts[i].data = m->acts[i - 1].data;
            m->acts[i].borrowed = 1;
            m->grads[i].data = m->grads[i - 1].data;
            m->grads[i].borrowed = 1;
            continue;
        }
        if (rn_tensor_alloc(&m->acts[i], m->acts[i].shape)) goto oom;
        /* nothing writes the input gradient; a flatten right after the input gets none either */
        if (i > 0 && rn_tensor_alloc(&m->grads[i], m->grads[i].shape)) goto oom;
        if (i == 0) m->grads[0].borrowed = 1;
    }

    for (int i = 0; i < n; i++) m->n_params += layers[i]->n_params;
    m->params = calloc((size_t)m->n_params + 1, sizeof *m->params);
    if (!m->params) goto oom;
    for (int i = 0, at = 0; i < n; i++)
        for (int j = 0; j < layers[i]->n_params; j++) m->params[at++] = layers[i]->params[j];
    return 0;
oom:
    rn_nn_err(err, errlen, "model: out of memory for the activations of batch %lld",
              (long long)max_batch);
fail:
    free_buffers(m, n);
    for (int i = 0; layers && i < n; i++) rn_layer_destroy(layers[i]);
    free(layers);
    memset(m, 0, sizeof *m);
    return -1;
}

int rn_model_forward(rn_model *m, int64_t n, bool train, rn_tensor *out)
{
    m->err[0] = '\0';
    if (n < 1 || n > m->max_batch)
        return rn_nn_err(m->err, sizeof m->err, "model: batch of %lld samples, expected 1..%lld",
                         (long long)n, (long long)m->max_batch);
    for (int i = 0; i < m->n_layers; i++) {
        rn_layer *l = m->layers[i];
        rn_tensor x = rn_nn_batch_view(&m->acts[i], n), y = rn_nn_batch_view(&m->acts[i + 1], n);
        l->err[0] = '\0';
        if (l->ops->forward(l, &x, &y, train)) {
            char msg[300];
            snprintf(msg, sizeof msg, "forward failed: %s", l->err[0] ? l->err : "(no reason)");
            layer_error(m->err, sizeof m->err, i, l, msg);
            return -1;
        }
    }
    if (out) *out = rn_nn_batch_view(&m->acts[m->n_layers], n);
    return 0;
}

int rn_model_backward(rn_model *m, int64_t n)
{
    m->err[0] = '\0';
    if (n < 1 || n > m->max_batch)
        return rn_nn_err(m->err, sizeof m->err, "model: batch of %lld samples, expected 1..%lld",
                         (long long)n, (long long)m->max_batch);
    for (int i = m->n_layers - 1; i >= 0; i--) {
        rn_layer *l = m->layers[i];
        rn_tensor x = rn_nn_batch_view(&m->acts[i], n), y = rn_nn_batch_view(&m->acts[i + 1], n);
        rn_tensor dy = rn_nn_batch_view(&m->grads[i + 1], n);
        rn_tensor dx = rn_nn_batch_view(&m->grads[i], n);
        /* no input gradient for the first layer (nor through leading flattens) */
        bool need_dx = i > 0 && m->grads[i].data != NULL;
        l->err[0] = '\0';
        if (!need_dx && l->n_params == 0) continue;
        if (l->ops->backward(l, &x, &y, &dy, need_dx ? &dx : NULL)) {
            char msg[300];
            snprintf(msg, sizeof msg, "backward failed: %s", l->err[0] ? l->err : "(no reason)");
            layer_error(m->err, sizeof m->err, i, l, msg);
            return -1;
        }
    }
    return 0;
}

int64_t rn_model_param_count(const rn_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].grad) total += rn_tensor_numel(m->params[i].value);
    return total;
}
