/* The training loop: one loop for every training stage. Per step: batch (prefetched and
 * augmented on the loader thread) -> forward -> loss -> backward -> schedule -> optimizer step ->
 * callbacks. LR-finder stages run in lr_find.c on the same step function. */
#include "train_internal.h"
#include "train_device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lr_find.h"

/* ---- callbacks ----------------------------------------------------------------------------- */

int rn_run_fire(rn_run *r, rn_event_kind kind, const rn_event *e, char *err, size_t errlen)
{
    int control = RN_CONTINUE, handled = 0;
    for (int i = 0; i < r->n_callbacks; i++) {
        const rn_callback_api *api = r->callbacks[i].plugin->api;
        int (*hook)(void *, const rn_event *) = NULL;
        switch (kind) {
        case RN_EV_RUN_BEGIN: hook = api->on_run_begin; break;
        case RN_EV_STAGE_BEGIN: hook = api->on_stage_begin; break;
        case RN_EV_STEP_END: hook = api->on_step_end; break;
        case RN_EV_EPOCH_END: hook = api->on_epoch_end; break;
        case RN_EV_EVAL_END: hook = api->on_eval_end; break;
        case RN_EV_STAGE_END: hook = api->on_stage_end; break;
        case RN_EV_RUN_END: hook = api->on_run_end; break;
        case RN_EV_NONFINITE: hook = rn_callback_hook(api, on_nonfinite); break;
        }
        if (!hook) continue;
        handled = 1;
        int rc = hook(r->callbacks[i].self, e);
        if (rc < 0) {
            /* After an error, on_run_end's own failure does not replace the first message. */
            if (err[0] == 0 || kind != RN_EV_RUN_END) {
                const char *msg = rn_instance_error(&r->callbacks[i]);
                if (strncmp(msg, "lua: ", 5) == 0) /* names callbacks[i].hook itself */
                    snprintf(err, errlen, "%s", msg + 5);
                else
                    snprintf(err, errlen, "callbacks[%d]: %s", i + 1, msg);
            }
            return -1;
        }
        if (rc > control) control = rc;
    }
    return kind == RN_EV_NONFINITE && !handled ? -2 : control;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static rn_tensor batch_view(const rn_tensor *t, int64_t n)
{
    rn_tensor v = *t;
    v.shape.d[0] = n;
    v.borrowed = 1;
    return v;
}

double rn_run_loss(const rn_run *r, const rn_tensor *logits, const int32_t *labels,
                   const float *soft, rn_tensor *dlogits, int64_t *correct)
{
    const rn_plan *p = r->plan;
    if (p->loss == RN_LOSS_MULTI_MARGIN) /* prepare refused soft targets for it */
        return rn_multi_margin(logits, labels, p->margin, p->margin_p, dlogits, correct);
    return rn_cross_entropy2(logits, labels, soft, p->label_smoothing, dlogits, correct);
}

void rn_run_loader_config(rn_loader_config *c, rn_run *r, const rn_dataset *ds,
                          rn_loader_role role)
{
    int train = role != RN_LOADER_EVAL;
    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->batch_size = r->plan->data.batch_size;
    c->shuffle = train && r->plan->data.shuffle;
    c->drop_last = train && r->plan->data.drop_last;
    c->seed = rn_mix64(r->plan->seed ^ 0x6c6f61646572ull);
    c->mean = r->plan->data.n_norm ? r->plan->data.mean : NULL;
    c->std = r->plan->data.n_norm ? r->plan->data.std : NULL;
    c->workers = train ? r->plan->data.workers : 1;
    if (train ? r->n_augments > 0 : r->eval_augments) {
        c->transform = rn_run_augment_batch;
        c->transform_arg = &r->augment_sets[role];
        c->soft_classes = train && r->soft_targets ? r->n_classes : 0;
    }
    rn_dev_loader_memory(r, c); /* a GPU run: pinned batches, room for augmentation plans */
}

int rn_run_evaluate(rn_run *r, const rn_dataset *ds, double *loss, double *acc, char *err,
                    size_t errlen)
{
    rn_loader_config cfg;
    rn_run_loader_config(&cfg, r, ds, RN_LOADER_EVAL);
    rn_loader *ld;
    if (rn_loader_open(&ld, &cfg, 0, err, errlen)) return -1;
    double total = 0;
    int64_t seen = 0, hits = 0, k = r->n_classes;
    int64_t *confusion = ds == &r->test ? r->confusion : NULL;
    rn_loader_batch *b;
    int rc;
    rn_model *m = &r->model;
    if (confusion) memset(confusion, 0, (size_t)(k * k) * sizeof *confusion);
    while ((rc = rn_loader_next(ld, &b, err, errlen)) == 1) {
        rn_tensor out;
        if (r->dev) { /* on the GPU; the logits come back into the host model's buffer */
            out = batch_view(&m->acts[m->n_layers], b->n);
            if (rn_dev_eval_batch(r, b, &out, err, errlen)) {
                rc = -1;
                break;
            }
        } else {
            memcpy(m->acts[0].data, b->x, (size_t)(b->n * ds->c * ds->h * ds->w) * sizeof(float));
            if (rn_model_forward(m, b->n, false, &out)) {
                snprintf(err, errlen, "evaluation: %s", m->err);
                rc = -1;
                break;
            }
        }
        int64_t correct = 0;
        total += rn_run_loss(r, &out, b->labels, NULL, NULL, &correct) * (double)b->n;
        hits += correct;
        seen += b->n;
        /* confusion[true][predicted], the argmax taking the first of equal logits */
        for (int64_t i = 0; confusion && i < b->n; i++) {
            const float *row = out.data + i * out.shape.d[1];
            int64_t best = 0;
            for (int64_t j = 1; j < k; j++)
                if (row[j] > row[best]) best = j;
            if (b->labels[i] >= 0 && b->labels[i] < k) confusion[b->labels[i] * k + best]++;
        }
    }
    rn_loader_close(ld);
    if (rc < 0) return -1;
    *loss = seen ? total / (double)seen : NAN;
    *acc = seen ? (double)hits / (double)seen : NAN;
    return 0;
}

/* ---- one step ------------------------------------------------------------------------------ */

/* The last sweep's suggestion of that name, NaN when there is none. */
static double found_lr(const rn_run *r, const char *name)
{
    for (int k = 0; r->lr_find && k < RN_SUGGESTIONS; k++)
        if (strcmp(rn_suggestion_names[k], name) == 0) return r->lr_find->suggest[k];
    return NAN;
}

/* A group's base lr in a stage: its own, the stage's, its share of a slice (fastai's even_mults
 * over the layer groups in model order), or the suggestion of the last sweep. */
static double stage_base_lr(const rn_run *r, int stage, int group)
{
    const rn_stage_spec *st = &r->plan->stages[stage];
    const rn_opt_group *g = &r->opt.v[group];
    switch (st->lr_from) {
    case RN_LR_VALUE:
        return st->lr;
    case RN_LR_SLICE:
        if (r->n_lr_ranks <= 1) return st->lr_hi;
        return st->lr * pow(st->lr_hi / st->lr, (double)r->lr_rank[group] /
                                                    (double)(r->n_lr_ranks - 1));
    case RN_LR_FOUND: {
        double lr = found_lr(r, st->lr_found);
        return isnan(lr) ? g->base_lr : lr; /* before the sweep (planning): the optimizer's own */
    }
    case RN_LR_OWN:
        break;
    }
    return g->base_lr;
}

int rn_run_group_values(const rn_run *r, int stage, int group, const rn_sched_at *at,
                        rn_sched_values *v, char *err, size_t errlen)
{
    const rn_opt_group *g = &r->opt.v[group];
    *v = (rn_sched_values){.struct_size = sizeof *v, .base_lr = stage_base_lr(r, stage, group),
                           .base_momentum = g->base_momentum};
    v->lr = v->base_lr;
    v->momentum = v->base_momentum;
    return rn_schedule_values(&r->schedules[stage], at, v, err, errlen);
}

static int schedule_step(rn_run *r, int stage, const rn_sched_at *at, char *err, size_t errlen)
{
    int64_t warm = r->plan->stages[stage].unfreeze_warmup_steps;
    for (int i = 0; i < r->opt.n; i++) {
        rn_sched_values v;
        if (rn_run_group_values(r, stage, i, at, &v, err, errlen)) return -1;
        /* A group that was frozen in the stage before ramps up linearly over its first steps. */
        double ramp = r->joined && r->joined[i] && at->step < warm
                          ? (double)(at->step + 1) / (double)warm : 1.0;
        r->opt.v[i].g.lr = v.lr * r->lr_scale * ramp;
        r->opt.v[i].g.momentum = v.momentum;
    }
    return 0;
}

/* Forward and backward of one micro-batch; its mean loss through *loss. Returns 0, -1 on error,
 * RN_STEP_NONFINITE (before the backward) when the loss is not finite. */
static int micro_batch(rn_run *r, rn_loader *ld, const rn_loader_batch *b, double *loss,
                       char *err, size_t errlen)
{
    if (r->dev) return rn_dev_micro_batch(r, ld, b, loss, err, errlen);
    rn_model *m = &r->model;
    memcpy(m->acts[0].data, b->x,
           (size_t)(b->n * r->train.c * r->train.h * r->train.w) * sizeof(float));
    rn_tensor out;
    if (rn_model_forward(m, b->n, true, &out)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, m->err);
        return -1;
    }
    rn_tensor dlogits = batch_view(&m->grads[m->n_layers], b->n);
    *loss = rn_run_loss(r, &out, b->labels, b->soft, &dlogits, NULL);
    if (!isfinite(*loss)) {
        snprintf(err, errlen, "step %ld: the loss is %g at lr %g; lower the lr (or check the "
                 "data)", (long)r->global_step + 1, *loss, r->opt.v[0].g.lr);
        return RN_STEP_NONFINITE;
    }
    if (rn_model_backward(m, b->n)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, m->err);
        return -1;
    }
    return 0;
}

