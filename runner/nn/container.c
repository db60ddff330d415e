/* Container layers: a nested sequence ("layer1", a torchvision Sequential) and a residual block
 * y = act(body(x) + shortcut(x)) (torchvision's BasicBlock, with downsample as the shortcut).
 * Both run chains (chain.h); their parameters are their children's, under the children's names. */
#include "chain.h"
#include "vector_clones.h"
#include "nn_internal.h"

#include <stdlib.h>
#include <string.h>

/* Copies the children's param refs (names duplicated: each layer frees its own). */
static int collect_params(rn_layer *l, const rn_chain *const *chains, int n_chains)
{
    int total = 0;
    for (int c = 0; c < n_chains; c++) total += chains[c] ? chains[c]->n_params : 0;
    l->params = total ? calloc((size_t)total, sizeof *l->params) : NULL;
    if (total && !l->params) return -1;
    for (int c = 0, at = 0; c < n_chains; c++) {
        for (int i = 0; chains[c] && i < chains[c]->n_params; i++, at++) {
            l->params[at] = chains[c]->params[i];
            l->params[at].name = strdup(chains[c]->params[i].name);
            l->n_params = at + 1;
            if (!l->params[at].name) return -1;
        }
    }
    return 0;
}

/* ---- sequential ---------------------------------------------------------------------------- */

typedef struct seq_impl {
    rn_layer **pending; /* children until setup builds the chain */
    int n;
    char *where;
    rn_chain chain;
    bool ready;
} seq_impl;

static int seq_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    seq_impl *s = l->impl;
    if (s->ready) return rn_nn_err(err, errlen, "sequential: set up twice");
    rn_layer **children = s->pending;
    s->pending = NULL;
    if (rn_chain_init(&s->chain, children, s->n, in, out, s->where, err, errlen)) return -1;
    s->ready = true;
    const rn_chain *chains[1] = {&s->chain};
    return collect_params(l, chains, 1) ? rn_nn_err(err, errlen, "sequential: out of memory") : 0;
}

static int seq_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    seq_impl *s = l->impl;
    return rn_chain_forward(&s->chain, x, y, train, l->err, sizeof l->err);
}

static int seq_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                        rn_tensor *dx)
{
    seq_impl *s = l->impl;
    return rn_chain_backward(&s->chain, x, y, dy, dx, l->err, sizeof l->err);
}

static unsigned seq_layouts(const rn_layer *l)
{
    const seq_impl *s = l->impl;
    return s->ready ? rn_chain_layouts(&s->chain) : 0;
}

static int seq_relayout(rn_layer *l, bool allow, char *err, size_t errlen)
{
    seq_impl *s = l->impl;
    return rn_chain_set_layouts(&s->chain, l->in_blocked, l->out_blocked, allow, err, errlen);
}

/* A sequential's chain runs at level + 2, clear of the buffers of the chain it is in, except
 * when it is that chain's only layer (which then has no gradients of its own at level) and is
 * flat, with nothing recomputed: then its gradients take level's buffers, as if its layers were
 * that chain's. torchvision's downsample (conv, batch norm), alone in a residual's shortcut:
 * its inner gradient goes where a flat shortcut's would, the residual's buffers at level being
 * the body's (dead once the shortcut's backward runs), its input gradient (the second) and the
 * shortcut's output (the first, dead after the forward). ResNet-18: 16 MiB fewer. */
static void seq_share_grads(rn_layer *l, rn_grad_pool *p, int level, bool bind)
{
    seq_impl *s = l->impl;
    if (!s->ready) return;
    s->chain.dy_scratch = l->dy_scratch; /* its dy is the sequential's */
    bool flat = l->alone && s->chain.n_recomputed == 0;
    for (int i = 0; flat && i < s->chain.n; i++) flat = !s->chain.layers[i]->ops->share_grads;
    rn_chain_share_grads(&s->chain, p, flat ? level : level + 2, bind);
}

static void free_pending(rn_layer **layers, int n)
{
    for (int i = 0; layers && i < n; i++) rn_layer_destroy(layers[i]);
    free(layers);
}

static void seq_destroy(rn_layer *l)
{
    seq_impl *s = l->impl;
    free_pending(s->pending, s->n);
    rn_chain_free(&s->chain);
    free(s->where);
}

static const rn_layer_ops seq_ops = {
    .type = "sequential",
    .setup = seq_setup,
    .forward = seq_forward,
    .backward = seq_backward,
    .destroy = seq_destroy,
    .layouts_of = seq_layouts,
    .relayout = seq_relayout,
    .share_grads = seq_share_grads,
};

