/* A CPU stand-in for the CUDA backend (rn_cuda.so, backend ABI 3), for tests on machines
 * without a GPU: it reports one "GPU" and runs the device network with the CPU layers
 * (rn_net_forward/backward over the nodes' own layers), the loss with rn_cross_entropy2 or
 * rn_multi_margin, the optimizer step with the chunk-plan walk the GPU kernels follow
 * (tests/update_walk.h).
 *
 * Precision: with BF16 the layers (the host model's, which the core switched to the CPU's bf16
 * kernels for the recipe's precision) compute in bf16, so a GPU bf16 run here equals a CPU bf16
 * run. FP16 computes
 * in float32: what it checks is the loop's loss scaling (the logits' gradient times grad_scale,
 * net_grad_unscale), which power-of-two scales leave exact. RN_FAKE_CUDA_OVERFLOW=k1,k2,...
 * writes an inf into the first trainable gradient on backward calls k1, k2, ... (1-based), as an
 * fp16 overflow would, so that GradScaler's skipped steps can be tested.
 *
 * What makes it a faithful double of the device: it keeps its own copies of every parameter,
 * buffer, gradient and optimizer state ("device memory"). The host model's tensors change only
 * through net_download, and the device's only through net_create and net_upload, so a training
 * loop that forgets to copy one way or the other trains differently from the CPU path, and the
 * tests (tests/e2e/device_loop.py) see it. While a call runs the layers, the layers' parameter
 * tensors point at the device copies (and back before it returns).
 *
 * Not a product: built only into the test tree, loaded with RUNNER_BACKEND_DIR. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runner/cuda/backend.h"
#include "../update_walk.h"
#include "../../kernels/amp_elem.h"
#include "../../kernels/augment_elem.h"
#include "../../kernels/net_elem.h"
#include "layer.h"
#include "net.h"
#include "nn_internal.h"

#define CHUNK 65536 /* grads.c's norm chunks */

struct rn_cuda_net {
    const rn_net *desc;
    const rn_param_ref *params; /* the host model's */
    int n_params;
    int64_t max_batch, classes, per_sample;
    float **val, **grad;        /* device copies, per parameter (grad NULL for buffers) */
    float **host_val, **host_grad;
    float **state;              /* optimizer state, per parameter, or NULL */
    float **acc;                /* gradient accumulation's sums, per parameter, or NULL */
    size_t *state_floats;
    rn_tensor *acts, *grads;    /* the graph's tensors */
    /* What net_put_batch fills and net_augment changes (the "copy stream's" buffers), and what
     * net_forward takes from them for the forward and the loss, as the CUDA backend keeps them
     * apart: the next batch may be put while the current one's backward still reads its input. */
    float *stage_x, *stage_soft;
    int32_t *stage_labels;
    int32_t *labels;
    float *soft;
    int entered;
    int precision;              /* RN_CUDA_FP32 / BF16 / FP16 */
    int64_t backwards;          /* net_backward calls so far (RN_FAKE_CUDA_OVERFLOW) */
};

static int64_t numel(const rn_param_ref *p) { return rn_tensor_numel(p->value); }

static int probe(rn_cuda_info *info, char *why, size_t len)
{
    (void)why, (void)len;
    memset(info, 0, sizeof *info);
    info->devices = 1;
    snprintf(info->name, sizeof info->name, "CPU stand-in GPU");
    info->cc_major = 9;
    info->memory_bytes = (size_t)1 << 34;
    return 0;
}

static int conv2d_output(const rn_cuda_conv_shape *s, int out[4], char *err, size_t len)
{
    (void)err, (void)len;
    out[0] = s->n;
    out[1] = s->out_ch;
    out[2] = (s->h + 2 * s->pad_h - s->dil_h * (s->kh - 1) - 1) / s->stride_h + 1;
    out[3] = (s->w + 2 * s->pad_w - s->dil_w * (s->kw - 1) - 1) / s->stride_w + 1;
    return 0;
}

static int maxpool2d_output(const rn_cuda_conv_shape *s, int out[4], char *err, size_t len)
{
    (void)err, (void)len;
    out[0] = s->n;
    out[1] = s->c;
    out[2] = (s->h + 2 * s->pad_h - s->kh) / s->stride_h + 1;
    out[3] = (s->w + 2 * s->pad_w - s->kw) / s->stride_w + 1;
    return 0;
}