/* The loader's next batch for the training loop. On a GPU, the batch taken ahead during the last
 * step (already on the device) comes first. */
static int take(rn_run *r, rn_loader *ld, rn_loader_batch **b, char *err, size_t errlen)
{
    return r->dev ? rn_dev_next(r, ld, b, err, errlen) : rn_loader_next(ld, b, err, errlen);
}

int rn_run_step(rn_run *r, rn_loader *ld, double *loss, int64_t *samples, int *epoch_end,
                char *err, size_t errlen)
{
    const rn_plan *p = r->plan;
    int64_t k = p->accumulate;
    double loss_sum = 0;
    int micro = 0, bad = 0, more = 1;
    rn_loader_batch *b;
    *samples = 0;
    *epoch_end = 0;
    while (micro < k && (more = take(r, ld, &b, err, errlen)) == 1) {
        micro++;
        if (bad) continue; /* keep the step's batches together: consume, do not compute */
        double l;
        int rc = micro_batch(r, ld, b, &l, err, errlen);
        if (rc < 0) return -1;
        if (rc == RN_STEP_NONFINITE) {
            bad = 1;
            *loss = l;
            continue;
        }
        if (k > 1 && !r->dev) rn_grads_accumulate(&r->grads, b->n, micro == 1);
        if (k > 1 && r->dev && rn_dev_grad_accumulate(r, b->n, micro == 1, err, errlen))
            return -1;
        loss_sum += l * (double)b->n;
        *samples += b->n;
    }
    if (more < 0) return -1;
    *epoch_end = more == 0;
    if (micro == 0) return RN_STEP_EPOCH_END;
    if (bad) return RN_STEP_NONFINITE;
    *loss = loss_sum / (double)*samples;
    /* Micro-batches combined (accumulate > 1), the norm logged, clipping, the update. */
    if (k > 1 && !r->dev) rn_grads_finish(&r->grads, *samples);
    if (k > 1 && r->dev && rn_dev_grad_mean(r, *samples, err, errlen)) return -1;
    if (r->scaling) {
        /* fp16: GradScaler.unscale_ then update. An overflow skips the step (no clipping, no
         * update, the optimizers' step counts stay) with the scale halved; the step still counts
         * for the schedule and the loss, as a skipped scaler.step() in PyTorch. */
        int found_inf;
        if (rn_dev_grad_unscale(r, rn_grad_scaler_inv_scale(&r->scaler), &found_inf, err,
                                errlen))
            return -1;
        int skip = rn_grad_scaler_update(&r->scaler, found_inf);
        rn_metrics_set(&r->metrics, "loss_scale", r->scaler.scale);
        if (skip) {
            rn_metrics_set(&r->metrics, "grad_norm", INFINITY);
            r->global_step++;
            return RN_STEP_DONE;
        }
    }
    double norm;
    if (!r->dev) norm = rn_grads_norm(&r->grads);
    else if (rn_dev_grad_norm(r, &norm, err, errlen)) return -1;
    rn_metrics_set(&r->metrics, "grad_norm", norm);
    if (!isfinite(norm)) {
        snprintf(err, errlen, "step %ld: the gradient norm is %g at lr %g; lower the lr or clip "
                 "gradients (clip_grad = { norm = 1 })", (long)r->global_step + 1, norm,
                 r->opt.v[0].g.lr);
        *loss = norm;
        return RN_STEP_NONFINITE;
    }
    if (!isnan(p->clip_norm)) {
        /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1 */
        double coef = p->clip_norm / (norm + 1e-6);
        if (coef < 1.0 && !r->dev) rn_grads_scale(&r->grads, (float)coef);
        if (coef < 1.0 && r->dev && rn_dev_grad_scale(r, (float)coef, err, errlen)) return -1;
    } else if (!isnan(p->clip_value)) {
        if (!r->dev) rn_grads_clamp(&r->grads, (float)p->clip_value);
        else if (rn_dev_grad_clamp(r, (float)p->clip_value, err, errlen)) return -1;
    }
    if (r->dev ? rn_dev_optimizer_step(r, err, errlen) : rn_opt_groups_step(&r->opt, err, errlen))
        return -1;
    r->global_step++;
    return RN_STEP_DONE;
}

