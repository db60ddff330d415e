/* Layers in order with their activations planned once (see chain.h). */
#include "chain.h"
#include "nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<where>[i] (linear fc1): <msg>", with the layer's own "linear fc1: " prefix dropped. The index
 * is 1-based, as in the recipe's key path (Lua lists start at 1). */
static void layer_error(char *err, size_t errlen, const char *where, int i, const rn_layer *l,
                        const char *msg)
{
    char label[96];
    rn_nn_layer_label(l, label, sizeof label);
    size_t ll = strlen(label), tl = strlen(l->ops->type);
    if (strncmp(msg, label, ll) == 0 && msg[ll] == ':' && msg[ll + 1] == ' ') msg += ll + 2;
    else if (strncmp(msg, l->ops->type, tl) == 0 && msg[tl] == ':' && msg[tl + 1] == ' ')
        msg += tl + 2;
    rn_nn_err(err, errlen, "%s[%d] (%s): %s", where, i + 1, label, msg);
}

static void free_buffers(rn_chain *c)
{
    for (int i = 1; c->acts && i < c->n; i++) rn_tensor_free(&c->acts[i]);
    free(c->gbuf);
    free(c->acts);
    free(c->grads);
    rn_ffree(c->gpool[0]);
    rn_ffree(c->gpool[1]);
    free(c->trains);
    free(c->params_before);
    free(c->blocked);
    free(c->folded);
    free(c->in_grad);
    free(c->fold_bn);
    free(c->params);
    free(c->where);
}

void rn_chain_free(rn_chain *c)
{
    if (!c) return;
    free_buffers(c);
    for (int i = 0; c->layers && i < c->n; i++) rn_layer_destroy(c->layers[i]);
    free(c->layers);
    memset(c, 0, sizeof *c);
}

/* Which activations the chain recomputes rather than keeps (chain.h's in_grad): the output of
 * a layer that can recompute it from its own input and does not read it in backward, through
 * the ReLUs folded into that layer with their backward (masks_own_relu), when the next layer
 * reads it before writing its input gradient (dx_may_alias_x), and is not the chain's output.
 * Batch norm before a convolution: the normalized (and ReLU'd) activation of every ResNet
 * block, which PyTorch's autograd keeps. */
static void plan_recompute(rn_chain *c)
{
    for (int i = 1; i < c->n; i++) {
        const rn_layer *p = c->layers[i - 1];
        if (!p->ops->recompute || !p->ops->backward_skips_y || p->ops->output_is_input ||
            c->folded[i - 1] || c->in_grad[i - 1])
            continue;
        int j = i;
        while (j < c->n && c->folded[j] == 3) j++;
        if (j >= c->n || !c->layers[j]->ops->dx_may_alias_x || c->layers[j]->relu_in ||
            c->layers[j]->ops->output_is_input)
            continue;
        for (int k = i; k <= j; k++) c->in_grad[k] = j;
        c->n_recomputed++;
    }
}

