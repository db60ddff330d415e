/* Setting a run up: plugins, data, model, optimizer groups, each checked before anything is
 * written; and tearing it down. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lr_find.h"
#include "lua_callback.h"
#include "model_build.h"
#include "train_device.h"
#include "param_groups.h"
#include "run_actions.h"
#include "stage_groups.h"
#include "safetensors.h"
#include "schedule_plan.h"

static int load_split(rn_dataset *ds, const rn_split_spec *s, char *err, size_t errlen)
{
    int variant = strcmp(s->format, "cifar100") == 0 ? 100 : 10;
    int rc = strcmp(s->format, "idx") == 0
                 ? rn_idx_load(ds, s->images, s->labels, err, errlen)
                 : rn_cifar_load(ds, s->archive, s->split, variant, err, errlen);
    if (rc) return -1;
    if (s->classes) {
        const rn_value *cl = s->classes;
        int32_t *list = malloc(cl->n_items * sizeof *list);
        char why[256] = "";
        if (!list) {
            snprintf(err, errlen, "%s: out of memory", cl->path);
            return -1;
        }
        for (size_t i = 0; i < cl->n_items; i++) list[i] = (int32_t)cl->items[i]->i;
        rc = rn_dataset_select_classes(ds, list, (int)cl->n_items, why, sizeof why);
        free(list);
        if (rc) {
            snprintf(err, errlen, "%s%s", cl->path, why);
            return -1;
        }
    }
    if (s->limit && s->limit < ds->n) rn_dataset_truncate(ds, s->limit);
    return 0;
}

/* Makes one instance per item of a plugin list. */
static int make_list(rn_instance **out, int *n_out, const rn_value *list, rn_plugin_kind kind,
                     const rn_plan *plan, const rn_registry *reg, const rn_run_view *view,
                     uint64_t slot0, char *err, size_t errlen)
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
        const rn_value *item = list->items[i];
        int bad = kind == RN_KIND_CALLBACK && rn_lua_callback_is_spec(item)
                      ? rn_instance_create_lua(&(*out)[i], plan->sandbox, item, view, slot0 + i,
                                               plan->recipe_path, err, errlen)
                      : rn_instance_create(&(*out)[i], reg, kind, item, view, slot0 + i, err,
                                           errlen);
        if (bad) return -1;
        (*n_out)++;
    }
    return 0;
}

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

/* A callback's "monitor" setting naming a val.*, test.* or train.* metric this run does not
 * measure (early_stopping, checkpoint and third-party ones alike) is refused now rather than after
 * the first epoch, when the run directory already exists. */
static int check_monitors(rn_run *r, char *err, size_t errlen)
{
    for (int i = 0; i < r->n_callbacks; i++) {
        const rn_instance *cb = &r->callbacks[i];
        const char *name = rn_instance_string(cb, "monitor");
        double v;
        /* Only the host's own families: a callback may add other metrics as the run goes. */
        int host_owned = name && (strncmp(name, "val.", 4) == 0 ||
                                  strncmp(name, "test.", 5) == 0 ||
                                  strncmp(name, "train.", 6) == 0);
        if (!host_owned || rn_metrics_get(&r->metrics, name, &v)) continue;
        char names[256] = "";
        size_t off = 0;
        for (size_t m = 0; m < r->metrics.n && off < sizeof names; m++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", m ? ", " : "",
                                    r->metrics.names[m]);
        snprintf(err, errlen, "callbacks[%d].monitor: %s watches \"%s\", which this run does "
                 "not measure (metrics: %s)%s", i + 1, cb->plugin->id, name, names,
                 strncmp(name, "val.", 4) == 0 ? "; set data.val_split for val.* metrics" : "");
        return -1;
    }
    return 0;
}

/* Per stage, what trains (a `train` list; the mask is checked now, so a pattern that matches
 * nothing is refused before the run starts), and the groups' places for slice(lo, hi). */
