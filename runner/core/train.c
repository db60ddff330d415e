/* The training loop: one loop for every stage. Per step: batch (prefetched and augmented on the
 * loader thread) -> forward -> loss -> backward -> schedule -> optimizer step -> callbacks. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_build.h"
#include "model_print.h"
#include "param_groups.h"
#include "safetensors.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int load_split(rn_dataset *ds, const rn_split_spec *s, char *err, size_t errlen)
{
    int variant = strcmp(s->format, "cifar100") == 0 ? 100 : 10;
    int rc = strcmp(s->format, "idx") == 0
                 ? rn_idx_load(ds, s->images, s->labels, err, errlen)
                 : rn_cifar_load(ds, s->archive, s->split, variant, err, errlen);
    if (rc) return -1;
    if (s->limit && s->limit < ds->n) rn_dataset_truncate(ds, s->limit);
    return 0;
}

/* Makes one instance per item of a plugin list. */
static int make_list(rn_instance **out, int *n_out, const rn_value *list, rn_plugin_kind kind,
                     const rn_registry *reg, const rn_run_view *view, uint64_t slot0, char *err,
                     size_t errlen)
{
    *n_out = 0;
    *out = NULL;
    if (!list || !list->n_items) return 0;
    *out = calloc(list->n_items, sizeof **out);
    if (!*out) {
        snprintf(err, errlen, "%s: out of memory", list->path);
        return -1;
    }
    for (size_t i = 0; i < list->n_items; i++) {
        if (rn_instance_create(&(*out)[i], reg, kind, list->items[i], view, slot0 + i, err,
                               errlen))
            return -1;
        (*n_out)++;
    }
    return 0;
}

static int augment(rn_run *r, float *x, int64_t n, const int32_t *labels, const int64_t *ids,
                   int64_t epoch, char *err, size_t errlen);

/* The callbacks a recipe gets when it names none: a progress bar and metrics.csv. */
static rn_value *default_callbacks(void)
{
    rn_value *list = calloc(1, sizeof *list);
    list->type = RN_V_TABLE;
    list->path = strdup("callbacks");
    const char *ids[] = {"progress", "csv_logger"};
    list->n_items = 2;
    list->items = calloc(2, sizeof *list->items);
    for (int i = 0; i < 2; i++) {
        rn_value *v = calloc(1, sizeof *v);
        v->type = RN_V_STRING;
        v->s = strdup(ids[i]);
        v->path = rn_path_join_index("callbacks", (size_t)i + 1);
        list->items[i] = v;
    }
    return list;
}

