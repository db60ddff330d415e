/* The training loop: one loop for every stage. Per step: batch (prefetched and augmented on the
 * loader thread) -> forward -> loss -> backward -> schedule -> optimizer step -> callbacks. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- callbacks ----------------------------------------------------------------------------- */

typedef enum { EV_RUN_BEGIN, EV_STAGE_BEGIN, EV_STEP_END, EV_EPOCH_END, EV_EVAL_END,
               EV_STAGE_END, EV_RUN_END } rn_event_kind;

/* Calls one hook on every callback; returns the strongest stop request, or -1 on error. */
static int fire(rn_run *r, rn_event_kind kind, const rn_event *e, char *err, size_t errlen)
{
    int control = RN_CONTINUE;
    for (int i = 0; i < r->n_callbacks; i++) {
        const rn_callback_api *api = r->callbacks[i].plugin->api;
        int (*hook)(void *, const rn_event *) = NULL;
        switch (kind) {
        case EV_RUN_BEGIN: hook = api->on_run_begin; break;
        case EV_STAGE_BEGIN: hook = api->on_stage_begin; break;
        case EV_STEP_END: hook = api->on_step_end; break;
        case EV_EPOCH_END: hook = api->on_epoch_end; break;
        case EV_EVAL_END: hook = api->on_eval_end; break;
        case EV_STAGE_END: hook = api->on_stage_end; break;
        case EV_RUN_END: hook = api->on_run_end; break;
        }
        if (!hook) continue;
        int rc = hook(r->callbacks[i].self, e);
        if (rc < 0) {
            if (err[0] == 0 || kind != EV_RUN_END)
                snprintf(err, errlen, "callbacks: %s", rn_instance_error(&r->callbacks[i]));
            return -1;
        }
        if (rc > control) control = rc;
    }
    return control;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static rn_tensor batch_view(const rn_tensor *t, int64_t n)
{
    rn_tensor v = *t;
    v.shape.d[0] = n;
    v.borrowed = 1;
    return v;
}

static void loader_config(rn_loader_config *c, const rn_run *r, const rn_dataset *ds, int train)
{
    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->batch_size = r->plan->data.batch_size;
    c->shuffle = train && r->plan->data.shuffle;
    c->drop_last = train && r->plan->data.drop_last;
    c->seed = rn_mix64(r->plan->seed ^ 0x6c6f61646572ull);
    c->mean = r->plan->data.n_norm ? r->plan->data.mean : NULL;
    c->std = r->plan->data.n_norm ? r->plan->data.std : NULL;
}

int rn_run_evaluate(rn_run *r, double *loss, double *acc, char *err, size_t errlen)
{
    rn_loader_config cfg;
    loader_config(&cfg, r, &r->test, 0);
    rn_loader *ld;
    if (rn_loader_open(&ld, &cfg, 0, err, errlen)) return -1;
    double total = 0;
    int64_t seen = 0, hits = 0, k = r->n_classes;
    rn_loader_batch *b;
    int rc;
    rn_model *m = &r->model;
    memset(r->confusion, 0, (size_t)(k * k) * sizeof *r->confusion);
    while ((rc = rn_loader_next(ld, &b, err, errlen)) == 1) {
        memcpy(m->acts[0].data, b->x, (size_t)(b->n * r->test.c * r->test.h * r->test.w) *
               sizeof(float));
        rn_tensor out;
        if (rn_model_forward(m, b->n, false, &out)) {
            snprintf(err, errlen, "evaluation: %s", m->err);
            rc = -1;
            break;
        }
        int64_t correct = 0;
        total += rn_cross_entropy2(&out, b->labels, NULL, r->plan->label_smoothing, NULL,
                                   &correct) * (double)b->n;
        hits += correct;
        seen += b->n;
        /* confusion[true][predicted], the argmax taking the first of equal logits */
        for (int64_t i = 0; i < b->n; i++) {
            const float *row = out.data + i * out.shape.d[1];
            int64_t best = 0;
            for (int64_t j = 1; j < k; j++)
                if (row[j] > row[best]) best = j;
            if (b->labels[i] >= 0 && b->labels[i] < k) r->confusion[b->labels[i] * k + best]++;
        }
    }
    rn_loader_close(ld);
    if (rc < 0) return -1;
    *loss = seen ? total / (double)seen : NAN;
    *acc = seen ? (double)hits / (double)seen : NAN;
    return 0;
}

/* ---- training ------------------------------------------------------------------------------ */

static int augment_batch(void *arg, rn_loader_batch *b, char *err, size_t errlen)
{
    return rn_run_augment(arg, b->x, b->n, b->labels, b->ids, b->epoch, err, errlen);
}

/* Runs the schedule for this step and sets every group's lr and momentum from its base values
 * (a stage's lr replaces every group's base lr). */
int rn_run_group_values(const rn_run *r, int stage, int group, const rn_sched_at *at,
                        rn_sched_values *v, char *err, size_t errlen)
{
    const rn_stage_spec *st = &r->plan->stages[stage];
    const rn_opt_group *g = &r->opt.v[group];
    *v = (rn_sched_values){.struct_size = sizeof *v,
                           .base_lr = isnan(st->lr) ? g->base_lr : st->lr,
                           .base_momentum = g->base_momentum};
    v->lr = v->base_lr;
    v->momentum = v->base_momentum;
    return rn_schedule_values(&r->schedules[stage], at, v, err, errlen);
}

static int schedule_step(rn_run *r, int stage, const rn_sched_at *at, char *err, size_t errlen)
{
    for (int i = 0; i < r->opt.n; i++) {
        rn_sched_values v;
        if (rn_run_group_values(r, stage, i, at, &v, err, errlen)) return -1;
        r->opt.v[i].g.lr = v.lr;
        r->opt.v[i].g.momentum = v.momentum;
    }
    return 0;
}

static rn_event make_event(const rn_run *r, int stage, int64_t step, int64_t total, int64_t epoch,
                           int64_t spe, double loss, double ips, double t0)
{
    return (rn_event){
        .struct_size = sizeof(rn_event), .stage = r->plan->stages[stage].name,
        .stage_index = stage, .stage_count = r->plan->n_stages, .step = step,
        .total_steps = total, .epoch = epoch, .epochs = r->plan->stages[stage].epochs,
        .steps_per_epoch = spe, .global_step = r->global_step, .loss = loss, .lr = r->opt.v[0].g.lr,
        .images_per_s = ips, .elapsed_s = now_s() - t0,
    };
}

/* Forward and backward of one micro-batch; its mean loss through *loss. */
static int micro_batch(rn_run *r, const rn_loader_batch *b, double *loss, char *err,
                       size_t errlen)
{
    rn_model *m = &r->model;
    memcpy(m->acts[0].data, b->x,
           (size_t)(b->n * r->train.c * r->train.h * r->train.w) * sizeof(float));
    rn_tensor out;
    if (rn_model_forward(m, b->n, true, &out)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, m->err);
        return -1;
    }
    rn_tensor dlogits = batch_view(&m->grads[m->n_layers], b->n);
    *loss = rn_cross_entropy2(&out, b->labels, NULL, r->plan->label_smoothing, &dlogits, NULL);
    if (!isfinite(*loss)) {
        snprintf(err, errlen, "step %ld: the loss is %g at lr %g; lower the lr (or check the "
                 "data)", (long)r->global_step + 1, *loss, r->opt.v[0].g.lr);
        return -1;
    }
    if (rn_model_backward(m, b->n)) {
        snprintf(err, errlen, "step %ld: %s", (long)r->global_step + 1, m->err);
        return -1;
    }
    return 0;
}

