/* The training loop's GPU side (see train_device.h). */
#include "train_device.h"

#include "../cuda/backend.h"
#include <runner/plugin.h>
#include "net.h"
#include "train.h"
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rn_dev_run {
    const rn_cuda_backend *b;
    rn_cuda_net *net;
    rn_net desc;
    int *trainable;   /* per model parameter: has a gradient and is not frozen */
    int *idx;         /* scratch, n_params model indices */
    float **state;    /* per model parameter: its optimizer state on the host, or NULL */
    int device_newer; /* the device changed since the last pull */
    /* The next training batch, taken from `pending_from` and already put on the device (and
     * augmented) while the current step ran; or that loader's end of epoch (pending_end). */
    rn_loader *pending_from;
    rn_loader_batch pending;
    int has_pending, pending_end;
    /* The batch being trained on, as rn_dev_next handed it out: a copy, since the prefetch
     * replaces `pending` and lets the loader refill the slot while the caller still reads it. */
    rn_loader_batch current;
};

/* The plan's precision is the backend's value (plan.h). */
_Static_assert((int)RN_PRECISION_FP32 == RN_CUDA_FP32 &&
                   (int)RN_PRECISION_BF16 == RN_CUDA_BF16 && (int)RN_PRECISION_FP16 == RN_CUDA_FP16,
               "rn_precision and the backend's precision values differ");

static void refresh_trainable(struct rn_dev_run *d, const rn_model *m)
{
    for (int i = 0; i < m->n_params; i++)
        d->trainable[i] = m->params[i].grad != NULL && !m->params[i].frozen;
}

/* The device network's eval-mode forward on a few samples must give the CPU model's logits
 * (within rounding: |gpu - cpu| <= tol max|cpu| + 1e-6), before a single step trains: a backend
 * that computes something else stops the run here, in one line, instead of training on garbage
 * (a misused cuDNN call gives errors of the logits' own size). tol is scripts/gpu_check's 1e-3
 * in fp32; in fp16 (host: fp32) and bf16 (host: oneDNN's bf16, which keeps convolution outputs
 * in fp32 where cuDNN rounds them) each layer adds a rounding of 2^-11 or 2^-8. Eval mode
 * changes no state on either side (running stats, dropout counters). */
#define PREFLIGHT_SAMPLES 2
static double preflight_tolerance(int precision)
{
    return precision == RN_CUDA_BF16 ? 5e-2 : precision == RN_CUDA_FP16 ? 1e-2 : 1e-3;
}

static int preflight(struct rn_dev_run *d, rn_model *m, int precision, char *err, size_t errlen)
{
    int64_t n = m->max_batch < PREFLIGHT_SAMPLES ? m->max_batch : PREFLIGHT_SAMPLES;
    int64_t per = rn_tensor_numel(&m->acts[0]) / m->max_batch;
    int64_t k = rn_tensor_numel(&m->acts[m->n_layers]) / m->max_batch;
    float *x = malloc((size_t)(n * per) * sizeof *x), *gpu = malloc((size_t)(n * k) * sizeof *gpu);
    int32_t labels[PREFLIGHT_SAMPLES] = {0};
    char why[400] = "";
    int rc = -1;
    if (!x || !gpu) {
        snprintf(err, errlen, "device cuda: out of memory for the first check");
        goto out;
    }
    for (int64_t i = 0; i < n * per; i++)
        x[i] = (float)(2 * rn_uniform(0x70726566ull /* "pref" */, (uint64_t)i) - 1);
    memcpy(m->acts[0].data, x, (size_t)(n * per) * sizeof *x);
    rn_tensor cpu;
    if (rn_model_forward(m, n, false, &cpu)) {
        snprintf(err, errlen, "device cuda: the first check's CPU forward: %s", m->err);
        goto out;
    }
    if (d->b->net_put_batch(d->net, x, labels, NULL, n, why, sizeof why) ||
        d->b->net_forward(d->net, n, 0, why, sizeof why) ||
        d->b->net_logits(d->net, gpu, n, why, sizeof why)) {
        snprintf(err, errlen, "device cuda: the first check's forward failed: %s", why);
        goto out;
    }
    double scale = 0, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n * k; i++) {
        double e = fabs((double)gpu[i] - cpu.data[i]);
        if (fabs(cpu.data[i]) > scale) scale = fabs(cpu.data[i]);
        if (!(e <= worst)) { /* NaN counts as the worst */
            worst = e;
            at = i;
        }
    }
    if (!(worst <= preflight_tolerance(precision) * scale + 1e-6)) {
        snprintf(err, errlen, "device cuda: the GPU's forward differs from the CPU's before "
                 "training (logit %lld: %.6g on the GPU, %.6g on the CPU; largest logit %.3g); "
                 "this build cannot be trusted on this GPU: train with device = \"cpu\" and "
                 "run scripts/gpu_check", (long long)at, (double)gpu[at], (double)cpu.data[at],
                 scale);
        goto out;
    }
    rc = 0;
