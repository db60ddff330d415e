/* Recipe tree -> run plan, refusing unknown keys and wrong types with the key path. */
#include "plan.h"

#include "dataset.h"
#include "layer.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuses any field of t not in `known` (NULL-terminated), listing the known ones. */
static int check_keys(const rn_value *t, const char *what, const char *const *known, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        int ok = 0;
        for (const char *const *k = known; *k; k++) ok |= strcmp(*k, t->keys[i]) == 0;
        if (ok) continue;
        int off = snprintf(err, errlen, "%s: unknown %s key (known:", t->fields[i]->path, what);
        for (const char *const *k = known; *k && off > 0 && (size_t)off < errlen; k++)
            off += snprintf(err + off, errlen - (size_t)off, " %s", *k);
        if (off > 0 && (size_t)off < errlen) snprintf(err + off, errlen - (size_t)off, ")");
        return -1;
    }
    return 0;
}

static const rn_value *table_field(const rn_value *t, const char *key, int required,
                                   const char *what, int *bad, char *err, size_t errlen)
{
    const rn_value *v = rn_value_field(t, key);
    if (!v) {
        if (required) {
            snprintf(err, errlen, "%s%s%s: missing (expected %s)", t->path, t->path[0] ? "." : "",
                     key, what);
            *bad = 1;
        }
        return NULL;
    }
    if (v->type != RN_V_TABLE) {
        rn_value_expected(v, what, err, errlen);
        *bad = 1;
        return NULL;
    }
    return v;
}

static char *resolve_path(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir[0]) return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, p);
    return s;
}

static int split_build(rn_split_spec *s, const rn_value *t, const char *split, const char *dir,
                       char *err, size_t errlen)
{
    static const char *const known[] = {"format", "images", "labels", "archive", "limit",
                                        "classes", NULL};
    if (check_keys(t, "data split", known, err, errlen)) return -1;
    s->split = split;
    if (rn_get_string(t, "format", 0, "idx", &s->format, err, errlen)) return -1;
    if (rn_get_int(t, "limit", 0, 0, 0, INT64_MAX, &s->limit, err, errlen)) return -1;
    /* classes = { 5, 6, 7 }: the range against the data is checked when it is loaded */
    const rn_value *cl = rn_value_field(t, "classes");
    if (cl) {
        if (cl->type != RN_V_TABLE || cl->n_fields)
            return rn_value_expected(cl, "a list of class labels", err, errlen);
        if (!cl->n_items) {
            snprintf(err, errlen, "%s: expected a non-empty list of class labels, got an empty "
                     "table", cl->path);
            return -1;
        }
        for (size_t i = 0; i < cl->n_items; i++) {
            const rn_value *c = cl->items[i];
            if (c->type != RN_V_INT || c->i < 0 || c->i > INT32_MAX)
                return rn_value_expected(c, "a class label (an integer >= 0)", err, errlen);
            for (size_t j = 0; j < i; j++) {
                if (cl->items[j]->i != c->i) continue;
                snprintf(err, errlen, "%s: class %lld is listed twice (also [%zu])", c->path,
                         (long long)c->i, j + 1);
                return -1;
            }
        }
        s->classes = cl;
    }
    if (strcmp(s->format, "idx") == 0) {
        const char *images, *labels;
        if (rn_get_string(t, "images", 1, NULL, &images, err, errlen) ||
            rn_get_string(t, "labels", 1, NULL, &labels, err, errlen))
            return -1;
        s->images = resolve_path(dir, images);
        s->labels = resolve_path(dir, labels);
        return 0;
    }
    if (strcmp(s->format, "cifar10") == 0 || strcmp(s->format, "cifar100") == 0) {
        const char *archive;
        if (rn_get_string(t, "archive", 1, NULL, &archive, err, errlen)) return -1;
        s->archive = resolve_path(dir, archive);
        return 0;
    }
    snprintf(err, errlen, "%s.format: expected \"idx\", \"cifar10\" or \"cifar100\", got \"%s\"",
             t->path, s->format);
    return -1;
}

