#include "run_files.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "atomic_file.h"
#include "lr_find.h"
#include "sha256.h"

#ifndef RN_VERSION
#define RN_VERSION "0.0.0"
#endif
#ifndef RN_GIT_REVISION
#define RN_GIT_REVISION "unknown"
#endif

static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) { free(p); return -1; }
        *s = '/';
    }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

int rn_run_dir_create(const char *dir, char *err, size_t errlen)
{
    static const char *const marks[] = {"summary.json", "metrics.csv", "recipe.lua"};
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
        char *p = join(dir, marks[i]);
        int exists = p && access(p, F_OK) == 0;
        free(p);
        if (exists) {
            snprintf(err, errlen, "--out %s: already holds a run (%s); choose another directory",
                     dir, marks[i]);
            return -1;
        }
    }
    if (mkdir_p(dir)) {
        snprintf(err, errlen, "--out %s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int rn_write_resolved_recipe(const char *dir, const rn_value *root, char *err, size_t errlen)
{
    char *path = join(dir, "recipe.lua");
    rn_atomic_file a;
    int rc = rn_atomic_open(&a, path, err, errlen);
    if (rc == 0) {
        fputs("-- The recipe as this run used it (after --set overrides).\n", a.f);
        if (rn_value_write_lua(root, a.f)) {
            snprintf(err, errlen, "%s: cannot write", path);
            rn_atomic_abort(&a);
            rc = -1;
        } else {
            rc = rn_atomic_commit(&a, err, errlen);
        }
    }
    free(path);
    return rc;
}

static int write_json(const char *dir, const char *name, json_t *j, char *err, size_t errlen)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    char *path = join(dir, name);
    int rc = -1;
    if (text && path) {
        size_t n = strlen(text);
        text[n] = '\n'; /* over the NUL: the buffer is written by length */
        rc = rn_atomic_write(path, text, n + 1, err, errlen);
    } else {
        snprintf(err, errlen, "%s: cannot encode", name);
    }
    free(text);
    free(path);
    return rc;
}

static void add_plugin(json_t *arr, const rn_instance *inst, const char *role)
{
    char hex[65] = "";
    if (rn_sha256_file(inst->path, hex)) snprintf(hex, sizeof hex, "unreadable");
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "role", role, "id",
                                         inst->plugin->id, "version", inst->plugin->version,
                                         "file", inst->path, "sha256", hex));
}

int rn_write_provenance(const char *dir, const rn_run *r, const char *recipe_path,
                        const char *argv_line, const char *const *overrides, int n_overrides,
                        char *err, size_t errlen)
{
    char recipe_hash[65] = "", resolved_hash[65] = "";
    rn_sha256_file(recipe_path, recipe_hash);
    char *resolved = join(dir, "recipe.lua");
    rn_sha256_file(resolved, resolved_hash);
    free(resolved);

    json_t *plugins = json_array();
    for (int g = 0; g < r->opt.n; g++) {
        char role[160];
        snprintf(role, sizeof role, "optimizer (group %s)", r->opt.v[g].name);
        add_plugin(plugins, &r->opt.v[g].opt, role);
    }
    for (int s = 0; s < r->plan->n_stages; s++)
        for (int k = 0; k < r->schedules[s].n; k++)
            add_plugin(plugins, &r->schedules[s].phases[k].inst, "scheduler");
    for (int i = 0; i < r->n_augments; i++) add_plugin(plugins, &r->augments[i], "augment");
    for (int i = 0; i < r->n_callbacks; i++) add_plugin(plugins, &r->callbacks[i], "callback");

    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:o}",
                          "runner_version", RN_VERSION, "git_revision", RN_GIT_REVISION,
                          "command", argv_line, "recipe", recipe_path, "recipe_sha256",
                          recipe_hash, "seed", (json_int_t)r->plan->seed, "device",
                          r->device.name[0] ? r->device.name : "cpu",
                          "resolved_recipe_sha256", resolved_hash, "host", host, "plugins",
                          plugins);
    if (r->device.note[0]) json_object_set_new(j, "device_note", json_string(r->device.note));
    json_object_set_new(j, "precision", json_string(rn_precision_name(r->plan->precision)));
    /* which CPU convolutions run Winograd follows from it and the shapes */
    json_object_set_new(j, "conv_workspace_mib", json_integer(r->plan->conv_workspace_mib));
    char abs[PATH_MAX];
    json_object_set_new(j, "recipe_abs", json_string(realpath(recipe_path, abs) ? abs
                                                                                 : recipe_path));
    json_t *ov = json_array();
    for (int i = 0; i < n_overrides; i++) json_array_append_new(ov, json_string(overrides[i]));
    json_object_set_new(j, "overrides", ov);
    int rc = write_json(dir, "provenance.json", j, err, errlen);
    json_decref(j);
    return rc;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* Per-class precision, recall (= the class's accuracy), F1 and support from the last
 * evaluation's confusion matrix, the macro-F1 over classes that occur, and the matrix itself. */
static void add_classes(json_t *j, const rn_run *r)
{
    int64_t k = r->n_classes;
    const int64_t *c = r->confusion;
    json_t *classes = json_array(), *matrix = json_array();
    double f1_sum = 0;
    int64_t present = 0;
    for (int64_t t = 0; t < k; t++) {
        int64_t tp = c[t * k + t], support = 0, predicted = 0;
        json_t *row = json_array();
        for (int64_t p = 0; p < k; p++) {
            support += c[t * k + p];
            predicted += c[p * k + t];
            json_array_append_new(row, json_integer(c[t * k + p]));
        }
        json_array_append_new(matrix, row);
        double precision = predicted ? (double)tp / (double)predicted : 0.0;
        double recall = support ? (double)tp / (double)support : NAN;
        double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
        if (support) {
            f1_sum += f1;
            present++;
        }
        json_array_append_new(classes, json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "class",
                                                 (json_int_t)t, "support", (json_int_t)support,
                                                 "accuracy", num(recall), "precision",
                                                 num(precision), "recall", num(recall), "f1",
                                                 num(support ? f1 : NAN)));
    }
    json_object_set_new(j, "macro_f1", num(present ? f1_sum / (double)present : NAN));
    json_object_set_new(j, "per_class", classes);
    json_object_set_new(j, "confusion_matrix", matrix);
}