static int plan_shapes(const rn_net *desc, int64_t n, int (*dims)[4], char *err, size_t len)
{
    (void)err, (void)len;
    for (int k = 0; k < desc->n_nodes; k++) {
        const rn_shape *s = &desc->shapes[desc->nodes[k].out];
        dims[k][0] = (int)n;
        for (int j = 1; j < 4; j++) dims[k][j] = j < s->ndim ? (int)s->d[j] : 1;
    }
    return 0;
}

/* The layers compute on the device copies while a call runs. */
static void enter(rn_cuda_net *net)
{
    for (int i = 0; i < net->n_params; i++) {
        net->params[i].value->data = net->val[i];
        if (net->params[i].grad) net->params[i].grad->data = net->grad[i];
    }
    net->entered = 1;
}

static void leave(rn_cuda_net *net)
{
    for (int i = 0; i < net->n_params; i++) {
        net->params[i].value->data = net->host_val[i];
        if (net->params[i].grad) net->params[i].grad->data = net->host_grad[i];
    }
    net->entered = 0;
}

static void net_destroy(rn_cuda_net *net)
{
    if (!net) return;
    for (int i = 0; i < net->n_params; i++) {
        rn_ffree(net->val ? net->val[i] : NULL);
        rn_ffree(net->grad ? net->grad[i] : NULL);
        free(net->state ? net->state[i] : NULL);
        free(net->acc ? net->acc[i] : NULL);
    }
    free(net->acc);
    free(net->val);
    free(net->grad);
    free(net->host_val);
    free(net->host_grad);
    free(net->state);
    free(net->state_floats);
    if (net->acts) rn_net_buffers_free(net->desc, net->acts, net->grads);
    free(net->labels);
    free(net->soft);
    free(net->stage_x);
    free(net->stage_labels);
    free(net->stage_soft);
    free(net);
}

static int net_create(rn_cuda_net **out, const rn_net *desc, const rn_param_ref *params,
                      int n_params, int64_t max_batch, int precision, char *err, size_t len)
{
    *out = NULL;
    if (precision < RN_CUDA_FP32 || precision > RN_CUDA_FP16) {
        snprintf(err, len, "stand-in GPU: precision %d unknown", precision);
        return -1;
    }
    rn_cuda_net *net = calloc(1, sizeof *net);
    if (!net) goto oom;
    net->precision = precision;
    net->desc = desc;
    net->params = params;
    net->n_params = n_params;
    net->max_batch = max_batch;
    const rn_shape *o = &desc->shapes[desc->output];
    net->classes = o->d[1];
    net->per_sample = rn_shape_numel(&desc->shapes[desc->input]) / desc->shapes[desc->input].d[0];
    size_t np = (size_t)n_params + 1;
    if (!(net->val = calloc(np, sizeof *net->val)) || !(net->grad = calloc(np, sizeof *net->grad)) ||
        !(net->host_val = calloc(np, sizeof *net->host_val)) ||
        !(net->host_grad = calloc(np, sizeof *net->host_grad)) ||
        !(net->state = calloc(np, sizeof *net->state)) ||
        !(net->acc = calloc(np, sizeof *net->acc)) ||
        !(net->state_floats = calloc(np, sizeof *net->state_floats)))
        goto oom;
    for (int i = 0; i < n_params; i++) {
        int64_t k = numel(&params[i]);
        net->host_val[i] = params[i].value->data;
        if (!(net->val[i] = rn_falloc(k))) goto oom;
        memcpy(net->val[i], params[i].value->data, (size_t)k * sizeof(float));
        if (params[i].grad) {
            net->host_grad[i] = params[i].grad->data;
            if (!(net->grad[i] = rn_falloc(k))) goto oom;
        }
    }
    if (rn_net_buffers(desc, &net->acts, &net->grads) ||
        !(net->labels = calloc((size_t)max_batch, sizeof *net->labels)) ||
        !(net->soft = calloc((size_t)(max_batch * net->classes), sizeof *net->soft)) ||
        !(net->stage_x = calloc((size_t)(max_batch * net->per_sample), sizeof *net->stage_x)) ||
        !(net->stage_labels = calloc((size_t)max_batch, sizeof *net->stage_labels)) ||
        !(net->stage_soft = calloc((size_t)(max_batch * net->classes), sizeof *net->stage_soft)))
        goto oom;
    *out = net;
    return 0;
oom:
    net_destroy(net);
    snprintf(err, len, "stand-in GPU: out of memory");
    return -1;
}