static int norm_list(const rn_value *t, const char *key, float *out, int *n, char *err,
                     size_t errlen)
{
    const rn_value *v = rn_value_field(t, key);
    if (!v) {
        snprintf(err, errlen, "%s.%s: missing (expected a list of numbers, one per channel)",
                 t->path, key);
        return -1;
    }
    if (v->type != RN_V_TABLE || v->n_fields || !v->n_items || v->n_items > RN_MAX_CHANNELS)
        return rn_value_expected(v, "a list of 1 to 4 numbers, one per channel", err, errlen);
    for (size_t i = 0; i < v->n_items; i++) {
        const rn_value *x = v->items[i];
        if (x->type != RN_V_INT && x->type != RN_V_NUMBER)
            return rn_value_expected(x, "a number", err, errlen);
        out[i] = (float)x->n;
    }
    *n = (int)v->n_items;
    return 0;
}

static int data_build(rn_data_spec *d, const rn_value *t, const char *dir, char *err,
                      size_t errlen)
{
    static const char *const known[] = {"train", "test", "val_split", "batch_size", "shuffle",
                                        "drop_last", "normalize", "augment", "workers",
                                        NULL};
    if (check_keys(t, "data", known, err, errlen)) return -1;
    int bad = 0;
    const rn_value *train = table_field(t, "train", 1, "a table {format, images, labels}", &bad,
                                        err, errlen);
    if (bad || split_build(&d->train, train, "train", dir, err, errlen)) return -1;
    const rn_value *test = table_field(t, "test", 0, "a table {format, images, labels}", &bad, err,
                                       errlen);
    if (bad) return -1;
    if (test) {
        if (split_build(&d->test, test, "test", dir, err, errlen)) return -1;
        d->has_test = 1;
    }
    if (rn_get_number(t, "val_split", 0, 0, 0, 0.9, &d->val_split, err, errlen)) return -1;
    if (rn_get_int(t, "batch_size", 0, 64, 1, 65536, &d->batch_size, err, errlen)) return -1;
    if (rn_get_bool(t, "shuffle", 0, 1, &d->shuffle, err, errlen)) return -1;
    if (rn_get_bool(t, "drop_last", 0, 0, &d->drop_last, err, errlen)) return -1;
    int64_t workers;
    if (rn_get_int(t, "workers", 0, 1, 1, RN_LOADER_MAX_WORKERS, &workers, err, errlen)) return -1;
    d->workers = (int)workers;
    const rn_value *norm = table_field(t, "normalize", 0, "a table {mean = {...}, std = {...}}",
                                       &bad, err, errlen);
    if (bad) return -1;
    if (norm) {
        static const char *const nknown[] = {"mean", "std", NULL};
        int nm, ns;
        if (check_keys(norm, "normalize", nknown, err, errlen)) return -1;
        if (norm_list(norm, "mean", d->mean, &nm, err, errlen)) return -1;
        if (norm_list(norm, "std", d->std, &ns, err, errlen)) return -1;
        if (nm != ns) {
            snprintf(err, errlen, "%s: mean has %d values but std has %d", norm->path, nm, ns);
            return -1;
        }
        for (int i = 0; i < ns; i++) {
            if (!(d->std[i] > 0)) {
                snprintf(err, errlen, "%s.std[%d]: expected a positive number, got %g", norm->path,
                         i + 1, d->std[i]);
                return -1;
            }
        }
        d->n_norm = nm;
    }
    const rn_value *aug = rn_value_field(t, "augment");
    if (aug && (aug->type != RN_V_TABLE || aug->n_fields))
        return rn_value_expected(aug, "a list of augment plugins", err, errlen);
    d->augment = aug;
    return 0;
}