int rn_run_enter_stage(rn_run *r, int stage, char *err, size_t errlen)
{
    const bool *mask = r->stage_trainable ? r->stage_trainable[stage] : NULL;
    if (rn_model_set_trainable(&r->model, mask,
                               r->stage_train_bn ? r->stage_train_bn[stage] : false, err, errlen))
        return -1;
    rn_opt_groups_set_trainable(&r->opt, mask);
    r->grads.trainable = mask;
    /* Which groups join now: more of their parameters train than in the last training stage
     * (an LR sweep in between does not count). */
    if (r->plan->stages[stage].kind != RN_STAGE_FIT) return 0;
    for (int g = 0; r->joined && g < r->opt.n; g++) {
        int64_t now = (int64_t)r->opt.v[g].g.n_params;
        r->joined[g] = r->fit_active[g] >= 0 && now > r->fit_active[g];
        r->fit_active[g] = now;
    }
    return 0;
}

/* ---- training stages ----------------------------------------------------------------------- */

static rn_event make_event(const rn_run *r, int stage, int64_t step, int64_t total, int64_t epoch,
                           int64_t spe, double loss, double ips, double t0)
{
    return (rn_event){
        .struct_size = sizeof(rn_event), .stage = r->plan->stages[stage].name,
        .stage_index = stage, .stage_count = r->plan->n_stages, .step = step,
        .total_steps = total, .epoch = epoch, .epochs = r->plan->stages[stage].epochs,
        .steps_per_epoch = spe, .global_step = r->global_step, .loss = loss, .lr = r->opt.v[0].g.lr,
        .images_per_s = ips, .elapsed_s = rn_now_s() - t0,
    };
}