out:
    free(x);
    free(gpu);
    return rc;
}

int rn_dev_open(rn_run *r, char *err, size_t errlen)
{
    if (r->device.kind != RN_DEVICE_KIND_CUDA || r->dev) return 0;
    const rn_cuda_backend *b = rn_device_backend();
    if (!b) {
        snprintf(err, errlen, "device cuda: the backend is not loaded");
        return -1;
    }
    struct rn_dev_run *d = calloc(1, sizeof *d);
    rn_model *m = &r->model;
    int n = m->n_params;
    if (!d || !(d->trainable = calloc((size_t)n + 1, sizeof *d->trainable)) ||
        !(d->idx = calloc((size_t)n + 1, sizeof *d->idx)) ||
        !(d->state = calloc((size_t)n + 1, sizeof *d->state))) {
        snprintf(err, errlen, "device cuda: out of memory");
        goto fail;
    }
    d->b = b;
    if (rn_net_describe(m, &d->desc, err, errlen) ||
        b->net_create(&d->net, &d->desc, m->params, n, m->max_batch,
                      (int)r->plan->precision, err, errlen))
        goto fail;
    for (int g = 0; g < r->opt.n; g++) {
        const rn_opt_group *og = &r->opt.v[g];
        const rn_optimizer_api *api = og->opt.plugin->api;
        size_t floats = api->state_floats(og->opt.self);
        for (size_t k = 0; floats && k < og->n_all; k++) {
            int i = og->model_index[k];
            d->state[i] = og->params[k].state;
            if (b->net_state_alloc(d->net, i, floats, err, errlen)) goto fail;
        }
    }
    /* a resumed run's optimizer state, and anything the host set after the net was built */
    if (b->net_upload(d->net, m->params, n, d->state, err, errlen) ||
        preflight(d, m, (int)r->plan->precision, err, errlen))
        goto fail;
    r->dev = d;
    return 0;
fail:
    if (d && d->net) b->net_destroy(d->net);
    if (d) {
        rn_net_free(&d->desc);
        free(d->trainable);
        free(d->idx);
        free(d->state);
    }
    free(d);
    return -1;
}

void rn_dev_close(rn_run *r)
{
    struct rn_dev_run *d = r->dev;
    if (!d) return;
    d->b->net_destroy(d->net);
    rn_net_free(&d->desc);
    free(d->trainable);
    free(d->idx);
    free(d->state);
    free(d);
    r->dev = NULL;
}

/* ---- augmentation plans ---------------------------------------------------------------------
 * b->aux holds, per augment plugin of the list, an rn_augment_op followed by its arrays for the
 * batch's rows (flip, shift, erase boxes, mix samples, crop boxes), each 16-byte aligned. */

static size_t align16(size_t x) { return (x + 15) / 16 * 16; }

static size_t plan_block(int64_t rows)
{
    size_t n = (size_t)rows;
    return align16(sizeof(rn_augment_op)) + align16(n) + align16(2 * n * sizeof(int32_t)) +
           align16(n * sizeof(rn_erase_box)) + align16(n * sizeof(rn_mix_sample)) +
           align16(4 * n * sizeof(int32_t));
}

/* Plugin i's op in a batch's aux block, its array pointers set. */
static rn_augment_op *plan_op(void *aux, int64_t rows, int i)
{
    char *at = (char *)aux + (size_t)i * plan_block(rows);
    rn_augment_op *op = (rn_augment_op *)at;
    size_t n = (size_t)rows;
    at += align16(sizeof *op);
    op->flip = (uint8_t *)at;
    at += align16(n);
    op->shift = (int32_t *)at;
    at += align16(2 * n * sizeof(int32_t));
    op->erase = (rn_erase_box *)at;
    at += align16(n * sizeof(rn_erase_box));
    op->mix = (rn_mix_sample *)at;
    at += align16(n * sizeof(rn_mix_sample));
    op->box = (int32_t *)at;
    return op;
}

size_t rn_dev_plan_bytes(const rn_run *r)
{
    return (size_t)r->n_augments * plan_block(r->plan->data.batch_size);
}