static void *host_alloc(size_t bytes) { return malloc(bytes); }
static void host_free(void *p) { free(p); }

static int net_put_batch(rn_cuda_net *net, const float *x, const int32_t *labels,
                         const float *soft, int64_t n, char *err, size_t len)
{
    if (n < 1 || n > net->max_batch) {
        snprintf(err, len, "stand-in GPU: batch of %lld, expected 1..%lld", (long long)n,
                 (long long)net->max_batch);
        return -1;
    }
    memcpy(net->stage_x, x, (size_t)(n * net->per_sample) * sizeof *x);
    if (labels) memcpy(net->stage_labels, labels, (size_t)n * sizeof *labels);
    if (soft) memcpy(net->stage_soft, soft, (size_t)(n * net->classes) * sizeof *soft);
    return 0;
}

static int net_forward(rn_cuda_net *net, int64_t n, int train, char *err, size_t len)
{
    memcpy(net->acts[net->desc->input].data, net->stage_x,
           (size_t)(n * net->per_sample) * sizeof *net->stage_x);
    memcpy(net->labels, net->stage_labels, (size_t)n * sizeof *net->labels);
    memcpy(net->soft, net->stage_soft, (size_t)(n * net->classes) * sizeof *net->soft);
    enter(net);
    int rc = rn_net_forward(net->desc, net->acts, n, train != 0, err, len);
    leave(net);
    return rc;
}

static int net_loss(rn_cuda_net *net, int64_t n, const rn_cuda_loss *lf, int gradient,
                    double *out, int64_t *correct, char *err, size_t len)
{
    rn_tensor logits = rn_nn_batch_view(&net->acts[net->desc->output], n);
    rn_tensor dl = rn_nn_batch_view(&net->grads[net->desc->output], n);
    double loss;
    if (lf->kind == RN_CUDA_LOSS_MULTI_MARGIN)
        loss = rn_multi_margin(&logits, net->labels, lf->margin, lf->p, gradient ? &dl : NULL,
                               correct);
    else if (lf->kind == RN_CUDA_LOSS_CROSS_ENTROPY)
        loss = rn_cross_entropy2(&logits, net->labels, lf->soft ? net->soft : NULL,
                                 lf->label_smoothing, gradient ? &dl : NULL, correct);
    else {
        snprintf(err, len, "stand-in GPU: loss kind %d unknown", lf->kind);
        return -1;
    }
    if (lf->grad_scale != 1.0f && net->precision != RN_CUDA_FP16) {
        snprintf(err, len, "stand-in GPU: a loss scale of %g without fp16",
                 (double)lf->grad_scale);
        return -1;
    }
    for (int64_t i = 0; gradient && lf->grad_scale != 1.0f && i < n * net->classes; i++)
        dl.data[i] *= lf->grad_scale;
    if (out) *out = loss;
    return 0;
}