int rn_chain_init(rn_chain *c, rn_layer **layers, int n, const rn_shape *in, rn_shape *out,
                  const char *where, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->layers = layers;
    c->n = n;
    c->where = strdup(where);
    c->acts = calloc((size_t)n + 1, sizeof *c->acts);
    c->grads = calloc((size_t)n + 1, sizeof *c->grads);
    c->trains = calloc((size_t)n + 1, sizeof *c->trains);
    c->params_before = calloc((size_t)n + 1, sizeof *c->params_before);
    c->blocked = calloc((size_t)n + 1, sizeof *c->blocked);
    c->folded = calloc((size_t)n + 1, sizeof *c->folded);
    c->gbuf = calloc((size_t)n + 1, sizeof *c->gbuf);
    c->in_grad = calloc((size_t)n + 1, sizeof *c->in_grad);
    c->fold_bn = calloc((size_t)n + 1, sizeof *c->fold_bn);
    if (!c->where || !c->acts || !c->grads || !c->trains || !c->params_before || !c->blocked ||
        !c->folded || !c->gbuf || !c->in_grad || !c->fold_bn)
        goto oom;
    if (n < 1) {
        rn_nn_err(err, errlen, "%s: expected at least one layer", where);
        goto fail;
    }
    /* A ReLU after a layer that can apply it (folds_relu) is folded into it, unless the ReLU's
     * output is the chain's own output (the caller's buffer) or its input is the chain's input
     * (a residual's shortcut reads that too). Its backward then goes to that layer when it
     * can mask by itself, else to the next one when it takes it, else it runs in place.
     * Decided before setup, which builds the plans. */
    for (int i = 1; i + 1 < n; i++)
        if (rn_nn_is_relu(layers[i]) && layers[i - 1]->ops->folds_relu &&
            !layers[i - 1]->relu_out) {
            c->folded[i] = 1;
            layers[i - 1]->relu_out = true;
            if (layers[i - 1]->ops->masks_own_relu) {
                c->folded[i] = 3;
            } else if (layers[i + 1]->ops->takes_relu_backward) {
                c->folded[i] = 2;
                layers[i + 1]->relu_in = true;
            }
        }

    /* Shapes first, so a mismatch is reported before anything large is allocated. */
    c->acts[0].shape = *in;
    c->grads[0].shape = *in;
    char msg[320];
    for (int i = 0; i < n; i++) {
        rn_shape o = {0};
        msg[0] = '\0';
        if (layers[i]->ops->setup(layers[i], &c->acts[i].shape, &o, msg, sizeof msg)) {
            layer_error(err, errlen, where, i, layers[i], msg);
            goto fail;
        }
        c->acts[i + 1].shape = o;
        c->grads[i + 1].shape = o;
        c->trains[i] = rn_nn_layer_trains(layers[i]);
        c->params_before[i + 1] = c->params_before[i] || c->trains[i];
    }
    /* The activation gradients need two buffers, not n - 1: layer i's backward reads grads[i + 1]
     * and writes grads[i], and nothing reads grads[i + 1] after it, so the chain alternates
     * between two buffers of the largest size (PyTorch's autograd likewise frees each gradient
     * once used). flatten's output is its input under another shape, and a folded ReLU's is
     * its input after the layer before applied it: their outputs share their inputs' buffers,
     * activations and gradient alike (their backward is in place, or done by a neighbour). */
    for (int i = 1; i < n; i++)
        if (rn_shape_numel(&c->grads[i].shape) > c->gmost)
            c->gmost = rn_shape_numel(&c->grads[i].shape);
    plan_recompute(c);
    rn_chain_fold_bn(c, true);
    for (int i = 1, b = 0; i < n; i++) {
        bool same = i > 1 && (layers[i - 1]->ops->output_is_input || c->folded[i - 1]);
        if (i > 1 && !same) b = 1 - b;
        c->gbuf[i] = (unsigned char)b;
        c->grads[i].borrowed = 1;
        if (c->in_grad[i]) { /* pointed at grads[in_grad[i]] with the gradients (point_grads) */
            c->acts[i].borrowed = 1;
            continue;
        }
        if (same) {
            c->acts[i].data = c->acts[i - 1].data;
            c->acts[i].borrowed = 1;
            continue;
        }
        if (rn_tensor_alloc(&c->acts[i], c->acts[i].shape)) goto oom;
    }

    for (int i = 0; i < n; i++) c->n_params += layers[i]->n_params;
    c->params = calloc((size_t)c->n_params + 1, sizeof *c->params);
    if (!c->params) goto oom;
    for (int i = 0, at = 0; i < n; i++)
        for (int j = 0; j < layers[i]->n_params; j++) c->params[at++] = layers[i]->params[j];
    *out = c->acts[n].shape;
    return 0;
oom:
    rn_nn_err(err, errlen, "%s: out of memory for the activations of batch %lld", where,
              (long long)in->d[0]);
fail:
    rn_chain_free(c);
    return -1;
}