static int prepare_stages(rn_run *r, char *err, size_t errlen)
{
    const rn_plan *plan = r->plan;
    r->lr_rank = calloc((size_t)r->opt.n + 1, sizeof *r->lr_rank);
    r->joined = calloc((size_t)r->opt.n + 1, sizeof *r->joined);
    r->fit_active = malloc(((size_t)r->opt.n + 1) * sizeof *r->fit_active);
    for (int g = 0; r->fit_active && g < r->opt.n; g++) r->fit_active[g] = -1;
    r->stage_trainable = calloc((size_t)plan->n_stages, sizeof *r->stage_trainable);
    r->stage_train_bn = calloc((size_t)plan->n_stages, sizeof *r->stage_train_bn);
    if (!r->lr_rank || !r->joined || !r->fit_active || !r->stage_trainable ||
        !r->stage_train_bn || rn_lr_ranks(&r->opt, r->lr_rank, &r->n_lr_ranks)) {
        snprintf(err, errlen, "stages: out of memory");
        return -1;
    }
    for (int s = 0; s < plan->n_stages; s++) {
        const rn_stage_spec *st = &plan->stages[s];
        /* A sweep without its own `train` finds the lr for the training stage after it, so it
         * trains what that stage trains (fastai: lr_find runs in the learner's freeze state). */
        for (int n = s + 1; st->kind == RN_STAGE_LR_FIND && !st->train && !st->train_bn &&
                            n < plan->n_stages; n++)
            if (plan->stages[n].kind == RN_STAGE_FIT) {
                st = &plan->stages[n];
                break;
            }
        r->stage_train_bn[s] = st->train_bn != 0;
        if (!st->train && !st->train_bn) continue;
        r->stage_trainable[s] = calloc((size_t)r->model.n_params + 1, sizeof(bool));
        if (!r->stage_trainable[s]) {
            snprintf(err, errlen, "stages: out of memory");
            return -1;
        }
        if (!st->train) { /* train_bn alone: everything trains anyway */
            for (int i = 0; i < r->model.n_params; i++) r->stage_trainable[s][i] = true;
            continue;
        }
        if (rn_stage_mask(st->train, st->train_bn, &r->opt, &r->model, r->stage_trainable[s],
                          err, errlen))
            return -1;
    }
    return 0;
}

static unsigned augment_flags(const rn_instance *inst);

/* The augment list once per worker of the training loader, once per worker of the sweep loader
 * and once for evaluation: apply is never concurrent for one instance, and these loaders run at
 * the same time. The copies share their slot, so their seeds, and so their draws, are the same. */
static int make_augments(rn_run *r, const rn_registry *reg, char *err, size_t errlen)
{
    const rn_plan *plan = r->plan;
    int workers = plan->data.workers > 0 ? plan->data.workers : 1;
    int lists = 2 * workers + 1;
    size_t per = plan->data.augment ? plan->data.augment->n_items : 0;
    r->augments = NULL;
    r->n_augments = r->n_augment_lists = 0;
    r->augment_sets[RN_LOADER_EVAL] = (rn_augment_set){r, 2 * workers, 1};
    r->augment_sets[RN_LOADER_TRAIN] = (rn_augment_set){r, 0, 0};
    r->augment_sets[RN_LOADER_SWEEP] = (rn_augment_set){r, workers, 0};
    if (!per) return 0;
    r->augments = calloc((size_t)lists * per, sizeof *r->augments);
    if (!r->augments) {
        snprintf(err, errlen, "data.augment: out of memory");
        return -1;
    }
    r->n_augments = (int)per; /* before the lists: rn_run_free destroys the ones made */
    for (int k = 0; k < lists; k++) {
        rn_instance *list;
        int n;
        if (make_list(&list, &n, plan->data.augment, RN_KIND_AUGMENT, plan, reg, &r->view, 0,
                      err, errlen)) {
            for (int i = 0; i < n; i++) rn_instance_destroy(&list[i]);
            free(list);
            return -1;
        }
        memcpy(r->augments + (size_t)k * per, list, per * sizeof *list);
        free(list);
        r->n_augment_lists = k + 1;
    }
    for (size_t i = 0; i < per; i++)
        if (augment_flags(&r->augments[i]) & RN_AUGMENT_EVAL) r->eval_augments = 1;
    return 0;
}

static unsigned augment_flags(const rn_instance *inst)
{
    const rn_augment_api *api = inst->plugin->api;
    return api->struct_size >= offsetof(rn_augment_api, flags) + sizeof api->flags ? api->flags
                                                                                  : 0u;
}

/* An augment that mixes samples (CutMix, Mixup) writes soft targets: the training batches then
 * carry them, and the loss must take them. */