int rn_dev_plan_batch(rn_run *r, int list, rn_loader_batch *b, char *err, size_t errlen)
{
    rn_instance *aug = r->augments + (size_t)list * (size_t)r->n_augments;
    rn_batch batch = {
        .struct_size = sizeof batch, .x = NULL, .n = b->n, .c = r->train.c, .h = r->train.h,
        .w = r->train.w, .labels = b->labels, .soft_targets = NULL, .classes = r->n_classes,
        .sample_ids = b->ids, .epoch = b->epoch, .zero_value = r->zero_value,
        .normalized = r->plan->data.n_norm > 0,
    };
    for (int i = 0; i < r->n_augments; i++) {
        const rn_augment_api *api = aug[i].plugin->api;
        rn_augment_op *op = plan_op(b->aux, r->plan->data.batch_size, i);
        op->struct_size = sizeof *op;
        op->kind = RN_AUGMENT_OP_NONE;
        batch.seed = rn_instance_seed(&aug[i]);
        if (api->device_plan(aug[i].self, &batch, op) != RN_OK) {
            snprintf(err, errlen, "data.augment[%d]: %s", i + 1, rn_instance_error(&aug[i]));
            return -1;
        }
    }
    return 0;
}

/* Puts batch b on the device (the copy stream) and enqueues its augmentation plans. */
static int put(rn_run *r, const rn_loader_batch *b, char *why, size_t len)
{
    struct rn_dev_run *d = r->dev;
    const rn_cuda_backend *be = d->b;
    if (be->net_put_batch(d->net, b->x, b->labels, b->soft, b->n, why, len)) return -1;
    for (int i = 0; b->aux && i < r->n_augments; i++)
        if (be->net_augment(d->net, b->n, plan_op(b->aux, r->plan->data.batch_size, i),
                            r->zero_value, why, len)) {
            char what[400];
            snprintf(what, sizeof what, "data.augment[%d] on the device: %.340s", i + 1, why);
            snprintf(why, len, "%s", what);
            return -1;
        }
    return 0;
}

int rn_dev_next(rn_run *r, rn_loader *ld, rn_loader_batch **b, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    if (d->pending_from == ld && (d->has_pending || d->pending_end)) {
        int got = d->has_pending;
        d->has_pending = d->pending_end = 0;
        d->pending_from = NULL;
        d->current = d->pending;
        *b = &d->current;
        return got;
    }
    rn_loader_batch *nb;
    int rc = rn_loader_next(ld, &nb, err, errlen);
    if (rc != 1) return rc;
    d->current = *nb;
    *b = &d->current;
    char why[400];
    if (put(r, *b, why, sizeof why)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, why);
        return -1;
    }
    return 1;
}

void rn_dev_forget(rn_run *r, const rn_loader *ld)
{
    struct rn_dev_run *d = r->dev;
    if (d && d->pending_from == ld) {
        d->pending_from = NULL;
        d->has_pending = d->pending_end = 0;
    }
}

/* Takes the batch after the current one from ld and puts it on the device, so that its copy
 * runs while the current step's backward and update do. Called after the loss was read back:
 * the compute stream had then finished the forward, which waited for the current batch's copy,
 * so the loader may reuse that batch's pinned buffers. */
static int prefetch(rn_run *r, rn_loader *ld, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    rn_loader_batch *nb;
    int rc = rn_loader_next(ld, &nb, err, errlen);
    if (rc < 0) return -1;
    d->pending_from = ld;
    d->has_pending = rc == 1;
    d->pending_end = rc == 0;
    if (rc == 0) return 0;
    d->pending = *nb; /* the loader's slot stays ours until the next rn_loader_next */
    char why[400];
    if (put(r, &d->pending, why, sizeof why)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 2, why);
        return -1;
    }
    return 0;
}

int rn_dev_micro_batch(rn_run *r, rn_loader *ld, const rn_loader_batch *b, double *loss,
                       char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    const rn_cuda_backend *be = d->b;
    char why[400] = "";
    refresh_trainable(d, &r->model);
    d->device_newer = 1;
    const rn_plan *p = r->plan;
    rn_cuda_loss lf = {
        .kind = p->loss == RN_LOSS_MULTI_MARGIN ? RN_CUDA_LOSS_MULTI_MARGIN
                                                : RN_CUDA_LOSS_CROSS_ENTROPY,
        .soft = b->soft != NULL, .label_smoothing = p->label_smoothing, .margin = p->margin,
        .p = p->margin_p, .grad_scale = r->scaling ? r->scaler.scale : 1.0f,
    };
    if (be->net_forward(d->net, b->n, 1, why, sizeof why) ||
        be->net_loss(d->net, b->n, &lf, 1, loss, NULL, why, sizeof why)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, why);
        return -1;
    }
    if (!isfinite(*loss)) {
        snprintf(err, errlen, "step %ld: the loss is %g at lr %g; lower the lr (or check the "
                 "data)", (long)r->global_step + 1, *loss, r->opt.v[0].g.lr);
        return RN_STEP_NONFINITE;
    }
    if (be->net_backward(d->net, b->n, d->trainable, why, sizeof why)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, why);
        return -1;
    }
    /* The next batch's copy (and augmentation, queued behind the backward) runs while the
     * backward and the update do. b is rn_dev_next's copy: still valid after this. */
    return ld ? prefetch(r, ld, err, errlen) : 0;
}