rn_layer *rn_sequential_create(const char *name, rn_layer **children, int n, const char *where,
                               char *err, size_t errlen)
{
    rn_layer *l = n > 0 ? rn_nn_layer_new(&seq_ops, name, sizeof(seq_impl), 0) : NULL;
    char *w = l ? strdup(where) : NULL;
    if (!l || !w) {
        free_pending(children, n);
        free(w);
        rn_layer_destroy(l);
        rn_nn_err(err, errlen, n > 0 ? "%s: out of memory" : "%s: expected at least one layer",
                  where);
        return NULL;
    }
    seq_impl *s = l->impl;
    s->pending = children;
    s->n = n;
    s->where = w;
    return l;
}

/* Whether nothing reads the chain's output in backward: its last layer skips y, or is a
 * sequential whose chain's output is likewise unread. */
static bool output_unused(const rn_chain *c)
{
    const rn_layer *l = c->layers[c->n - 1];
    if (l->ops->backward_skips_y) return true;
    if (l->ops != &seq_ops) return false;
    const seq_impl *s = l->impl;
    return s->ready && output_unused(&s->chain);
}

/* ---- residual ------------------------------------------------------------------------------ */

typedef struct res_impl {
    rn_layer **pending[2]; /* body, shortcut (NULL: identity) until setup */
    int n[2];
    char *where[2];
    rn_chain body, shortcut;
    bool has_shortcut, relu, ready;
    /* The body's and the shortcut's outputs (max batch). When the body's last layer does not
     * read its output in backward (backward_skips_y), the body writes into the block's own
     * output and the sum is made there: no b_out. Likewise the shortcut's output is needed
     * only until the sum: it then lives in a buffer of the model's pool that only backward
     * uses (res_share_grads), else in s_out's own, made on the first forward. */
    rn_tensor b_out, s_out;
    bool body_into_y, s_in_pool, own_s;
    /* The gradient after the activation (in dy itself when dy_scratch) and the shortcut's
     * input gradient: in a model's pool (rn_chain_share_grads) or, made on the first backward,
     * the block's own. */
    rn_tensor d_sum, dx_tmp;
    bool own_grads;
} res_impl;

static int res_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    res_impl *r = l->impl;
    if (r->ready) return rn_nn_err(err, errlen, "residual: set up twice");
    rn_shape bo, so = *in;
    rn_layer **body = r->pending[0], **sc = r->pending[1];
    r->pending[0] = r->pending[1] = NULL;
    if (rn_chain_init(&r->body, body, r->n[0], in, &bo, r->where[0], err, errlen)) {
        free_pending(sc, r->n[1]);
        return -1;
    }
    if (r->has_shortcut && rn_chain_init(&r->shortcut, sc, r->n[1], in, &so, r->where[1], err,
                                         errlen))
        return -1;
    r->ready = true;
    if (!rn_shape_equal(&bo, &so)) {
        char a[64], b[64];
        return rn_nn_err(err, errlen, "residual: the body gives %s but the %s gives %s; add a "
                         "shortcut (downsample) that matches", rn_nn_sample_str(&bo, a, sizeof a),
                         r->has_shortcut ? "shortcut" : "identity shortcut",
                         rn_nn_sample_str(&so, b, sizeof b));
    }
    r->body_into_y = output_unused(&r->body);
    if (!r->body_into_y && rn_tensor_alloc(&r->b_out, bo))
        return rn_nn_err(err, errlen, "residual: out of memory");
    r->s_out.shape = bo;
    r->d_sum.shape = bo;
    r->dx_tmp.shape = *in;
    *out = bo;
    const rn_chain *chains[2] = {&r->body, r->has_shortcut ? &r->shortcut : NULL};
    return collect_params(l, chains, 2) ? rn_nn_err(err, errlen, "residual: out of memory") : 0;
}

RN_VECTOR_CLONES
static int res_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    res_impl *r = l->impl;
    int64_t n = x->shape.d[0];
    rn_tensor b = r->body_into_y ? *y : rn_nn_batch_view(&r->b_out, n), s = *x;
    if (rn_chain_forward(&r->body, x, &b, train, l->err, sizeof l->err)) return -1;
    if (r->has_shortcut) {
        if (!r->s_out.data) { /* not in a model's pool */
            if (rn_tensor_alloc(&r->s_out, r->s_out.shape))
                return rn_nn_err(l->err, sizeof l->err, "out of memory for the shortcut");
            r->own_s = true;
        }
        s = rn_nn_batch_view(&r->s_out, n);
        if (rn_chain_forward(&r->shortcut, x, &s, train, l->err, sizeof l->err)) return -1;
    }
    const float *bp = b.data, *sp = s.data;
    float *yp = y->data;
    int64_t total = rn_tensor_numel(y);
    bool relu = r->relu;
#pragma omp parallel for simd schedule(static) if (total > 65536)
    for (int64_t i = 0; i < total; i++) {
        float v = bp[i] + sp[i];
        yp[i] = relu && v < 0.0f ? 0.0f : v;
    }
    return 0;
}