static void set_step_metrics(rn_run *r, double mean_loss)
{
    rn_metrics_set(&r->metrics, "train.loss", mean_loss);
    rn_metrics_set(&r->metrics, "lr", r->opt.v[0].g.lr);
    for (int g = 0; r->opt.n > 1 && g < r->opt.n; g++) {
        char name[160];
        snprintf(name, sizeof name, "lr.%s", r->opt.v[g].name);
        rn_metrics_set(&r->metrics, name, r->opt.v[g].g.n_params ? r->opt.v[g].g.lr : 0);
    }
}

/* Validation and test passes after an epoch; the best epoch is the one with the best val.acc
 * (test.acc without a validation set). */
static int evaluate_epoch(rn_run *r, int s, int64_t ep, char *err, size_t errlen)
{
    double vl = NAN, va = NAN, tl = NAN, ta = NAN;
    if (r->val.n) {
        if (rn_run_evaluate(r, &r->val, &vl, &va, err, errlen)) return -1;
        rn_metrics_set(&r->metrics, "val.loss", vl);
        rn_metrics_set(&r->metrics, "val.acc", va);
    }
    if (r->plan->data.has_test) {
        if (rn_run_evaluate(r, &r->test, &tl, &ta, err, errlen)) return -1;
        rn_metrics_set(&r->metrics, "test.loss", tl);
        rn_metrics_set(&r->metrics, "test.acc", ta);
    }
    double key = r->val.n ? va : ta, best = r->val.n ? r->best_val_acc : r->best_acc;
    if (!isnan(key) && (isnan(best) || key > best)) {
        r->best_acc = ta;
        r->best_loss = tl;
        r->best_val_acc = va;
        r->best_val_loss = vl;
        r->best_stage = s;
        r->best_epoch = ep;
    }
    return 0;
}