/* lr = x | slice(lo, hi) | "lr_find.valley" */
static int stage_lr(rn_stage_spec *s, const rn_value *t, int seen_find, char *err, size_t errlen)
{
    const rn_value *v = rn_value_field(t, "lr");
    s->lr = s->lr_hi = NAN;
    s->lr_from = RN_LR_OWN;
    if (!v) return 0;
    if (v->type == RN_V_NUMBER || v->type == RN_V_INT) {
        if (rn_get_number(t, "lr", 0, NAN, 0, INFINITY, &s->lr, err, errlen)) return -1;
        s->lr_from = RN_LR_VALUE;
        return 0;
    }
    if (v->type == RN_V_STRING) {
        static const char *const found[] = {"valley", "steep", "minimum"};
        for (int i = 0; i < 3; i++) {
            if (strncmp(v->s, "lr_find.", 8) || strcmp(v->s + 8, found[i])) continue;
            if (!seen_find) {
                snprintf(err, errlen, "%s: \"%s\" needs an lr_find stage before this one (add "
                         "{ \"lr_find\" } to stages)", v->path, v->s);
                return -1;
            }
            s->lr_from = RN_LR_FOUND;
            s->lr_found = found[i];
            return 0;
        }
        snprintf(err, errlen, "%s: expected a number, slice(lo, hi) or one of \"lr_find.valley\", "
                 "\"lr_find.steep\", \"lr_find.minimum\", got \"%s\"", v->path, v->s);
        return -1;
    }
    if (v->type == RN_V_TABLE && v->n_items == 3 && !v->n_fields &&
        v->items[0]->type == RN_V_STRING && strcmp(v->items[0]->s, "slice") == 0) {
        const rn_value *lo = v->items[1], *hi = v->items[2];
        int num = (lo->type == RN_V_NUMBER || lo->type == RN_V_INT) &&
                  (hi->type == RN_V_NUMBER || hi->type == RN_V_INT);
        if (!num || !(lo->n > 0) || !(hi->n >= lo->n) || !isfinite(hi->n)) {
            snprintf(err, errlen, "%s: expected slice(lo, hi) with 0 < lo <= hi", v->path);
            return -1;
        }
        s->lr_from = RN_LR_SLICE;
        s->lr = lo->n;
        s->lr_hi = hi->n;
        return 0;
    }
    return rn_value_expected(v, "a number, slice(lo, hi) or \"lr_find.valley\"", err, errlen);
}

/* train = "all" | "pattern" | { "group or pattern", ... } */
static int stage_train(rn_stage_spec *s, const rn_value *t, char *err, size_t errlen)
{
    const rn_value *v = rn_value_field(t, "train");
    s->train = NULL;
    if (rn_get_bool(t, "train_bn", 0, 0, &s->train_bn, err, errlen)) return -1;
    if (!v || (v->type == RN_V_STRING && strcmp(v->s, "all") == 0)) return 0;
    int ok = v->type == RN_V_STRING ||
             (v->type == RN_V_TABLE && !v->n_fields && v->n_items > 0);
    for (size_t i = 0; ok && v->type == RN_V_TABLE && i < v->n_items; i++)
        ok = v->items[i]->type == RN_V_STRING;
    if (!ok)
        return rn_value_expected(v, "\"all\", a group name or parameter pattern, or a list of "
                                 "them", err, errlen);
    s->train = v;
    return 0;
}