/* The parameters rn_grads counts (grads.c's `active`), into d->idx; their number. */
static int active_params(struct rn_dev_run *d, const rn_run *r)
{
    int n = 0;
    for (int i = 0; i < r->model.n_params; i++)
        if (r->model.params[i].grad && (!r->grads.trainable || r->grads.trainable[i]))
            d->idx[n++] = i;
    return n;
}

int rn_dev_grad_norm(rn_run *r, double *norm, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    double sumsq = 0;
    int n = active_params(d, r);
    if (d->b->net_grad_sumsq(d->net, d->idx, n, &sumsq, err, errlen)) return -1;
    *norm = sqrt(sumsq);
    return 0;
}

int rn_dev_grad_clamp(rn_run *r, float v, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    int n = active_params(d, r);
    return d->b->net_grad_clamp(d->net, d->idx, n, v, err, errlen);
}

int rn_dev_grad_accumulate(rn_run *r, int64_t samples, int first, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    int n = active_params(d, r);
    return d->b->net_grad_accumulate(d->net, d->idx, n, (float)samples, first, err, errlen);
}

int rn_dev_grad_mean(rn_run *r, int64_t total, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    int n = active_params(d, r);
    return d->b->net_grad_mean(d->net, d->idx, n, total, err, errlen);
}

int rn_dev_grad_unscale(rn_run *r, float inv_scale, int *found_inf, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    int n = active_params(d, r);
    char why[400];
    if (d->b->net_grad_unscale(d->net, d->idx, n, inv_scale, found_inf, why, sizeof why)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, why);
        return -1;
    }
    return 0;
}

int rn_dev_grad_scale(rn_run *r, float s, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    int n = active_params(d, r);
    return d->b->net_grad_scale(d->net, d->idx, n, s, err, errlen);
}

int rn_dev_optimizer_step(rn_run *r, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    for (int gi = 0; gi < r->opt.n; gi++) {
        rn_opt_group *g = &r->opt.v[gi];
        if (!g->g.n_params) continue; /* frozen in this stage */
        const rn_optimizer_api *api = g->opt.plugin->api;
        rn_update u = {.struct_size = sizeof u};
        if (api->device_update(g->opt.self, &g->g, &u) != RN_OK) {
            snprintf(err, errlen, "optimizer (group %s): %s", g->name, rn_instance_error(&g->opt));
            return -1;
        }
        char why[400];
        if (d->b->net_step(d->net, g->active_index, (int)g->g.n_params, &u, why, sizeof why)) {
            snprintf(err, errlen, "optimizer (group %s): %s", g->name, why);
            return -1;
        }
        g->g.step++;
    }
    return 0;
}

int rn_dev_eval_batch(rn_run *r, const rn_loader_batch *b, rn_tensor *logits, char *err,
                      size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    char why[400];
    if (d->b->net_put_batch(d->net, b->x, b->labels, NULL, b->n, why, sizeof why) ||
        d->b->net_forward(d->net, b->n, 0, why, sizeof why) ||
        d->b->net_logits(d->net, logits->data, b->n, why, sizeof why)) {
        snprintf(err, errlen, "evaluation: %s", why);
        return -1;
    }
    return 0;
}

int rn_dev_pull(rn_run *r, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    if (!d || !d->device_newer) return 0;
    if (d->b->net_download(d->net, r->model.params, r->model.n_params, 0, d->state, err, errlen))
        return -1;
    d->device_newer = 0;
    return 0;
}

int rn_dev_push(rn_run *r, char *err, size_t errlen)
{
    struct rn_dev_run *d = r->dev;
    if (!d) return 0;
    return d->b->net_upload(d->net, r->model.params, r->model.n_params, d->state, err, errlen);
}

void rn_dev_loader_memory(const rn_run *r, rn_loader_config *c)
{
    if (!r->dev) return;
    c->host_alloc = r->dev->b->host_alloc;
    c->host_free = r->dev->b->host_free;
    /* the training and sweep loaders carry the augmentation plans (evaluation needs none: its
     * only plugins would be RN_AUGMENT_EVAL ones, which have no device variant) */
    if (c->transform && !((const rn_augment_set *)c->transform_arg)->eval)
        c->aux_bytes = rn_dev_plan_bytes(r);
}