/* The optimizer step after micro-batches of `samples` samples in all: their gradients combined
 * (accumulate > 1), the norm logged, clipping, then every group's update. */
static int optimizer_step(rn_run *r, int64_t samples, char *err, size_t errlen)
{
    const rn_plan *p = r->plan;
    if (p->accumulate > 1) rn_grads_finish(&r->grads, samples);
    double norm = rn_grads_norm(&r->grads);
    rn_metrics_set(&r->metrics, "grad_norm", norm);
    if (!isnan(p->clip_norm)) {
        /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1 */
        double coef = p->clip_norm / (norm + 1e-6);
        if (coef < 1.0) rn_grads_scale(&r->grads, (float)coef);
    } else if (!isnan(p->clip_value)) {
        rn_grads_clamp(&r->grads, (float)p->clip_value);
    }
    if (rn_opt_groups_step(&r->opt, err, errlen)) return -1;
    r->global_step++;
    return 0;
}

int rn_run_train(rn_run *r, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    err[0] = 0;
    double t0 = now_s();
    rn_loader_config cfg;
    loader_config(&cfg, r, &r->train, 1);
    cfg.transform = r->n_augments ? augment_batch : NULL;
    cfg.transform_arg = r;
    rn_loader *ld = NULL;
    if (rn_loader_open(&ld, &cfg, 0, err, errlen)) return -1;
    /* Optimizer steps per epoch: the last one may take fewer micro-batches. */
    int64_t k = r->plan->accumulate;
    int64_t spe = (rn_loader_batches(ld) + k - 1) / k; /* >= 1: prepare checked drop_last */

    rn_event e = make_event(r, 0, 0, 0, 0, spe, NAN, 0, t0);
    int rc = fire(r, EV_RUN_BEGIN, &e, err, errlen);
    int stop_run = rc == RN_STOP_RUN;
    for (int s = 0; rc >= 0 && !stop_run && s < r->plan->n_stages; s++) {
        int64_t epochs = r->plan->stages[s].epochs, total = epochs * spe, step = 0;
        rn_metrics_clear_history(&r->metrics); /* plateau schedules look at this stage only */
        e = make_event(r, s, 0, total, 0, spe, NAN, 0, t0);
        rc = fire(r, EV_STAGE_BEGIN, &e, err, errlen);
        int stop_stage = rc == RN_STOP_STAGE;
        stop_run = rc == RN_STOP_RUN;
        for (int64_t ep = 0; rc >= 0 && !stop_stage && !stop_run && ep < epochs; ep++) {
            double sum = 0, ips = 0, te = now_s(), train_time = 0;
            int64_t seen = 0, steps = 0;
            rn_loader_batch *b;
            int more;
            more = 1;
            while (more == 1) {
                /* One optimizer step: up to k micro-batches, fewer at the end of the epoch. */
                double ts = now_s(), loss_sum = 0;
                int64_t samples = 0;
                int micro = 0;
                while (micro < k && (more = rn_loader_next(ld, &b, err, errlen)) == 1) {
                    double loss;
                    if (micro_batch(r, b, &loss, err, errlen)) {
                        rc = -1;
                        break;
                    }
                    if (k > 1) rn_grads_accumulate(&r->grads, b->n, micro == 0);
                    loss_sum += loss * (double)b->n;
                    samples += b->n;
                    micro++;
                }
                if (rc < 0 || more < 0 || micro == 0) break;
                rn_sched_at at = {.struct_size = sizeof at, .step = step, .total_steps = total,
                                  .steps_per_epoch = spe, .epoch = ep};
                if (schedule_step(r, s, &at, err, errlen) ||
                    optimizer_step(r, samples, err, errlen)) {
                    rc = -1;
                    break;
                }
                double loss = loss_sum / (double)samples;
                step++;
                steps++;
                sum += loss;
                seen += samples;
                train_time += now_s() - ts;
                ips = (double)seen / (now_s() - te);
                rn_metrics_set(&r->metrics, "train.loss", sum / (double)steps);
                rn_metrics_set(&r->metrics, "lr", r->opt.v[0].g.lr);
                for (int g = 0; r->opt.n > 1 && g < r->opt.n; g++) {
                    char name[160];
                    snprintf(name, sizeof name, "lr.%s", r->opt.v[g].name);
                    rn_metrics_set(&r->metrics, name, r->opt.v[g].g.lr);
                }
                e = make_event(r, s, step, total, ep, spe, loss, ips, t0);
                int c = fire(r, EV_STEP_END, &e, err, errlen);
                if (c < 0) { rc = -1; break; }
                if (c == RN_STOP_STAGE) stop_stage = 1;
                if (c == RN_STOP_RUN) stop_run = 1;
                if (stop && *stop) {
                    r->interrupted = 1;
                    stop_run = 1;
                }
                if (stop_stage || stop_run) break;
            }
            if (more < 0) rc = -1;
            if (rc < 0) break;
            r->train_images += seen;
            r->train_seconds += train_time;
            if (steps < spe) {
                /* Stopped mid-epoch: the epoch is not finished, so it is not counted, evaluated
                 * or reported. A stopped run ends here; a stopped stage drains the loader so the
                 * next stage starts at an epoch boundary. */
                if (stop_run) break;
                while ((more = rn_loader_next(ld, &b, err, errlen)) == 1) {}
                if (more < 0) rc = -1;
                break;
            }
            /* Stopped after the last batch: take the loader's end-of-epoch too. */
            if (more == 1 && (more = rn_loader_next(ld, &b, err, errlen)) != 0) {
                if (more > 0) snprintf(err, errlen, "loader: more batches than the epoch has");
                rc = -1;
                break;
            }
            r->epochs_done++;
            rn_metrics_set(&r->metrics, "images_per_s", seen / (now_s() - te));
            if (r->plan->data.has_test && !r->interrupted) {
                double tl, ta;
                if (rn_run_evaluate(r, &tl, &ta, err, errlen)) { rc = -1; break; }
                rn_metrics_set(&r->metrics, "test.loss", tl);
                rn_metrics_set(&r->metrics, "test.acc", ta);
                if (isnan(r->best_acc) || ta > r->best_acc) {
                    r->best_acc = ta;
                    r->best_loss = tl;
                    r->best_stage = s;
                    r->best_epoch = ep;
                }
                e = make_event(r, s, step, total, ep, spe, sum / (double)(steps ? steps : 1), ips,
                               t0);
                int c = fire(r, EV_EVAL_END, &e, err, errlen);
                if (c < 0) { rc = -1; break; }
            }
            rn_metrics_set(&r->metrics, "time_s", now_s() - t0);
            if (rn_metrics_end_epoch(&r->metrics)) {
                snprintf(err, errlen, "metrics: out of memory");
                rc = -1;
                break;
            }
            e = make_event(r, s, step, total, ep, spe, sum / (double)(steps ? steps : 1), ips, t0);
            int c = fire(r, EV_EPOCH_END, &e, err, errlen);
            if (c < 0) { rc = -1; break; }
            if (c == RN_STOP_STAGE) stop_stage = 1;
            if (c == RN_STOP_RUN) stop_run = 1;
        }
        if (rc >= 0) {
            e = make_event(r, s, step, total, epochs - 1, spe, NAN, 0, t0);
            int c = fire(r, EV_STAGE_END, &e, err, errlen);
            if (c < 0) rc = -1;
            if (c == RN_STOP_RUN) stop_run = 1;
        }
    }
    rn_loader_close(ld);
    r->wall_seconds = now_s() - t0;
    /* on_run_end runs after errors too, so loggers close their files. */
    e = make_event(r, r->plan->n_stages - 1, 0, 0, 0, spe, NAN, 0, t0);
    int end = fire(r, EV_RUN_END, &e, err, errlen);
    return rc < 0 || end < 0 ? -1 : 0;
}