static int check_soft_targets(rn_run *r, char *err, size_t errlen)
{
    r->soft_targets = 0;
    for (int i = 0; i < r->n_augments; i++) {
        if (!(augment_flags(&r->augments[i]) & RN_AUGMENT_SOFT_TARGETS)) continue;
        if (r->plan->loss != RN_LOSS_CROSS_ENTROPY) {
            snprintf(err, errlen, "data.augment[%d]: %s mixes samples and writes soft targets, "
                     "but loss \"%s\" takes class indices only; use loss = { "
                     "\"cross_entropy\" }", i + 1, r->augments[i].plugin->id,
                     rn_loss_name(r->plan->loss));
            return -1;
        }
        r->soft_targets = 1;
    }
    return 0;
}

int rn_run_prepare(rn_run *r, const rn_plan *plan, const rn_registry *reg, const char *run_dir,
                   int is_tty, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->plan = plan;
    r->best_acc = r->best_loss = r->best_val_acc = r->best_val_loss = NAN;
    r->best_epoch = -1;
    r->lr_scale = 1;
    r->view.run_dir = run_dir;
    r->view.seed = plan->seed;
    r->view.metrics = &r->metrics;
    r->view.is_tty = is_tty;
    r->view.ops = rn_run_actions();
    r->view.run = r;
    r->view.device = plan->train_device;

    /* Plugins first: their settings are the most likely typos, and checking them costs nothing. */
    rn_instance probe; /* the optimizer's settings, checked now; its groups are made below */
    if (rn_instance_create(&probe, reg, RN_KIND_OPTIMIZER, plan->optimizer, &r->view, 0, err,
                           errlen))
        return -1;
    rn_instance_destroy(&probe);
    r->schedules = calloc((size_t)plan->n_stages, sizeof *r->schedules);
    for (int s = 0; s < plan->n_stages; s++)
        if (rn_schedule_create(&r->schedules[s], plan->stages[s].schedule, reg, &r->view,
                               (uint64_t)s, err, errlen))
            return -1;
    if (make_augments(r, reg, err, errlen)) return -1;
    rn_value *defaults = plan->callbacks ? NULL : default_callbacks();
    int rc = make_list(&r->callbacks, &r->n_callbacks, plan->callbacks ? plan->callbacks : defaults,
                       RN_KIND_CALLBACK, plan, reg, &r->view, 0, err, errlen);
    rn_value_free(defaults);
    if (rc) return -1;

    if (load_split(&r->train, &plan->data.train, err, errlen)) return -1;
    if (plan->data.val_split > 0) {
        rn_dataset all = r->train;
        int bad = rn_dataset_split(&all, plan->data.val_split,
                                   rn_mix64(plan->seed ^ 0x76616c5f73706c74ull), &r->train,
                                   &r->val, err, errlen);
        rn_dataset_free(&all);
        if (bad) return -1;
    }
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
    /* before the convolutions build their plans */
    rn_conv2d_set_cpu_workspace((size_t)plan->conv_workspace_mib << 20);
    if (rn_model_build(&r->model, plan->model, rn_shape_make(3, in), plan->data.batch_size,
                       plan->seed, err, errlen))
        return -1;
    if (rn_groups_check(plan->groups, &r->model, err, errlen)) return -1;
    /* on the CPU, oneDNN's bf16 kernels for the convolutions and linear layers (fp16 was
     * refused for the CPU before this) */
    if (plan->precision == RN_PRECISION_BF16) rn_model_set_bf16(&r->model, true);
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
            snprintf(err, errlen, "%s: %s", plan->weights_key ? plan->weights_key : "weights.file",
                     why);
            return -1;
        }
        if (report[0]) printf("weights: %s\n", report);
    }

    if (rn_opt_groups_create(&r->opt, plan->optimizer, plan->groups, plan->decay_bias_and_norm,
                             &r->model, reg, &r->view, err, errlen) ||
        rn_grads_init(&r->grads, &r->model, plan->accumulate, err, errlen))
        return -1;
    if (prepare_stages(r, err, errlen)) return -1;

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
        if (check_soft_targets(r, err, errlen)) return -1;
        int64_t id = 0;
        int32_t label = 0;
        float *x = calloc((size_t)(r->train.c * r->train.h * r->train.w), sizeof *x);
        float *soft = calloc((size_t)r->n_classes, sizeof *soft);
        if (!x || !soft) {
            free(x);
            free(soft);
            snprintf(err, errlen, "data.augment: out of memory");
            return -1;
        }
        soft[0] = 1.0f;
        int bad = 0;
        for (int k = 0; !bad && k < r->n_augment_lists; k++)
            bad = rn_run_augment(r, k, 0, x, 1, &label, r->soft_targets ? soft : NULL, &id, 0,
                                 err, errlen);
        free(x);
        free(soft);
        if (bad) return -1;
    }

    /* Every metric exists from the start (NaN until measured), so loggers see all columns. */
    static const char *const names[] = {"train.loss", "lr", "grad_norm", "images_per_s",
                                        "val.loss", "val.acc", "test.loss", "test.acc",
                                        "time_s"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if ((plan->data.has_test || strncmp(names[i], "test.", 5) != 0) &&
            (r->val.n || strncmp(names[i], "val.", 4) != 0))
            rn_metrics_set(&r->metrics, names[i], NAN);
    /* fp16 on the GPU: GradScaler with the recipe's loss_scale, its scale logged every step */
    r->scaling = plan->train_device == RN_DEVICE_CUDA && plan->precision == RN_PRECISION_FP16;
    rn_grad_scaler_init(&r->scaler);
    r->scaler.scale = (float)plan->loss_scale_init;
    r->scaler.growth_interval = plan->loss_scale_interval;
    if (r->scaling) rn_metrics_set(&r->metrics, "loss_scale", NAN);
    for (int g = 0; r->opt.n > 1 && g < r->opt.n; g++) {
        char name[160];
        snprintf(name, sizeof name, "lr.%s", r->opt.v[g].name);
        rn_metrics_set(&r->metrics, name, NAN);
    }
    if (check_monitors(r, err, errlen)) return -1;
    /* Every schedule evaluated once for every step, with the metrics known (a plateau schedule
     * refuses a monitor that is no metric): a scheduler that refuses its stage does so now. */
    return rn_schedule_plan(r, NULL, NULL, err, errlen);
}