static int find_build(rn_stage_spec *s, const rn_value *t, char *err, size_t errlen)
{
    static const char *const known[] = {"name", "start_lr", "end_lr", "steps", "mode",
                                        "stop_div", "div_factor", "beta", "repeats", "train",
                                        "train_bn", NULL};
    rn_lr_find_spec *f = &s->find;
    const char *mode, *name;
    if (check_keys(t, "lr_find", known, err, errlen) ||
        rn_get_string(t, "name", 0, "lr_find", &name, err, errlen) ||
        rn_get_number(t, "start_lr", 0, 1e-7, 1e-30, INFINITY, &f->start_lr, err, errlen) ||
        rn_get_number(t, "end_lr", 0, 10, 1e-30, INFINITY, &f->end_lr, err, errlen) ||
        rn_get_int(t, "steps", 0, 100, 2, 1000000, &f->steps, err, errlen) ||
        rn_get_string(t, "mode", 0, "exp", &mode, err, errlen) ||
        rn_get_bool(t, "stop_div", 0, 1, &f->stop_div, err, errlen) ||
        rn_get_number(t, "div_factor", 0, 4, 1, INFINITY, &f->div_factor, err, errlen) ||
        rn_get_number(t, "beta", 0, 0.98, 0, 0.9999, &f->beta, err, errlen) ||
        rn_get_int(t, "repeats", 0, 1, 1, 100, &f->repeats, err, errlen) ||
        stage_train(s, t, err, errlen))
        return -1;
    if (strcmp(mode, "exp") && strcmp(mode, "linear")) {
        snprintf(err, errlen, "%s.mode: expected \"exp\" or \"linear\", got \"%s\"", t->path, mode);
        return -1;
    }
    if (!(f->end_lr > f->start_lr)) {
        snprintf(err, errlen, "%s.end_lr: must be greater than start_lr (got start_lr = %g, "
                 "end_lr = %g)", t->path, f->start_lr, f->end_lr);
        return -1;
    }
    f->linear = strcmp(mode, "linear") == 0;
    int bad_name = !name[0];
    for (const char *c = name; *c; c++)
        bad_name |= !(isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.');
    if (bad_name) {
        snprintf(err, errlen, "%s.name: \"%s\" names the sweep's files (<name>.csv, "
                 "<name>.svg): use letters, digits, '_', '-' and '.'", t->path, name);
        return -1;
    }
    s->kind = RN_STAGE_LR_FIND;
    s->name = strdup(name);
    s->lr = s->lr_hi = NAN;
    return 0;
}

static int stage_build(rn_stage_spec *s, const rn_value *t, size_t index,
                       const rn_value *default_schedule, int seen_find, char *err, size_t errlen)
{
    static const char *const known[] = {"name", "epochs", "lr", "schedule", "train",
                                        "train_bn", "unfreeze_warmup_steps", NULL};
    if (t->type != RN_V_TABLE)
        return rn_value_expected(t, "a stage table {epochs = n, ...}", err, errlen);
    s->node = t;
    if (t->n_items) {
        const rn_value *kind = t->items[0];
        if (kind->type == RN_V_STRING && strcmp(kind->s, "lr_find") == 0) {
            if (t->n_items > 1)
                return rn_value_expected(t->items[1], "named settings only (e.g. steps = 100)",
                                         err, errlen);
            return find_build(s, t, err, errlen);
        }
        if (kind->type == RN_V_STRING)
            snprintf(err, errlen, "%s: unknown stage kind \"%s\" (available: lr_find; a training "
                     "stage is {epochs = n, ...} without a kind)", kind->path, kind->s);
        else
            rn_value_expected(kind, "the stage kind \"lr_find\" or named fields only", err,
                              errlen);
        return -1;
    }
    if (check_keys(t, "stage", known, err, errlen)) return -1;
    const char *name;
    char fallback[32];
    snprintf(fallback, sizeof fallback, "stage%zu", index + 1);
    if (rn_get_string(t, "name", 0, fallback, &name, err, errlen)) return -1;
    s->name = strdup(name);
    if (rn_get_int(t, "epochs", 1, 0, 1, 100000, &s->epochs, err, errlen) ||
        stage_lr(s, t, seen_find, err, errlen) || stage_train(s, t, err, errlen) ||
        rn_get_int(t, "unfreeze_warmup_steps", 0, 0, 0, 1 << 30, &s->unfreeze_warmup_steps, err,
                   errlen))
        return -1;
    const rn_value *sched = rn_value_field(t, "schedule");
    s->schedule = sched ? sched : default_schedule;
    return 0;
}

const char *rn_loss_name(rn_loss_kind k)
{
    return k == RN_LOSS_MULTI_MARGIN ? "multi_margin" : "cross_entropy";
}

/* loss = { "cross_entropy", label_smoothing = x } | { "multi_margin", margin = x, p = 1|2 } */
static int loss_build(rn_plan *p, const rn_value *loss, char *err, size_t errlen)
{
    p->loss = RN_LOSS_CROSS_ENTROPY;
    p->margin = 1.0;
    p->margin_p = 1;
    if (!loss) return 0;
    if (loss->type != RN_V_TABLE || loss->n_items != 1 || loss->items[0]->type != RN_V_STRING)
        return rn_value_expected(loss, "a loss table like {\"cross_entropy\"}", err, errlen);
    const char *id = loss->items[0]->s;
    if (strcmp(id, "cross_entropy") == 0) {
        static const char *const known[] = {"label_smoothing", NULL};
        return check_keys(loss, "loss", known, err, errlen) ||
               rn_get_number(loss, "label_smoothing", 0, 0, 0, 0.999, &p->label_smoothing, err,
                             errlen);
    }
    if (strcmp(id, "multi_margin") == 0) {
        static const char *const known[] = {"margin", "p", NULL};
        int64_t pw;
        p->loss = RN_LOSS_MULTI_MARGIN;
        if (check_keys(loss, "loss", known, err, errlen) ||
            rn_get_number(loss, "margin", 0, 1.0, 0, 1e6, &p->margin, err, errlen) ||
            rn_get_int(loss, "p", 0, 1, 1, 2, &pw, err, errlen))
            return -1;
        p->margin_p = (int)pw;
        return 0;
    }
    snprintf(err, errlen, "%s: unknown loss \"%s\" (available: cross_entropy, multi_margin)",
             loss->items[0]->path, id);
    return -1;
}

const char *rn_precision_name(rn_precision p)
{
    return p == RN_PRECISION_BF16 ? "bf16" : p == RN_PRECISION_FP16 ? "fp16" : "fp32";
}

int rn_plan_build(rn_plan *p, const rn_value *root, const char *recipe_path, char *err,
                  size_t errlen)
{
    static const char *const known[] = {"name", "description", "seed", "device", "data",
                                        "model", "loss", "optimizer", "schedule", "callbacks",
                                        "stages", "epochs", "groups", "weights", "accumulate",
                                        "clip_grad", "decay_bias_and_norm", "precision",
                                        "loss_scale", "conv_workspace_mib", NULL};
    memset(p, 0, sizeof *p);
    p->root = root;
    p->recipe_path = strdup(recipe_path);
    const char *slash = strrchr(recipe_path, '/');
    p->recipe_dir = slash ? strndup(recipe_path, (size_t)(slash - recipe_path)) : strdup(".");
    if (root->type != RN_V_TABLE)
        return rn_value_expected(root, "the recipe to return a table", err, errlen);
    if (check_keys(root, "recipe", known, err, errlen)) return -1;

    int64_t seed;
    if (rn_get_int(root, "seed", 0, 0, 0, INT64_MAX, &seed, err, errlen)) return -1;
    p->seed = (uint64_t)seed;
    if (rn_get_string(root, "device", 0, "auto", &p->device, err, errlen)) return -1;
    if (strcmp(p->device, "cpu") && strcmp(p->device, "auto") && strcmp(p->device, "cuda")) {
        snprintf(err, errlen, "device: expected \"cpu\", \"cuda\" or \"auto\", got \"%s\"",
                 p->device);
        return -1;
    }
    if (rn_get_int(root, "conv_workspace_mib", 0, RN_CONV2D_CPU_WORKSPACE_MIB, 0, 65536,
                   &p->conv_workspace_mib, err, errlen))
        return -1;
    const char *precision;
    if (rn_get_string(root, "precision", 0, "fp32", &precision, err, errlen)) return -1;
    p->precision = RN_PRECISION_FP32;
    while (strcmp(rn_precision_name(p->precision), precision) != 0)
        if (++p->precision > RN_PRECISION_FP16) {
            snprintf(err, errlen, "precision: expected \"fp32\", \"bf16\" or \"fp16\", got "
                     "\"%s\"", precision);
            return -1;
        }
    p->loss_scale_init = 65536.0;
    p->loss_scale_interval = 2000;
    int bad_scale = 0;
    const rn_value *ls = table_field(root, "loss_scale", 0,
                                     "a table { init = 65536, growth_interval = 2000 }",
                                     &bad_scale, err, errlen);
    if (bad_scale) return -1;
    if (ls) {
        static const char *const lknown[] = {"init", "growth_interval", NULL};
        if (p->precision != RN_PRECISION_FP16) {
            snprintf(err, errlen, "%s: loss scaling is for precision = \"fp16\" only, and this "
                     "recipe's precision is \"%s\"", ls->path, rn_precision_name(p->precision));
            return -1;
        }
        if (check_keys(ls, "loss_scale", lknown, err, errlen) ||
            rn_get_number(ls, "init", 0, 65536.0, 1.0, 3.0e38, &p->loss_scale_init, err,
                          errlen) ||
            rn_get_int(ls, "growth_interval", 0, 2000, 1, INT64_MAX, &p->loss_scale_interval,
                       err, errlen))
            return -1;
    }

    /* An LR sweep trains: say so before the generic "data.train: missing". */
    const rn_value *stage_list = rn_value_field(root, "stages");
    const rn_value *data_t = rn_value_field(root, "data");
    for (size_t i = 0; stage_list && stage_list->type == RN_V_TABLE && i < stage_list->n_items;
         i++) {
        const rn_value *st = stage_list->items[i];
        if (st->type == RN_V_TABLE && st->n_items && st->items[0]->type == RN_V_STRING &&
            strcmp(st->items[0]->s, "lr_find") == 0 &&
            (!data_t || data_t->type != RN_V_TABLE || !rn_value_field(data_t, "train"))) {
            snprintf(err, errlen, "%s: an lr_find stage trains on data.train, and this recipe "
                     "has no training data (data.train is missing)", st->path);
            return -1;
        }
    }
    int bad = 0;
    const rn_value *data = table_field(root, "data", 1, "a data table", &bad, err, errlen);
    if (bad || data_build(&p->data, data, p->recipe_dir, err, errlen)) return -1;
    p->model = table_field(root, "model", 1, "a model table (e.g. models.mnist_cnn{})", &bad, err,
                           errlen);
    if (bad) return -1;

    if (loss_build(p, rn_value_field(root, "loss"), err, errlen)) return -1;

    p->optimizer = rn_value_field(root, "optimizer");
    if (!p->optimizer) {
        snprintf(err, errlen, "optimizer: missing (expected e.g. {\"sgd\", lr = 0.05})");
        return -1;
    }
    p->schedule = rn_value_field(root, "schedule");
    p->groups = rn_value_field(root, "groups");
    if (rn_get_int(root, "accumulate", 0, 1, 1, 1 << 20, &p->accumulate, err, errlen) ||
        rn_get_bool(root, "decay_bias_and_norm", 0, 1, &p->decay_bias_and_norm, err, errlen))
        return -1;
    p->clip_norm = p->clip_value = NAN;
    int bad_clip = 0;
    const rn_value *clip = table_field(root, "clip_grad", 0,
                                       "a table { norm = x } or { value = x }", &bad_clip, err,
                                       errlen);
    if (bad_clip) return -1;
    if (clip) {
        static const char *const cknown[] = {"norm", "value", NULL};
        if (check_keys(clip, "clip_grad", cknown, err, errlen) ||
            rn_get_number(clip, "norm", 0, NAN, 1e-30, INFINITY, &p->clip_norm, err, errlen) ||
            rn_get_number(clip, "value", 0, NAN, 1e-30, INFINITY, &p->clip_value, err, errlen))
            return -1;
        if (isnan(p->clip_norm) == isnan(p->clip_value)) {
            snprintf(err, errlen, "%s: expected exactly one of norm (clip the global L2 norm) "
                     "and value (clip each gradient)", clip->path);
            return -1;
        }
    }
    int bad_weights = 0;
    const rn_value *weights = table_field(root, "weights", 0,
                                          "a table { file = \"x.safetensors\", strict = true }",
                                          &bad_weights, err, errlen);
    if (bad_weights) return -1;
    if (weights) {
        static const char *const wknown[] = {"file", "strict", NULL};
        const char *file;
        if (check_keys(weights, "weights", wknown, err, errlen) ||
            rn_get_string(weights, "file", 1, NULL, &file, err, errlen) ||
            rn_get_bool(weights, "strict", 0, 1, &p->weights_strict, err, errlen))
            return -1;
        p->weights = resolve_path(p->recipe_dir, file);
    }
    p->callbacks = rn_value_field(root, "callbacks");
    if (p->callbacks && (p->callbacks->type != RN_V_TABLE || p->callbacks->n_fields))
        return rn_value_expected(p->callbacks, "a list of callback plugins", err, errlen);

    const rn_value *stages = rn_value_field(root, "stages");
    const rn_value *epochs = rn_value_field(root, "epochs");
    if (stages && epochs) {
        snprintf(err, errlen, "epochs: give either epochs or stages, not both");
        return -1;
    }
    if (stages) {
        if (stages->type != RN_V_TABLE || stages->n_fields || !stages->n_items)
            return rn_value_expected(stages, "a non-empty list of stages", err, errlen);
        p->n_stages = (int)stages->n_items;
        p->stages = calloc(stages->n_items, sizeof *p->stages);
        int seen_find = 0;
        for (size_t i = 0; i < stages->n_items; i++) {
            if (stage_build(&p->stages[i], stages->items[i], i, p->schedule, seen_find, err,
                            errlen))
                return -1;
            seen_find |= p->stages[i].kind == RN_STAGE_LR_FIND;
        }
    } else {
        p->n_stages = 1;
        p->stages = calloc(1, sizeof *p->stages);
        p->stages[0].node = root;
        p->stages[0].name = strdup("fit");
        p->stages[0].lr = p->stages[0].lr_hi = NAN;
        p->stages[0].schedule = p->schedule;
        if (rn_get_int(root, "epochs", 1, 0, 1, 100000, &p->stages[0].epochs, err, errlen))
            return -1;
    }
    return 0;
}

void rn_plan_free(rn_plan *p)
{
    free(p->recipe_path);
    free(p->recipe_dir);
    free(p->data.train.images);
    free(p->data.train.labels);
    free(p->data.test.images);
    free(p->data.test.labels);
    free(p->weights);
    free(p->data.train.archive);
    free(p->data.test.archive);
    for (int i = 0; i < p->n_stages; i++) free(p->stages[i].name);
    free(p->stages);
    memset(p, 0, sizeof *p);
}
