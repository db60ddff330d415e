/* Loading a state dict into a model's parameters by name (see safetensors.h). */
#include "safetensors.h"
#include "safetensors_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errorf.h"

/* How many names an error or report line lists before "(+N more)". */
#define ST_LIST_NAMES 4

/* --- loading a model's parameters ------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int shape_matches(const rn_st_tensor *t, const rn_shape *s)
{
    if (t->ndim != s->ndim)
        return 0;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != s->d[d])
            return 0;
    return 1;
}

enum { P_LOAD, P_MISSING, P_SHAPE };

/* "fc.weight [1000, 512] in the file, [10, 512] in the model" */
static void add_shape_pair(rn_st_line *b, const rn_st_tensor *t, const rn_param_ref *p)
{
    char s1[160], s2[160];
    rn_st_line_add(b, "%s %s in the file, %s in the model", p->name,
             rn_st_dims_str(t->shape, t->ndim, s1, sizeof s1),
             rn_st_dims_str(p->value->shape.d, p->value->shape.ndim, s2, sizeof s2));
}

/* ", a, b, c, d (+3 more)" style list of model parameters with status `which`. */
static void add_param_list(rn_st_line *b, const rn_param_ref *params, const int *status, int n,
                           int which, const rn_st_tensor *const *src)
{
    int shown = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (status[i] != which)
            continue;
        if (shown < ST_LIST_NAMES) {
            rn_st_line_add(b, shown ? ", " : "");
            if (which == P_SHAPE)
                add_shape_pair(b, src[i], &params[i]);
            else
                rn_st_line_add(b, "%s", params[i].name);
            shown++;
        }
        total++;
    }
    if (total > shown)
        rn_st_line_add(b, " (+%d more)", total - shown);
}

static void add_extra_list(rn_st_line *b, const rn_safetensors *st, const unsigned char *extra)
{
    int shown = 0, total = 0;
    for (int i = 0; i < rn_safetensors_count(st); i++) {
        if (!extra[i])
            continue;
        if (shown++ < ST_LIST_NAMES)
            rn_st_line_add(b, "%s%s", shown > 1 ? ", " : "", rn_safetensors_tensor(st, i)->name);
        total++;
    }
    if (total > ST_LIST_NAMES)
        rn_st_line_add(b, " (+%d more)", total - ST_LIST_NAMES);
}

int rn_safetensors_load_params(const char *path, rn_param_ref *params, int n, int strict,
                               char *report, size_t reportlen, char *err, size_t errlen)
{
    if (report && reportlen)
        report[0] = '\0';
    rn_safetensors *st;
    if (rn_safetensors_open(&st, path, err, errlen))
        return -1;
    int rc = -1;
    int *status = calloc((size_t)n + 1, sizeof *status);
    const rn_st_tensor **src = calloc((size_t)n + 1, sizeof *src);
    unsigned char *extra = calloc((size_t)rn_safetensors_count(st) + 1, 1);
    float *staging = NULL;
    if (!status || !src || !extra) {
        rn_errorf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    /* Match by name: a file tensor no parameter claims is extra, unless it is a batch-norm
     * counter the model does not keep. */
    for (int i = 0; i < rn_safetensors_count(st); i++)
        extra[i] = !ends_with(rn_safetensors_tensor(st, i)->name, ".num_batches_tracked");
    int n_load = 0, n_missing = 0, n_shape = 0, n_extra = 0;
    int64_t floats = 0;
    for (int i = 0; i < n; i++) {
        const rn_st_tensor *t = rn_safetensors_find(st, params[i].name);
        src[i] = t;
        if (!t) {
            status[i] = P_MISSING;
            n_missing++;
            continue;
        }
        extra[t - rn_safetensors_tensor(st, 0)] = 0; /* its index: tensor(i) is &tensors[i] */
        if (!shape_matches(t, &params[i].value->shape)) {
            status[i] = P_SHAPE;
            n_shape++;
            continue;
        }
        status[i] = P_LOAD;
        floats += t->numel;
        n_load++;
    }
    for (int i = 0; i < rn_safetensors_count(st); i++)
        n_extra += extra[i];

    rn_st_line e = {err, errlen, 0};
    if (strict && n_shape) {
        int first = 0;
        while (status[first] != P_SHAPE)
            first++;
        rn_st_line_add(&e, "%s: tensor \"%s\": shape ", path, params[first].name);
        char s1[160], s2[160];
        rn_st_line_add(&e, "%s in the file, %s in the model",
                 rn_st_dims_str(src[first]->shape, src[first]->ndim, s1, sizeof s1),
                 rn_st_dims_str(params[first].value->shape.d, params[first].value->shape.ndim, s2,
                          sizeof s2));
        if (n_shape > 1)
            rn_st_line_add(&e, " (%d tensors differ in shape)", n_shape);
        goto out;
    }
    if (strict && (n_missing || n_extra)) {
        rn_st_line_add(&e, "%s: strict load:", path);
        if (n_missing) {
            rn_st_line_add(&e, " %d model parameter%s not in the file: ", n_missing,
                     n_missing == 1 ? "" : "s");
            add_param_list(&e, params, status, n, P_MISSING, src);
        }
        if (n_extra) {
            rn_st_line_add(&e, "%s %d file tensor%s not in the model: ", n_missing ? ";" : "", n_extra,
                     n_extra == 1 ? "" : "s");
            add_extra_list(&e, st, extra);
        }
        goto out;
    }
    if (n_load == 0 && n > 0) {
        rn_st_line_add(&e, "%s: no tensor matches a model parameter by name and shape (model: \"%s\"",
                 path, params[0].name);
        /* Show a name worth comparing: not the batch-norm counter. */
        int k = 0;
        while (k < rn_safetensors_count(st) - 1 && !extra[k])
            k++;
        if (rn_safetensors_count(st))
            rn_st_line_add(&e, "; file: \"%s\"", rn_safetensors_tensor(st, k)->name);
        rn_st_line_add(&e, ")");
        goto out;
    }

    /* Read everything first, so a failure leaves the model as it was. */
    staging = rn_falloc(floats);
    if (!staging) {
        rn_errorf(err, errlen, "%s: out of memory for %" PRId64 " floats", path, floats);
        goto out;
    }
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (status[i] != P_LOAD)
            continue;
        if (rn_safetensors_read_f32(st, src[i]->name, staging + at,
                                    rn_tensor_numel(params[i].value), err, errlen))
            goto out;
        at += src[i]->numel;
    }
    at = 0;
    for (int i = 0; i < n; i++) {
        if (status[i] != P_LOAD)
            continue;
        memcpy(params[i].value->data, staging + at, (size_t)src[i]->numel * sizeof(float));
        at += src[i]->numel;
    }

    rn_st_line r = {report, reportlen, 0};
    rn_st_line_add(&r, "%s: loaded %d of %d model parameters", path, n_load, n);
    if (n_shape) {
        rn_st_line_add(&r, "; kept the model's for %d whose shape differs: ", n_shape);
        add_param_list(&r, params, status, n, P_SHAPE, src);
    }
    if (n_missing) {
        rn_st_line_add(&r, "; %d not in the file: ", n_missing);
        add_param_list(&r, params, status, n, P_MISSING, src);
    }
    if (n_extra) {
        rn_st_line_add(&r, "; ignored %d file tensor%s not in the model: ", n_extra,
                 n_extra == 1 ? "" : "s");
        add_extra_list(&r, st, extra);
    }
    rc = 0;
out:
    rn_ffree(staging);
    free(status);
    free(src);
    free(extra);
    rn_safetensors_close(st);
    return rc;
}