void rn_run_free(rn_run *r)
{
    for (int i = 0; i < r->n_callbacks; i++) rn_instance_destroy(&r->callbacks[i]);
    free(r->callbacks);
    for (int i = 0; i < r->n_augments * r->n_augment_lists; i++)
        rn_instance_destroy(&r->augments[i]);
    free(r->augments);
    if (r->schedules)
        for (int s = 0; s < r->plan->n_stages; s++) rn_schedule_free(&r->schedules[s]);
    free(r->schedules);
    rn_opt_groups_free(&r->opt);
    rn_grads_free(&r->grads);
    if (r->model.layers) rn_model_free(&r->model);
    rn_dataset_free(&r->train);
    rn_dataset_free(&r->test);
    rn_dataset_free(&r->val);
    for (int s = 0; r->stage_trainable && s < r->plan->n_stages; s++) free(r->stage_trainable[s]);
    free(r->stage_trainable);
    free(r->stage_train_bn);
    free(r->lr_rank);
    free(r->joined);
    free(r->fit_active);
    rn_lr_find_free(r->lr_find);
    rn_metrics_free(&r->metrics);
    free(r->confusion);
    memset(r, 0, sizeof *r);
}

int rn_run_augment_batch(void *set, rn_loader_batch *b, char *err, size_t errlen)
{
    const rn_augment_set *s = set;
    if (b->aux) /* a GPU run: the plugins' device plans, applied on the device after the copy */
        return rn_dev_plan_batch(s->run, s->first + b->worker, b, err, errlen);
    return rn_run_augment(s->run, s->first + b->worker, s->eval, b->x, b->n, b->labels, b->soft,
                          b->ids, b->epoch, err, errlen);
}

int rn_run_augment(rn_run *r, int list, int eval_only, float *x, int64_t n,
                   const int32_t *labels, float *soft, const int64_t *ids, int64_t epoch,
                   char *err, size_t errlen)
{
    rn_instance *aug = r->augments + (size_t)list * (size_t)r->n_augments;
    rn_batch batch = {
        .struct_size = sizeof batch, .x = x, .n = n, .c = r->train.c, .h = r->train.h,
        .w = r->train.w, .labels = labels, .soft_targets = soft, .classes = r->n_classes,
        .sample_ids = ids, .epoch = epoch, .zero_value = r->zero_value,
        .normalized = r->plan->data.n_norm > 0,
    };
    for (int i = 0; i < r->n_augments; i++) {
        const rn_augment_api *api = aug[i].plugin->api;
        if (eval_only && !(augment_flags(&aug[i]) & RN_AUGMENT_EVAL)) continue;
        batch.seed = rn_instance_seed(&aug[i]);
        if (api->apply(aug[i].self, &batch) != RN_OK) {
            snprintf(err, errlen, "data.augment[%d]: %s", i + 1, rn_instance_error(&aug[i]));
            return -1;
        }
    }
    return 0;
}