static void point_grads(rn_chain *c, float *const buf[2])
{
    for (int i = 1; i < c->n; i++) c->grads[i].data = buf[c->gbuf[i]];
    for (int i = 1; i < c->n; i++)
        if (c->in_grad[i]) c->acts[i].data = c->grads[c->in_grad[i]].data;
    c->grads_ready = true;
}

/* A chain outside a model's pool makes its two gradient buffers on first use: its first
 * backward, or its first forward when an activation lives in one (in_grad). */
static int ensure_grads(rn_chain *c, char *err, size_t errlen)
{
    if (c->grads_ready || c->n < 2) return 0;
    if (!(c->gpool[0] = rn_falloc(c->gmost)) ||
        (c->n > 2 && !(c->gpool[1] = rn_falloc(c->gmost)))) {
        rn_ffree(c->gpool[0]);
        c->gpool[0] = NULL;
        return rn_nn_err(err, errlen, "%s: out of memory for the gradients of batch %lld",
                         c->where, (long long)c->acts[0].shape.d[0]);
    }
    point_grads(c, c->gpool);
    return 0;
}

/* Before layer j's backward: its input again, when the chain did not keep it (in_grad). */
static int recompute_input(rn_chain *c, int j, int64_t n, const rn_tensor *x, char *err,
                           size_t errlen)
{
    int i = j;
    while (i > 1 && c->in_grad[i - 1] == j) i--;
    rn_layer *p = c->layers[i - 1];
    rn_tensor xi = i - 1 == 0 ? *x : rn_nn_batch_view(&c->acts[i - 1], n);
    rn_tensor yi = rn_nn_batch_view(&c->acts[i], n);
    p->err[0] = '\0';
    if (p->ops->recompute(p, &xi, &yi)) {
        char msg[300];
        snprintf(msg, sizeof msg, "recompute failed: %s", p->err[0] ? p->err : "(no reason)");
        layer_error(err, errlen, c->where, i - 1, p, msg);
        return -1;
    }
    return 0;
}

int rn_chain_forward(rn_chain *c, const rn_tensor *x, rn_tensor *y, bool train, char *err,
                     size_t errlen)
{
    int64_t n = x->shape.d[0];
    if (c->n_recomputed && ensure_grads(c, err, errlen)) return -1;
    for (int i = 0; i < c->n; i++) {
        rn_layer *l = c->layers[i];
        if (c->folded[i]) continue; /* the layer before applied it */
        rn_tensor xi = i == 0 ? *x : rn_nn_batch_view(&c->acts[i], n);
        l->err[0] = '\0';
        if (!train && c->fold_bn[i]) { /* the batch norm's output, from the convolution */
            rn_tensor yb = i + 1 == c->n - 1 ? *y : rn_nn_batch_view(&c->acts[i + 2], n);
            if (l->ops->forward_bn(l, c->layers[i + 1], &xi, &yb)) {
                char msg[320];
                snprintf(msg, sizeof msg, "forward with the batch norm folded in failed: %s",
                         l->err[0] ? l->err : "(no reason)");
                layer_error(err, errlen, c->where, i, l, msg);
                return -1;
            }
            i++;
            continue;
        }
        rn_tensor yi = i == c->n - 1 ? *y : rn_nn_batch_view(&c->acts[i + 1], n);
        if (l->ops->forward(l, &xi, &yi, train)) {
            char msg[300];
            snprintf(msg, sizeof msg, "forward failed: %s", l->err[0] ? l->err : "(no reason)");
            layer_error(err, errlen, c->where, i, l, msg);
            return -1;
        }
    }
    return 0;
}

void rn_chain_fold_bn(const rn_chain *c, bool on)
{
    for (int i = 0; i < c->n; i++) {
        const rn_layer *l = c->layers[i];
        c->fold_bn[i] = on && i + 1 < c->n && rn_nn_folds_bn(l, c->layers[i + 1]);
        const rn_chain *inner;
        for (int k = 0; (inner = rn_container_chain(l, k)); k++) rn_chain_fold_bn(inner, on);
    }
}