int rn_run_prepare(rn_run *r, const rn_plan *plan, const rn_registry *reg, const char *run_dir,
                   int is_tty, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->plan = plan;
    r->best_acc = NAN;
    r->best_epoch = -1;
    r->view.run_dir = run_dir;
    r->view.seed = plan->seed;
    r->view.metrics = &r->metrics;
    r->view.is_tty = is_tty;

    if (strcmp(plan->device, "cuda") == 0) {
        snprintf(err, errlen, "device: \"cuda\" asked for, but this build has no CUDA backend; "
                 "use \"cpu\" or \"auto\"");
        return -1;
    }

    /* Plugins first: their settings are the most likely typos, and checking them costs nothing. */
    rn_instance probe; /* the optimizer's settings, checked now; its groups are made below */
    if (rn_instance_create(&probe, reg, RN_KIND_OPTIMIZER, plan->optimizer, &r->view, 0, err,
                           errlen))
        return -1;
    rn_instance_destroy(&probe);
    r->schedulers = calloc((size_t)plan->n_stages, sizeof *r->schedulers);
    for (int s = 0; s < plan->n_stages; s++) {
        static const rn_value constant = {.type = RN_V_STRING, .path = "schedule", .s = "constant"};
        const rn_value *spec = plan->stages[s].schedule ? plan->stages[s].schedule : &constant;
        if (rn_instance_create(&r->schedulers[s], reg, RN_KIND_SCHEDULER, spec, &r->view,
                               (uint64_t)s, err, errlen))
            return -1;
    }
    if (make_list(&r->augments, &r->n_augments, plan->data.augment, RN_KIND_AUGMENT, reg,
                  &r->view, 0, err, errlen))
        return -1;
    rn_value *defaults = plan->callbacks ? NULL : default_callbacks();
    int rc = make_list(&r->callbacks, &r->n_callbacks, plan->callbacks ? plan->callbacks : defaults,
                       RN_KIND_CALLBACK, reg, &r->view, 0, err, errlen);
    rn_value_free(defaults);
    if (rc) return -1;

    if (load_split(&r->train, &plan->data.train, err, errlen)) return -1;
    if (plan->data.has_test && load_split(&r->test, &plan->data.test, err, errlen)) return -1;
    if (plan->data.has_test && (r->test.c != r->train.c || r->test.h != r->train.h ||
                                r->test.w != r->train.w)) {
        snprintf(err, errlen, "data.test: images are %ldx%ldx%ld but data.train's are %ldx%ldx%ld",
                 (long)r->test.c, (long)r->test.h, (long)r->test.w, (long)r->train.c,
                 (long)r->train.h, (long)r->train.w);
        return -1;
    }
    if (plan->data.n_norm && plan->data.n_norm != r->train.c) {
        snprintf(err, errlen, "data.normalize.mean: %d values, but the images have %ld channel%s",
                 plan->data.n_norm, (long)r->train.c, r->train.c == 1 ? "" : "s");
        return -1;
    }

    int64_t in[3] = {r->train.c, r->train.h, r->train.w};
    if (rn_model_build(&r->model, plan->model, rn_shape_make(3, in), plan->data.batch_size,
                       plan->seed, err, errlen))
        return -1;
    if (rn_groups_check(plan->groups, &r->model, err, errlen)) return -1;
    const rn_tensor *logits = &r->model.acts[r->model.n_layers];
    r->n_classes = logits->shape.d[logits->shape.ndim - 1];
    r->confusion = calloc((size_t)(r->n_classes * r->n_classes), sizeof *r->confusion);
    if (!r->confusion) {
        snprintf(err, errlen, "model: out of memory for a %ld-class confusion matrix",
                 (long)r->n_classes);
        return -1;
    }
    int64_t classes = r->train.classes > r->test.classes ? r->train.classes : r->test.classes;
    if (logits->shape.ndim != 2 || logits->shape.d[1] < classes) {
        char buf[64];
        snprintf(err, errlen, "model: outputs %s per batch, but the data has %ld classes",
                 rn_shape_str(&logits->shape, buf, sizeof buf), (long)classes);
        return -1;
    }

    /* Starting weights (a pre-trained backbone): by name, after the shapes are known good. */
    if (plan->weights) {
        char report[512] = "", why[768];
        if (rn_safetensors_load_params(plan->weights, r->model.params, r->model.n_params,
                                       plan->weights_strict, report, sizeof report, why,
                                       sizeof why)) {
            snprintf(err, errlen, "weights.file: %s", why);
            return -1;
        }
        if (report[0]) printf("weights: %s\n", report);
    }

    if (rn_opt_groups_create(&r->opt, plan->optimizer, plan->groups, &r->model, reg, &r->view,
                             err, errlen) ||
        rn_grads_init(&r->grads, &r->model, plan->accumulate, err, errlen))
        return -1;

    /* What a raw 0 pixel becomes after normalization: the fill for padding augmentations. */
    for (int c = 0; c < RN_MAX_CHANNELS; c++)
        r->zero_value[c] = plan->data.n_norm ? -plan->data.mean[c] / plan->data.std[c] : 0.0f;

    /* Checks the loader and the augmentations would otherwise meet only on the loader thread,
     * after the run directory exists. */
    int64_t bs = plan->data.batch_size;
    if (plan->data.drop_last && r->train.n < bs) {
        snprintf(err, errlen, "data.batch_size: %ld with data.drop_last = true leaves no batch of "
                 "the %ld training samples", (long)bs, (long)r->train.n);
        return -1;
    }
    if (r->n_augments) {
        int64_t id = 0;
        float *x = calloc((size_t)(r->train.c * r->train.h * r->train.w), sizeof *x);
        if (!x) {
            snprintf(err, errlen, "data.augment: out of memory");
            return -1;
        }
        int bad = augment(r, x, 1, r->train.labels, &id, 0, err, errlen);
        free(x);
        if (bad) return -1;
    }

    /* Every metric exists from the start (NaN until measured), so loggers see all columns. */
    static const char *const names[] = {"train.loss", "lr", "grad_norm", "images_per_s",
                                        "test.loss", "test.acc", "time_s"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (plan->data.has_test || strncmp(names[i], "test.", 5) != 0)
            rn_metrics_set(&r->metrics, names[i], NAN);
    for (int g = 0; r->opt.n > 1 && g < r->opt.n; g++) {
        char name[160];
        snprintf(name, sizeof name, "lr.%s", r->opt.v[g].name);
        rn_metrics_set(&r->metrics, name, NAN);
    }
    return 0;
}

void rn_run_free(rn_run *r)
{
    for (int i = 0; i < r->n_callbacks; i++) rn_instance_destroy(&r->callbacks[i]);
    free(r->callbacks);
    for (int i = 0; i < r->n_augments; i++) rn_instance_destroy(&r->augments[i]);
    free(r->augments);
    if (r->schedulers)
        for (int s = 0; s < r->plan->n_stages; s++) rn_instance_destroy(&r->schedulers[s]);
    free(r->schedulers);
    rn_opt_groups_free(&r->opt);
    rn_grads_free(&r->grads);
    if (r->model.layers) rn_model_free(&r->model);
    rn_dataset_free(&r->train);
    rn_dataset_free(&r->test);
    rn_metrics_free(&r->metrics);
    free(r->confusion);
    memset(r, 0, sizeof *r);
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

static int augment(rn_run *r, float *x, int64_t n, const int32_t *labels, const int64_t *ids,
                   int64_t epoch, char *err, size_t errlen)
{
    rn_batch batch = {
        .struct_size = sizeof batch, .x = x, .n = n, .c = r->train.c, .h = r->train.h,
        .w = r->train.w, .labels = labels, .classes = r->train.classes,
        .sample_ids = ids, .epoch = epoch, .zero_value = r->zero_value,
    };
    for (int i = 0; i < r->n_augments; i++) {
        const rn_augment_api *api = r->augments[i].plugin->api;
        batch.seed = rn_instance_seed(&r->augments[i]);
        if (api->apply(r->augments[i].self, &batch) != RN_OK) {
            snprintf(err, errlen, "data.augment[%d]: %s", i + 1,
                     rn_instance_error(&r->augments[i]));
            return -1;
        }
    }
    return 0;
}

static int augment_batch(void *arg, rn_loader_batch *b, char *err, size_t errlen)
{
    return augment(arg, b->x, b->n, b->labels, b->ids, b->epoch, err, errlen);
}

/* Runs the schedule for this step and sets every group's lr and momentum from its base values
 * (a stage's lr replaces every group's base lr). */
static int schedule_step(rn_run *r, int stage, const rn_sched_at *at, char *err, size_t errlen)
{
    const rn_stage_spec *st = &r->plan->stages[stage];
    const rn_instance *s = &r->schedulers[stage];
    for (int i = 0; i < r->opt.n; i++) {
        rn_opt_group *g = &r->opt.v[i];
        rn_sched_values v = {.struct_size = sizeof v,
                             .base_lr = isnan(st->lr) ? g->base_lr : st->lr,
                             .base_momentum = g->base_momentum};
        v.lr = v.base_lr;
        v.momentum = v.base_momentum;
        if (((const rn_scheduler_api *)s->plugin->api)->values(s->self, at, &v) != RN_OK) {
            snprintf(err, errlen, "%s: %s", st->node == r->plan->root ? "schedule" : st->node->path,
                     rn_instance_error(s));
            return -1;
        }
        g->g.lr = v.lr;
        g->g.momentum = v.momentum;
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