RN_VECTOR_CLONES
static int res_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                        rn_tensor *dx)
{
    res_impl *r = l->impl;
    int64_t n = x->shape.d[0], total = rn_tensor_numel(y);
    const bool in_dy = l->dy_scratch;
    if ((!in_dy && !r->d_sum.data) || (r->has_shortcut && !r->dx_tmp.data)) { /* no pool */
        r->own_grads = true;
        if ((!in_dy && !r->d_sum.data && rn_tensor_alloc(&r->d_sum, r->d_sum.shape)) ||
            (r->has_shortcut && !r->dx_tmp.data && rn_tensor_alloc(&r->dx_tmp, r->dx_tmp.shape)))
            return rn_nn_err(l->err, sizeof l->err, "out of memory for the gradients");
    }
    rn_tensor d = in_dy ? *dy : rn_nn_batch_view(&r->d_sum, n);
    const float *yp = y->data, *dyp = dy->data;
    float *dp = d.data;
    bool relu = r->relu;
    /* y = relu(z): dz = dy where y > 0 (y > 0 exactly when z > 0); in place in dy when the
     * chain reads it no more */
    if (relu || !in_dy) {
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (int64_t i = 0; i < total; i++) dp[i] = relu && !(yp[i] > 0.0f) ? 0.0f : dyp[i];
    }

    /* the body's output, as its last layer's backward gets it (unread with body_into_y) */
    rn_tensor b = r->body_into_y ? *y : rn_nn_batch_view(&r->b_out, n);
    if (rn_chain_backward(&r->body, x, &b, &d, dx, l->err, sizeof l->err)) return -1;
    if (r->has_shortcut) {
        rn_tensor s = rn_nn_batch_view(&r->s_out, n), t = rn_nn_batch_view(&r->dx_tmp, n);
        if (rn_chain_backward(&r->shortcut, x, &s, &d, dx ? &t : NULL, l->err, sizeof l->err))
            return -1;
        if (!dx) return 0;
        float *dxp = dx->data;
        const float *tp = t.data;
        int64_t m = rn_tensor_numel(dx);
#pragma omp parallel for simd schedule(static) if (m > 65536)
        for (int64_t i = 0; i < m; i++) dxp[i] += tp[i];
    } else if (dx) {
        float *dxp = dx->data;
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (int64_t i = 0; i < total; i++) dxp[i] += dp[i];
    }
    return 0;
}

/* The sum and its activation are element-wise, and the identity shortcut passes x on: the block
 * runs blocked when both chains run with both ends blocked. */
static unsigned res_layouts(const rn_layer *l)
{
    const res_impl *r = l->impl;
    const unsigned all = RN_LAYOUT_IN | RN_LAYOUT_OUT | RN_LAYOUT_SAME;
    if (!r->ready || rn_chain_layouts(&r->body) != all ||
        (r->has_shortcut && rn_chain_layouts(&r->shortcut) != all))
        return 0;
    return all;
}

static int res_relayout(rn_layer *l, bool allow, char *err, size_t errlen)
{
    res_impl *r = l->impl;
    if (rn_chain_set_layouts(&r->body, l->in_blocked, l->out_blocked, allow, err, errlen))
        return -1;
    return r->has_shortcut ? rn_chain_set_layouts(&r->shortcut, l->in_blocked, l->out_blocked,
                                                  allow, err, errlen)
                           : 0;
}

static void res_destroy(rn_layer *l)
{
    res_impl *r = l->impl;
    for (int k = 0; k < 2; k++) {
        free_pending(r->pending[k], r->n[k]);
        free(r->where[k]);
    }
    rn_chain_free(&r->body);
    rn_chain_free(&r->shortcut);
    rn_tensor_free(&r->b_out);
    if (r->own_s) rn_tensor_free(&r->s_out);
    if (r->own_grads) {
        rn_tensor_free(&r->d_sum);
        rn_tensor_free(&r->dx_tmp);
    }
}

/* Where the block's transients go, its chains being at level + 2:
 * - d_sum at level + 1, unless dy_scratch (then in dy);
 * - dx_tmp at level + 2, in the second buffer: the shortcut's backward runs after the body's,
 *   whose buffers are then dead, and its first layer reads its grads[1] from the first;
 * - s_out (forward only, dead before backward) at level + 2 too, where the body's forward left
 *   nothing live, unless the shortcut's forward uses that level's buffers itself (in_grad), in
 *   which case at level + 1. */