void rn_chain_share_grads(rn_chain *c, rn_grad_pool *p, int level, bool bind)
{
    if (level >= RN_GRAD_LEVELS) return; /* keeps its own, made on first use */
    /* grads[i + 1] is read by layer i's backward alone (see rn_chain_init) */
    for (int i = 0; i < c->n; i++) {
        c->layers[i]->dy_scratch = i < c->n - 1 || c->dy_scratch;
        c->layers[i]->alone = c->n == 1;
    }
    for (int b = 0; b < (c->n > 2 ? 2 : c->n - 1); b++) /* n == 2 uses one buffer */
        if (!bind && c->gmost > p->need[level][b]) p->need[level][b] = c->gmost;
    if (bind && c->n > 1) {
        rn_ffree(c->gpool[0]);
        rn_ffree(c->gpool[1]);
        c->gpool[0] = c->gpool[1] = NULL;
        point_grads(c, p->buf[level]);
    }
    for (int i = 0; i < c->n; i++)
        if (c->layers[i]->ops->share_grads)
            c->layers[i]->ops->share_grads(c->layers[i], p, level, bind);
}

int rn_chain_backward(rn_chain *c, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                      rn_tensor *dx, char *err, size_t errlen)
{
    int64_t n = x->shape.d[0];
    if (ensure_grads(c, err, errlen)) return -1; /* not in a model's pool: buffers of its own */
    for (int i = c->n - 1; i >= 0; i--) {
        rn_layer *l = c->layers[i];
        /* The gradient w.r.t. a layer's input is needed when the caller wants dx or when some
         * earlier layer has parameters to train; without either, nor any of its own, the layer
         * has nothing to do (this is where a frozen body costs nothing). */
        bool need_dx = dx != NULL || c->params_before[i];
        if (!need_dx && !c->trains[i]) continue;
        if (c->folded[i] >= 2) continue; /* the layer after or before masks the gradient */
        if (i > 0 && c->in_grad[i] == i &&
            (!l->ops->backward_reads_x || l->ops->backward_reads_x(l, n)) &&
            recompute_input(c, i, n, x, err, errlen))
            return -1;
        rn_tensor xi = i == 0 ? *x : rn_nn_batch_view(&c->acts[i], n);
        rn_tensor yi = i == c->n - 1 ? *y : rn_nn_batch_view(&c->acts[i + 1], n);
        rn_tensor dyi = i == c->n - 1 ? *dy : rn_nn_batch_view(&c->grads[i + 1], n);
        rn_tensor dxi = i == 0 ? (dx ? *dx : (rn_tensor){0}) : rn_nn_batch_view(&c->grads[i], n);
        l->err[0] = '\0';
        if (l->ops->backward(l, &xi, &yi, &dyi, need_dx ? &dxi : NULL)) {
            char msg[300];
            snprintf(msg, sizeof msg, "backward failed: %s", l->err[0] ? l->err : "(no reason)");
            layer_error(err, errlen, c->where, i, l, msg);
            return -1;
        }
    }
    return 0;
}

void rn_chain_pair_bf16_grads(const rn_chain *c, bool on)
{
    for (int i = 0; i < c->n; i++) c->layers[i]->dx_bf16 = c->layers[i]->dy_bf16 = false;
    for (int k = 1; on && k < c->n; k++) {
        /* grads[k] is layer k's dx, and the dy of the first layer before it that runs a
         * backward of its own (a ReLU whose backward a neighbour does shares the buffer) */
        int j = k - 1;
        while (j > 0 && c->folded[j] >= 2) j--;
        rn_layer *w = c->layers[k], *r = c->layers[j];
        if (w->ops->writes_dx_bf16 && (!w->ops->dx_bf16_ok || w->ops->dx_bf16_ok(w)) &&
            r->ops->takes_dy_bf16)
            w->dx_bf16 = r->dy_bf16 = true;
    }
    for (int i = 0; i < c->n; i++) {
        const rn_chain *inner;
        for (int k = 0; (inner = rn_container_chain(c->layers[i], k)); k++)
            rn_chain_pair_bf16_grads(inner, on);
    }
}