/* One training stage, from r->pos (its start, or where a checkpoint left it). *stop_run is set
 * when a callback or Ctrl-C ends the run. */
static int fit_stage(rn_run *r, int s, rn_loader *ld, int64_t spe, volatile sig_atomic_t *stop,
                     double t0, int *stop_run, char *err, size_t errlen)
{
    rn_run_pos *pos = &r->pos;
    int64_t epochs = r->plan->stages[s].epochs, total = epochs * spe;
    if (!r->resuming) {
        rn_metrics_clear_history(&r->metrics); /* plateau schedules look at this stage only */
        *pos = (rn_run_pos){.stage = s, .loader_epoch = pos->loader_epoch};
    }
    r->resuming = 0;
    rn_event e = make_event(r, s, pos->step, total, pos->epoch, spe, NAN, 0, t0);
    int rc = rn_run_fire(r, RN_EV_STAGE_BEGIN, &e, err, errlen);
    if (rc < 0) return -1;
    int stop_stage = rc == RN_STOP_STAGE;
    *stop_run = rc == RN_STOP_RUN;
    for (; !stop_stage && !*stop_run && pos->epoch < epochs; pos->epoch++) {
        int64_t ep = pos->epoch;
        double ips = 0, te = rn_now_s(), train_time = 0;
        int64_t seen_now = 0; /* samples of this epoch trained in this process (throughput) */
        int got = RN_STEP_DONE, ended = 0;
        while (!ended && pos->epoch_steps < spe) {
            double ts = rn_now_s(), loss;
            int64_t samples;
            rn_sched_at at = {.struct_size = sizeof at, .step = pos->step, .total_steps = total,
                              .steps_per_epoch = spe, .epoch = ep};
            if (schedule_step(r, s, &at, err, errlen)) return -1;
            got = rn_run_step(r, ld, &loss, &samples, &ended, err, errlen);
            if (got < 0) return -1;
            if (got == RN_STEP_EPOCH_END) break;
            int c = RN_CONTINUE;
            e = make_event(r, s, pos->step + 1, total, ep, spe, loss, ips, t0);
            if (got == RN_STEP_NONFINITE) {
                /* A callback may handle it (roll back, lower the lr); otherwise it is an error. */
                char why[512];
                snprintf(why, sizeof why, "%s", err);
                err[0] = 0;
                c = rn_run_fire(r, RN_EV_NONFINITE, &e, err, errlen);
                if (c == -2) snprintf(err, errlen, "%s", why);
                if (c < 0) return -1;
            } else {
                pos->epoch_good++;
                pos->epoch_loss += loss;
                pos->epoch_samples += samples;
                seen_now += samples;
            }
            pos->step++;
            pos->epoch_steps++;
            train_time += rn_now_s() - ts;
            ips = (double)seen_now / (rn_now_s() - te);
            double mean = pos->epoch_good ? pos->epoch_loss / (double)pos->epoch_good : NAN;
            set_step_metrics(r, mean);
            if (got == RN_STEP_DONE) c = rn_run_fire(r, RN_EV_STEP_END, &e, err, errlen);
            if (c < 0) return -1;
            if (c == RN_STOP_STAGE) stop_stage = 1;
            if (c == RN_STOP_RUN) *stop_run = 1;
            if (stop && *stop) {
                r->interrupted = 1;
                *stop_run = 1;
            }
            if (stop_stage || *stop_run) break;
        }
        r->train_images += seen_now;
        r->train_seconds += train_time;
        if (pos->epoch_steps < spe) {
            /* Stopped mid-epoch: the epoch is not finished, so it is not counted, evaluated or
             * reported. A stopped run ends here (the position says where, for --resume); a
             * stopped stage drains the loader so the next stage starts at an epoch boundary. */
            if (*stop_run) break;
            rn_loader_batch *b;
            int more;
            while ((more = take(r, ld, &b, err, errlen)) == 1) {}
            if (more < 0) return -1;
            pos->loader_epoch++;
            break;
        }
        /* Stopped after the last batch: take the loader's end-of-epoch too. */
        if (!ended) {
            rn_loader_batch *b;
            int more = take(r, ld, &b, err, errlen);
            if (more != 0) {
                if (more > 0) snprintf(err, errlen, "loader: more batches than the epoch has");
                return -1;
            }
        }
        pos->loader_epoch++;
        r->epochs_done++;
        double mean = pos->epoch_good ? pos->epoch_loss / (double)pos->epoch_good : NAN;
        rn_metrics_set(&r->metrics, "images_per_s", seen_now / (rn_now_s() - te));
        /* A finished epoch is evaluated even when Ctrl-C came at its last step, so that the
         * metrics (which plateau schedules and callbacks read) are those of an unbroken run. */
        if (evaluate_epoch(r, s, ep, err, errlen)) return -1;
        if (r->val.n || r->plan->data.has_test) {
            e = make_event(r, s, pos->step, total, ep, spe, mean, ips, t0);
            if (rn_run_fire(r, RN_EV_EVAL_END, &e, err, errlen) < 0) return -1;
        }
        rn_metrics_set(&r->metrics, "time_s", rn_now_s() - t0);
        if (rn_metrics_end_epoch(&r->metrics)) {
            snprintf(err, errlen, "metrics: out of memory");
            return -1;
        }
        e = make_event(r, s, pos->step, total, ep, spe, mean, ips, t0);
        pos->epoch_steps = pos->epoch_good = pos->epoch_samples = 0;
        pos->epoch_loss = 0;
        int c = rn_run_fire(r, RN_EV_EPOCH_END, &e, err, errlen);
        if (c < 0) return -1;
        if (c == RN_STOP_STAGE) stop_stage = 1;
        if (c == RN_STOP_RUN) *stop_run = 1;
    }
    if (r->interrupted && pos->epoch < epochs) return 0; /* it goes on after --resume */
    e = make_event(r, s, pos->step, total, epochs - 1, spe, NAN, 0, t0);
    int c = rn_run_fire(r, RN_EV_STAGE_END, &e, err, errlen);
    if (c < 0) return -1;
    if (c == RN_STOP_RUN) *stop_run = 1;
    *pos = (rn_run_pos){.stage = s + 1, .loader_epoch = pos->loader_epoch};
    return 0;
}