static void res_share_grads(rn_layer *l, rn_grad_pool *p, int level, bool bind)
{
    res_impl *r = l->impl;
    if (!r->ready || level + 2 >= RN_GRAD_LEVELS) return;
    r->s_in_pool = r->has_shortcut && output_unused(&r->shortcut);
    const int s_level = r->has_shortcut && r->shortcut.n_recomputed ? level + 1 : level + 2;
    struct { rn_tensor *t; int level, b; bool used; } at[3] = {
        {&r->d_sum, level + 1, 0, !l->dy_scratch},
        {&r->dx_tmp, level + 2, 1, r->has_shortcut},
        {&r->s_out, s_level, 0, r->s_in_pool},
    };
    for (int k = 0; k < 3 && !bind; k++) {
        int64_t need = rn_shape_numel(&at[k].t->shape);
        if (at[k].used && need > p->need[at[k].level][at[k].b])
            p->need[at[k].level][at[k].b] = need;
    }
    if (bind) {
        if (r->own_grads) {
            rn_tensor_free(&r->d_sum);
            rn_tensor_free(&r->dx_tmp);
            r->own_grads = false;
        }
        if (r->s_in_pool && r->own_s) rn_tensor_free(&r->s_out);
        if (r->s_in_pool) r->own_s = false;
        for (int k = 0; k < 3; k++) {
            if (k == 2 && !r->s_in_pool) continue; /* s_out stays the block's own */
            at[k].t->data = at[k].used ? p->buf[at[k].level][at[k].b] : NULL;
            at[k].t->borrowed = 1;
        }
    }
    rn_chain_share_grads(&r->body, p, level + 2, bind);
    if (r->has_shortcut) rn_chain_share_grads(&r->shortcut, p, level + 2, bind);
}

static const rn_layer_ops res_ops = {
    .type = "residual",
    .setup = res_setup,
    .forward = res_forward,
    .backward = res_backward,
    .destroy = res_destroy,
    .layouts_of = res_layouts,
    .relayout = res_relayout,
    .share_grads = res_share_grads,
};

rn_layer *rn_residual_create(const char *name, rn_layer **body, int n_body, rn_layer **shortcut,
                             int n_shortcut, bool relu, const char *where_body,
                             const char *where_shortcut, char *err, size_t errlen)
{
    rn_layer *l = n_body > 0 ? rn_nn_layer_new(&res_ops, name, sizeof(res_impl), 0) : NULL;
    if (!l) {
        free_pending(body, n_body);
        free_pending(shortcut, n_shortcut);
        rn_nn_err(err, errlen, n_body > 0 ? "%s: out of memory" : "%s: expected at least one layer",
                  where_body);
        return NULL;
    }
    res_impl *r = l->impl;
    r->pending[0] = body;
    r->n[0] = n_body;
    r->pending[1] = n_shortcut > 0 ? shortcut : NULL;
    r->n[1] = n_shortcut;
    r->has_shortcut = n_shortcut > 0;
    r->relu = relu;
    r->where[0] = strdup(where_body);
    r->where[1] = strdup(where_shortcut);
    if (n_shortcut <= 0) free(shortcut);
    if (!r->where[0] || !r->where[1]) {
        rn_layer_destroy(l);
        rn_nn_err(err, errlen, "%s: out of memory", where_body);
        return NULL;
    }
    return l;
}

bool rn_residual_relu(const rn_layer *l)
{
    return l->ops == &res_ops && ((const res_impl *)l->impl)->relu;
}

const rn_chain *rn_container_chain(const rn_layer *l, int k)
{
    if (l->ops == &seq_ops) {
        const seq_impl *s = l->impl;
        return k == 0 && s->ready ? &s->chain : NULL;
    }
    if (l->ops == &res_ops) {
        const res_impl *r = l->impl;
        if (!r->ready) return NULL;
        if (k == 0) return &r->body;
        if (k == 1 && r->has_shortcut) return &r->shortcut;
    }
    return NULL;
}

bool rn_nn_container_set_trainable(rn_layer *l, const bool *trainable, bool train_bn)
{
    rn_chain *chains[2] = {NULL, NULL};
    if (l->ops == &seq_ops) {
        seq_impl *s = l->impl;
        if (s->ready) chains[0] = &s->chain;
    } else if (l->ops == &res_ops) {
        res_impl *r = l->impl;
        if (r->ready) {
            chains[0] = &r->body;
            if (r->has_shortcut) chains[1] = &r->shortcut;
        }
    } else {
        return false;
    }
    /* l->params is the chains' params in order (collect_params) */
    for (int k = 0, at = 0; k < 2; k++) {
        if (!chains[k]) continue;
        rn_chain_set_trainable(chains[k], trainable ? trainable + at : NULL, train_bn);
        for (int j = 0; j < chains[k]->n_params; j++)
            l->params[at + j].frozen = chains[k]->params[j].frozen;
        at += chains[k]->n_params;
    }
    return true;
}