static unsigned layer_layouts(const rn_layer *l)
{
    return l->ops->layouts_of ? l->ops->layouts_of(l) : l->ops->layouts;
}

/* Element-wise layers (RN_LAYOUT_SAME) tie the activations on their two sides together, so the
 * activations fall into runs, each with one layout: blocked when the run's shapes allow it, the
 * layer before the run can give it, the layer after the run can take it and no fixed end of the
 * chain in the run is plain. Writes blocked[0..n]; returns nonzero when an end the caller wants
 * blocked lies in a run that cannot be. */
static int solve(const rn_chain *c, bool in_blocked, bool out_blocked, bool allow, bool *blocked)
{
    const int n = c->n;
    for (int s = 0; s <= n;) {
        int e = s;
        while (e < n && (layer_layouts(c->layers[e]) & RN_LAYOUT_SAME)) e++;
        bool ok = allow, want = false;
        for (int b = s; b <= e; b++) {
            const rn_shape *sh = &c->acts[b].shape;
            if (sh->ndim != 4 || sh->d[1] % 16 != 0) ok = false;
            if (b > 0 && !(layer_layouts(c->layers[b - 1]) & RN_LAYOUT_OUT)) ok = false;
            if (b < n && !(layer_layouts(c->layers[b]) & RN_LAYOUT_IN)) ok = false;
            if ((b == 0 && !in_blocked) || (b == n && !out_blocked)) ok = false;
            if ((b == 0 && in_blocked) || (b == n && out_blocked)) want = true;
        }
        if (want && !ok) return -1;
        for (int b = s; b <= e; b++) blocked[b] = ok;
        s = e + 1;
    }
    return 0;
}

int rn_chain_set_layouts(rn_chain *c, bool in_blocked, bool out_blocked, bool allow, char *err,
                         size_t errlen)
{
    if (solve(c, in_blocked, out_blocked, allow, c->blocked))
        return rn_nn_err(err, errlen, "%s: cannot run with a blocked %s", c->where,
                         in_blocked ? "input" : "output");
    for (int i = 0; i < c->n; i++) {
        rn_layer *l = c->layers[i];
        l->in_blocked = c->blocked[i];
        l->out_blocked = c->blocked[i + 1];
        char msg[300] = "";
        if (l->ops->relayout && l->ops->relayout(l, allow, msg, sizeof msg)) {
            layer_error(err, errlen, c->where, i, l, msg);
            return -1;
        }
    }
    return 0;
}

unsigned rn_chain_layouts(const rn_chain *c)
{
    bool *tmp = malloc(((size_t)c->n + 1) * sizeof *tmp);
    unsigned flags = 0;
    if (tmp && solve(c, true, true, true, tmp) == 0)
        flags = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME;
    else if (tmp && solve(c, true, false, true, tmp) == 0)
        flags = RN_LAYOUT_IN;
    free(tmp);
    return flags;
}

void rn_chain_set_trainable(rn_chain *c, const bool *trainable, bool train_bn)
{
    for (int i = 0, at = 0; i < c->n; i++) {
        rn_layer *l = c->layers[i];
        const bool *mine = trainable ? trainable + at : NULL;
        if (!rn_nn_container_set_trainable(l, mine, train_bn)) {
            bool keep_bn = train_bn && rn_nn_is_batchnorm(l);
            for (int j = 0; j < l->n_params; j++)
                l->params[j].frozen = l->params[j].grad && mine && !mine[j] && !keep_bn;
        }
        for (int j = 0; j < l->n_params; j++) c->params[at + j].frozen = l->params[j].frozen;
        c->trains[i] = rn_nn_layer_trains(l);
        c->params_before[i + 1] = c->params_before[i] || c->trains[i];
        at += l->n_params;
    }
}