/* Whether backward call k (1-based) is one RN_FAKE_CUDA_OVERFLOW lists. */
static int overflow_at(int64_t k)
{
    const char *list = getenv("RN_FAKE_CUDA_OVERFLOW");
    for (const char *at = list; at && *at;) {
        char *end;
        long long v = strtoll(at, &end, 10);
        if (end == at) break;
        if (v == k) return 1;
        at = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int net_backward(rn_cuda_net *net, int64_t n, const int *trainable, char *err, size_t len)
{
    /* The layers here read the frozen flags themselves; the CUDA backend goes by trainable, so
     * the mask the loop passes must say the same. */
    for (int i = 0; i < net->n_params; i++) {
        int want = net->params[i].grad != NULL && !net->params[i].frozen;
        if (!trainable || (trainable[i] != 0) != want) {
            snprintf(err, len, "stand-in GPU: trainable[%d] (%s) is %d, but the parameter %s",
                     i, net->params[i].name, trainable ? trainable[i] : -1,
                     want ? "trains" : "does not train");
            return -1;
        }
    }
    enter(net);
    int rc = rn_net_backward(net->desc, net->acts, net->grads, n, err, len);
    leave(net);
    net->backwards++;
    if (!rc && overflow_at(net->backwards))
        for (int i = 0; i < net->n_params; i++)
            if (trainable[i]) {
                net->grad[i][0] = INFINITY;
                break;
            }
    return rc;
}

static int net_grad_unscale(rn_cuda_net *net, const int *idx, int n, float inv_scale,
                            int *found_inf, char *err, size_t len)
{
    if (net->precision != RN_CUDA_FP16) {
        snprintf(err, len, "stand-in GPU: net_grad_unscale without fp16");
        return -1;
    }
    int bad = 0;
    for (int t = 0; t < n; t++) {
        float *g = net->grad[idx[t]];
        int64_t k = numel(&net->params[idx[t]]);
        for (int64_t j = 0; j < k; j++) bad |= rn_unscale_elem(&g[j], inv_scale);
    }
    *found_inf = bad;
    return 0;
}

static int net_grad_sumsq(rn_cuda_net *net, const int *idx, int n, double *sumsq, char *err,
                          size_t len)
{
    (void)err, (void)len;
    double total = 0; /* as grads.c: per tensor, chunk sums in order */
    for (int t = 0; t < n; t++) {
        const float *g = net->grad[idx[t]];
        int64_t k = numel(&net->params[idx[t]]);
        for (int64_t c = 0; c * CHUNK < k; c++) {
            int64_t end = (c + 1) * CHUNK < k ? (c + 1) * CHUNK : k;
            double s = 0;
            for (int64_t j = c * CHUNK; j < end; j++) s += (double)g[j] * (double)g[j];
            total += s;
        }
    }
    *sumsq = total;
    return 0;
}

static int net_grad_scale(rn_cuda_net *net, const int *idx, int n, float factor, char *err,
                          size_t len)
{
    (void)err, (void)len;
    for (int t = 0; t < n; t++) {
        float *g = net->grad[idx[t]];
        int64_t k = numel(&net->params[idx[t]]);
        for (int64_t j = 0; j < k; j++) g[j] *= factor;
    }
    return 0;
}

static int net_state_alloc(rn_cuda_net *net, int i, size_t floats, char *err, size_t len)
{
    free(net->state[i]);
    net->state[i] = calloc((size_t)numel(&net->params[i]) * floats + 1, sizeof(float));
    net->state_floats[i] = floats;
    if (net->state[i]) return 0;
    snprintf(err, len, "stand-in GPU: out of memory for %s's optimizer state",
             net->params[i].name);
    return -1;
}

static int net_step(rn_cuda_net *net, const int *idx, int n, const rn_update *u, char *err,
                    size_t len)
{
    rn_mt_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    if (!ts) return snprintf(err, len, "stand-in GPU: out of memory"), -1;
    for (int t = 0; t < n; t++) {
        int i = idx[t];
        int64_t k = numel(&net->params[i]);
        float *blk[3] = {NULL, NULL, NULL};
        for (int s = 0; s < 3; s++)
            if (u->state[s] >= 0) {
                if (!net->state[i] || (size_t)u->state[s] >= net->state_floats[i]) {
                    free(ts);
                    snprintf(err, len, "stand-in GPU: %s has no optimizer state block %d",
                             net->params[i].name, u->state[s]);
                    return -1;
                }
                blk[s] = net->state[i] + u->state[s] * k;
            }
        ts[t] = (rn_mt_tensor){net->val[i], net->grad[i], blk[0], blk[1], blk[2], k};
    }
    int rc = rn_update_walk(u, ts, n);
    free(ts);
    if (rc) snprintf(err, len, "stand-in GPU: optimizer update kind %d failed", (int)u->kind);
    return rc;
}

/* As kernels/augment_kernels.cu does it, element by element from the batch as it was (x0),
 * with kernels/augment_elem.h. */
static int net_augment(rn_cuda_net *net, int64_t n, const rn_augment_op *op,
                       const float *zero_value, char *err, size_t len)
{
    const rn_shape *in = &net->desc->shapes[net->desc->input];
    int64_t c = in->d[1], h = in->d[2], w = in->d[3], plane = h * w, total = n * c * plane;
    float *x = net->stage_x, *soft = net->stage_soft;
    if (op->kind == RN_AUGMENT_OP_NONE) return 0;
    if (op->kind == RN_AUGMENT_OP_ERASE) {
        for (int64_t e = 0; e < total; e++) {
            int64_t i = e / (c * plane), ch = (e / plane) % c, at = e % plane;
            const rn_erase_box *b = &op->erase[i];
            int64_t y = at / w - b->y, xx = at % w - b->x;
            if (y < 0 || y >= b->h || xx < 0 || xx >= b->w) continue;
            x[e] = op->random ? rn_erase_normal(b->key, (uint64_t)((ch * b->h + y) * b->w + xx))
                              : 0.0f;
        }
        return 0;
    }
    float *x0 = malloc((size_t)(total + 1) * sizeof *x0);
    float *t0 = malloc((size_t)(n * net->classes + 1) * sizeof *t0);
    int rc = 0;
    if (!x0 || !t0) {
        snprintf(err, len, "stand-in GPU: out of memory");
        rc = -1;
    } else {
        memcpy(x0, x, (size_t)total * sizeof *x0);
        memcpy(t0, soft, (size_t)(n * net->classes) * sizeof *t0);
    }
    for (int64_t e = 0; rc == 0 && e < total; e++) {
        int64_t i = e / (c * plane), ch = (e / plane) % c, at = e % plane, base = e - at;
        int64_t y = at / w, xx = at % w;
        if (op->kind == RN_AUGMENT_OP_FLIP) {
            int f = op->flip[i] != 0;
            int64_t sy = op->vertical ? rn_flip_src(y, h, f) : y;
            int64_t sx = op->vertical ? xx : rn_flip_src(xx, w, f);
            x[e] = x0[base + sy * w + sx];
        } else if (op->kind == RN_AUGMENT_OP_CROP) {
            int64_t sy = rn_crop_src(y, h, op->shift[2 * i], op->reflect);
            int64_t sx = rn_crop_src(xx, w, op->shift[2 * i + 1], op->reflect);
            x[e] = sy < 0 || sx < 0 ? zero_value[ch] : x0[base + sy * w + sx];
        } else if (op->kind == RN_AUGMENT_OP_RESIZED_CROP) {
            const int32_t *b = op->box + 4 * i;
            if (b[2] != h || b[3] != w)
                x[e] = rn_resized_crop_pixel(x0 + base, h, w, b[0], b[1], b[2], b[3], y, xx);
        } else if (op->kind == RN_AUGMENT_OP_MIX) {
            const rn_mix_sample *p = &op->mix[i];
            int64_t sample = c * plane;
            x[e] = rn_mix_pixel(p, x0[e], x0[p->partner * sample + e % sample], y, xx);
        } else {
            snprintf(err, len, "stand-in GPU: unknown augment kind %d", (int)op->kind);
            rc = -1;
        }
    }
    for (int64_t e = 0; rc == 0 && op->kind == RN_AUGMENT_OP_MIX && e < n * net->classes; e++) {
        const rn_mix_sample *p = &op->mix[e / net->classes];
        soft[e] = rn_mix_target(p, t0[e], t0[p->partner * net->classes + e % net->classes]);
    }
    free(x0);
    free(t0);
    return rc;
}

static int net_download(rn_cuda_net *net, const rn_param_ref *params, int n_params, int grads,
                        float **state, char *err, size_t len)
{
    (void)err, (void)len;
    for (int i = 0; i < n_params && i < net->n_params; i++) {
        int64_t k = numel(&params[i]);
        memcpy(net->host_val[i], net->val[i], (size_t)k * sizeof(float));
        if (grads && params[i].grad) memcpy(net->host_grad[i], net->grad[i], (size_t)k * 4);
        if (state && state[i] && net->state[i])
            memcpy(state[i], net->state[i], (size_t)k * net->state_floats[i] * sizeof(float));
    }
    return 0;
}

static int net_upload(rn_cuda_net *net, const rn_param_ref *params, int n_params,
                      float *const *state, char *err, size_t len)
{
    (void)err, (void)len;
    for (int i = 0; i < n_params && i < net->n_params; i++) {
        int64_t k = numel(&params[i]);
        memcpy(net->val[i], net->host_val[i], (size_t)k * sizeof(float));
        if (state && state[i] && net->state[i])
            memcpy(net->state[i], state[i], (size_t)k * net->state_floats[i] * sizeof(float));
    }
    return 0;
}

/* RN_FAKE_CUDA_WRONG=1 makes the logits read back wrong by 0.5 in one place, as a broken
 * backend would: the loop's first check must refuse to train. */
static int net_logits(rn_cuda_net *net, float *host, int64_t n, char *err, size_t len)
{
    (void)err, (void)len;
    memcpy(host, net->acts[net->desc->output].data, (size_t)(n * net->classes) * sizeof *host);
    const char *wrong = getenv("RN_FAKE_CUDA_WRONG");
    if (wrong && wrong[0] == '1') host[net->classes + 1] += 0.5f;
    return 0;
}

static int net_grad_clamp(rn_cuda_net *net, const int *idx, int n, float v, char *err,
                          size_t len)
{
    (void)err, (void)len;
    for (int t = 0; t < n; t++) {
        float *g = net->grad[idx[t]];
        int64_t k = numel(&net->params[idx[t]]);
        for (int64_t j = 0; j < k; j++) g[j] = rn_clamp_elem(g[j], v);
    }
    return 0;
}

static int net_grad_accumulate(rn_cuda_net *net, const int *idx, int n, float w, int first,
                               char *err, size_t len)
{
    for (int t = 0; t < n; t++) {
        int i = idx[t];
        int64_t k = numel(&net->params[i]);
        if (!net->acc[i] && !(net->acc[i] = malloc((size_t)k * sizeof(float) + 4))) {
            snprintf(err, len, "stand-in GPU: out of memory for the gradient sums");
            return -1;
        }
        for (int64_t j = 0; j < k; j++)
            net->acc[i][j] = rn_acc_elem(net->acc[i][j], net->grad[i][j], w, first);
    }
    return 0;
}

static int net_grad_mean(rn_cuda_net *net, const int *idx, int n, int64_t total, char *err,
                         size_t len)
{
    const float inv = 1.0f / (float)total;
    for (int t = 0; t < n; t++) {
        int i = idx[t];
        if (!net->acc[i]) {
            snprintf(err, len, "stand-in GPU: parameter %d was never accumulated", i);
            return -1;
        }
        int64_t k = numel(&net->params[i]);
        for (int64_t j = 0; j < k; j++) net->grad[i][j] = rn_scale_elem(net->acc[i][j], inv);
    }
    return 0;
}

static const rn_cuda_backend backend = {
    .struct_size = sizeof(rn_cuda_backend),
    .abi = RN_CUDA_BACKEND_ABI,
    .build = "CPU stand-in (tests/fake_cuda)",
    .probe = probe,
    .conv2d_output = conv2d_output,
    .maxpool2d_output = maxpool2d_output,
    .net_plan_shapes = plan_shapes,
    .net_create = net_create,
    .net_destroy = net_destroy,
    .host_alloc = host_alloc,
    .host_free = host_free,
    .net_forward = net_forward,
    .net_loss = net_loss,
    .net_backward = net_backward,
    .net_grad_sumsq = net_grad_sumsq,
    .net_grad_scale = net_grad_scale,
    .net_state_alloc = net_state_alloc,
    .net_step = net_step,
    .net_augment = net_augment,
    .net_download = net_download,
    .net_upload = net_upload,
    .net_put_batch = net_put_batch,
    .net_logits = net_logits,
    .net_grad_clamp = net_grad_clamp,
    .net_grad_accumulate = net_grad_accumulate,
    .net_grad_mean = net_grad_mean,
    .net_grad_unscale = net_grad_unscale,
};

__attribute__((visibility("default"))) const rn_cuda_backend *rn_cuda_backend_entry(void)
{
    return &backend;
}