/* The last sweep: its suggestions (and their spread over the sweeps), how it ended. */
static json_t *lr_find_json(const rn_run *r)
{
    const rn_lr_find_result *res = r->lr_find;
    const rn_lr_find_spec *f = &r->plan->stages[res->stage].find;
    json_t *j = json_object(), *spread = json_object();
    for (int w = 0; w < RN_SUGGESTIONS; w++) {
        json_object_set_new(j, rn_suggestion_names[w], num(res->suggest[w]));
        json_object_set_new(spread, rn_suggestion_names[w],
                            json_pack("[o, o]", num(res->spread_lo[w]), num(res->spread_hi[w])));
    }
    json_object_set_new(j, "stage", json_string(r->plan->stages[res->stage].name));
    json_object_set_new(j, "start_lr", num(f->start_lr));
    json_object_set_new(j, "end_lr", num(f->end_lr));
    json_object_set_new(j, "steps", json_integer(f->steps));
    json_object_set_new(j, "points", json_integer(res->points));
    json_object_set_new(j, "stopped", json_string(res->stopped));
    json_object_set_new(j, "repeats", json_integer(res->repeats));
    if (res->repeats > 1) json_object_set_new(j, "spread", spread);
    else json_decref(spread);
    json_object_set_new(j, "seconds", num(res->seconds));
    return j;
}

int rn_write_summary(const char *dir, const rn_run *r, const char *status, const char *error,
                     char *err, size_t errlen)
{
    json_t *final = json_object();
    for (size_t i = 0; i < r->metrics.n; i++)
        json_object_set_new(final, r->metrics.names[i], num(r->metrics.values[i]));
    double ips = r->train_seconds > 0 ? (double)r->train_images / r->train_seconds : NAN;
    double tl = NAN, ta = NAN;
    rn_metrics_get(&r->metrics, "test.loss", &tl);
    rn_metrics_get(&r->metrics, "test.acc", &ta);
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string(status));
    if (error) json_object_set_new(j, "error", json_string(error));
    json_object_set_new(j, "test.acc", num(ta));
    json_object_set_new(j, "test.loss", num(tl));
    /* The epoch with the best val.acc (test.acc without a validation set), numbered as in
     * metrics.csv (0-based within its stage). */
    json_t *best = r->best_epoch < 0 ? json_null() :
                   json_pack("{s:o, s:o, s:s, s:I}", "test.acc", num(r->best_acc),
                             "test.loss", num(r->best_loss), "stage",
                             r->plan->stages[r->best_stage].name, "epoch",
                             (json_int_t)r->best_epoch);
    if (r->best_epoch >= 0 && r->val.n) {
        json_object_set_new(best, "val.acc", num(r->best_val_acc));
        json_object_set_new(best, "val.loss", num(r->best_val_loss));
    }
    json_object_set_new(j, "best", best);
    if (r->lr_find) json_object_set_new(j, "lr_find", lr_find_json(r));
    json_object_set_new(j, "epochs", json_integer(r->epochs_done));
    json_object_set_new(j, "steps", json_integer(r->global_step));
    /* fp16: the steps GradScaler skipped for an inf or NaN gradient, and the scale at the end */
    if (r->scaling)
        json_object_set_new(j, "grad_scaler", json_pack(
            "{s:I, s:o}", "skipped_steps", (json_int_t)r->scaler.skipped, "scale",
            num(r->scaler.scale)));
    json_object_set_new(j, "train_images", json_integer(r->train_images));
    json_object_set_new(j, "train_images_per_s", num(ips));
    json_object_set_new(j, "wall_time_s", num(r->wall_seconds));
    /* The training loader: time its workers spent making batches (augmentation alone under
     * augment_s), and time the training waited for one; per batch in milliseconds. */
    if (r->data.batches > 0) {
        double per = 1e3 / (double)r->data.batches;
        double per_taken = r->data.taken > 0 ? 1e3 / (double)r->data.taken : NAN;
        json_object_set_new(j, "data", json_pack(
            "{s:i, s:I, s:o, s:o, s:o}", "workers", r->plan->data.workers, "batches",
            (json_int_t)r->data.batches, "make_ms_per_batch", num(r->data.make_s * per),
            "augment_ms_per_batch", num(r->data.transform_s * per), "wait_ms_per_batch",
            num(r->data.wait_s * per_taken)));
    }
    json_object_set_new(j, "parameters", json_integer(r->model.layers ?
                                                      rn_model_param_count(&r->model) : 0));
    json_object_set_new(j, "final", final);
    if (r->plan->data.has_test && r->epochs_done > 0) add_classes(j, r);
    int rc = write_json(dir, "summary.json", j, err, errlen);
    json_decref(j);
    return rc;
}