int rn_run_evaluate_sets(rn_run *r, FILE *out, char *err, size_t errlen)
{
    if (!r->val.n && !r->plan->data.has_test) {
        snprintf(err, errlen, "data: nothing to evaluate (no data.test and no data.val_split)");
        return -1;
    }
    if (rn_dev_open(r, err, errlen)) return -1;
    const rn_dataset *sets[2] = {r->val.n ? &r->val : NULL,
                                 r->plan->data.has_test ? &r->test : NULL};
    const char *names[2] = {"val", "test"};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        if (!sets[i]) continue;
        double loss, acc, t0 = rn_now_s();
        rc = rn_run_evaluate(r, sets[i], &loss, &acc, err, errlen);
        double dt = rn_now_s() - t0;
        if (!rc)
            fprintf(out, "%s: loss %.6f acc %.4f (%ld images in %.3f s, %.0f images/s, %s)\n",
                    names[i], loss, acc, (long)sets[i]->n, dt, (double)sets[i]->n / dt,
                    r->device.name);
    }
    rn_dev_close(r);
    return rc;
}

int rn_run_train(rn_run *r, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    err[0] = 0;
    double t0 = rn_now_s();
    if (rn_dev_open(r, err, errlen)) return -1; /* a GPU run: the network on the device */
    rn_loader_config cfg;
    rn_run_loader_config(&cfg, r, &r->train, RN_LOADER_TRAIN);
    rn_loader *ld = NULL;
    int64_t k = r->plan->accumulate;
    if (!r->resuming) r->pos = (rn_run_pos){0};
    /* Resuming mid-epoch: the loader starts at the first micro-batch not yet trained on. */
    if (rn_loader_open_at(&ld, &cfg, r->pos.loader_epoch, r->pos.epoch_steps * k, err, errlen)) {
        rn_dev_close(r);
        return -1;
    }
    /* Optimizer steps per epoch: the last one may take fewer micro-batches. */
    int64_t spe = (rn_loader_batches(ld) + k - 1) / k; /* >= 1: prepare checked drop_last */

    rn_event e = make_event(r, 0, 0, 0, 0, spe, NAN, 0, t0);
    int rc = rn_run_fire(r, RN_EV_RUN_BEGIN, &e, err, errlen);
    int stop_run = rc == RN_STOP_RUN;
    for (int s = r->pos.stage; rc >= 0 && !stop_run && s < r->plan->n_stages; s++) {
        const rn_stage_spec *st = &r->plan->stages[s];
        if (rn_run_enter_stage(r, s, err, errlen)) {
            rc = -1;
            break;
        }
        if (st->kind == RN_STAGE_LR_FIND) {
            /* The sweep leaves no trace (weights, optimizer, data position), and callbacks do not
             * see it: it is not training. Interrupted, it runs again on --resume. */
            r->resuming = 0;
            r->pos = (rn_run_pos){.stage = s, .loader_epoch = r->pos.loader_epoch};
            rc = rn_lr_find_run(r, s, r->view.run_dir, stop, err, errlen);
            if (rc == 0 && stop && *stop) {
                r->interrupted = 1;
                stop_run = 1;
            } else if (rc == 0) {
                r->pos.stage = s + 1;
            }
            continue;
        }
        if (st->lr_from == RN_LR_FOUND) {
            double lr = found_lr(r, st->lr_found);
            if (!isfinite(lr)) {
                snprintf(err, errlen, "stages[%d].lr: the LR finder made no \"%s\" suggestion "
                         "(its curve has %ld points; give the sweep more steps or a wider lr "
                         "range)", s + 1, st->lr_found, r->lr_find ? (long)r->lr_find->n : 0L);
                rc = -1;
                break;
            }
            printf("stage %s: lr %.3g (lr_find.%s)\n", st->name, lr, st->lr_found);
        }
        rc = fit_stage(r, s, ld, spe, stop, t0, &stop_run, err, errlen);
    }
    r->data = rn_loader_stats_get(ld);
    rn_dev_forget(r, ld);
    rn_loader_close(ld);
    r->wall_seconds = rn_now_s() - t0;
    /* on_run_end runs after errors too, so loggers close their files. */
    /* The host model gets the device's weights before on_run_end and the files main writes. */
    char pull_err[400] = "";
    int pulled = rn_dev_pull(r, pull_err, sizeof pull_err);
    e = make_event(r, r->plan->n_stages - 1, 0, 0, 0, spe, NAN, 0, t0);
    int end = rn_run_fire(r, RN_EV_RUN_END, &e, err, errlen);
    rn_dev_close(r);
    if (pulled && rc >= 0 && end >= 0) snprintf(err, errlen, "%s", pull_err);
    return rc < 0 || end < 0 || pulled ? -1 : 0;
}
