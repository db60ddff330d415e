/* Subsets of a data set (see dataset.h): a stratified, seeded validation split, and a filter
 * that keeps some classes and relabels them. */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <runner/plugin.h>

/* Copies the samples whose flag equals `want`, in their original order. */
static int take(rn_dataset *out, const rn_dataset *src, const unsigned char *is_val, int want,
                int64_t n)
{
    int64_t px = src->c * src->h * src->w, k = 0;
    *out = (rn_dataset){.n = n, .c = src->c, .h = src->h, .w = src->w, .classes = src->classes};
    out->pixels = malloc((size_t)(n * px) + 1);
    out->labels = malloc((size_t)n * sizeof *out->labels + 1);
    if (!out->pixels || !out->labels) return -1;
    for (int64_t i = 0; i < src->n; i++) {
        if (is_val[i] != want) continue;
        memcpy(out->pixels + k * px, src->pixels + i * px, (size_t)px);
        out->labels[k++] = src->labels[i];
    }
    return 0;
}

int rn_dataset_split(const rn_dataset *src, double fraction, uint64_t seed, rn_dataset *train,
                     rn_dataset *val, char *err, size_t errlen)
{
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    int64_t classes = src->classes > 0 ? src->classes : 1;
    int64_t *count = calloc((size_t)classes, sizeof *count);
    int64_t *order = malloc((size_t)src->n * sizeof *order + 1);
    unsigned char *is_val = calloc((size_t)src->n + 1, 1);
    int rc = -1;
    if (!count || !order || !is_val) goto out;
    for (int64_t i = 0; i < src->n; i++) count[src->labels[i]]++;
    /* Per class: a seeded shuffle of its samples; the first round(fraction * count) go to the
     * validation set, so every class keeps its share (at least one sample of a class that has
     * two or more). */
    int64_t n_val = 0;
    rn_shuffle_indices(order, src->n, seed, 0);
    for (int64_t c = 0; c < classes; c++) {
        int64_t want = (int64_t)llround(fraction * (double)count[c]);
        if (want == 0 && count[c] >= 2 && fraction > 0) want = 1;
        if (want >= count[c] && count[c] > 0) want = count[c] - 1;
        for (int64_t j = 0; j < src->n && want > 0; j++) {
            int64_t i = order[j];
            if (src->labels[i] != c) continue;
            is_val[i] = 1;
            want--;
            n_val++;
        }
    }
    if (n_val == 0 || n_val == src->n) {
        snprintf(err, errlen, "data.val_split: %g of %ld training samples leaves %s", fraction,
                 (long)src->n, n_val ? "nothing to train on" : "no validation sample");
        goto out;
    }
    if (take(train, src, is_val, 0, src->n - n_val) || take(val, src, is_val, 1, n_val)) {
        rn_dataset_free(train);
        rn_dataset_free(val);
        snprintf(err, errlen, "data.val_split: out of memory");
        goto out;
    }
    rc = 0;
out:
    if (rc && !err[0]) snprintf(err, errlen, "data.val_split: out of memory");
    free(count);
    free(order);
    free(is_val);
    return rc;
}

int rn_dataset_select_classes(rn_dataset *ds, const int32_t *classes, int n, char *err,
                              size_t errlen)
{
    if (n < 1) {
        snprintf(err, errlen, ": expected a non-empty list of class labels");
        return -1;
    }
    /* new_label[old] = place in the list, -1 for a class that is dropped */
    int64_t k = ds->classes > 0 ? ds->classes : 0;
    int32_t *new_label = malloc((size_t)k * sizeof *new_label + 1);
    if (!new_label) {
        snprintf(err, errlen, ": out of memory");
        return -1;
    }
    for (int64_t c = 0; c < k; c++) new_label[c] = -1;
    for (int i = 0; i < n; i++) {
        int32_t c = classes[i];
        if (c < 0 || c >= k) {
            snprintf(err, errlen, "[%d]: class %ld is out of range: the data has %ld classes "
                     "(0 to %ld)", i + 1, (long)c, (long)k, (long)k - 1);
            free(new_label);
            return -1;
        }
        if (new_label[c] >= 0) {
            snprintf(err, errlen, "[%d]: class %ld is listed twice (also [%d])", i + 1, (long)c,
                     new_label[c] + 1);
            free(new_label);
            return -1;
        }
        new_label[c] = i;
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < ds->n; i++) kept += new_label[ds->labels[i]] >= 0;
    if (kept == 0) {
        snprintf(err, errlen, ": none of the %ld samples has one of these classes", (long)ds->n);
        free(new_label);
        return -1;
    }
    /* Compact in place: sample j < i moves down over dropped ones, in order. */
    int64_t px = ds->c * ds->h * ds->w, j = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int32_t to = new_label[ds->labels[i]];
        if (to < 0) continue;
        if (j != i) memmove(ds->pixels + j * px, ds->pixels + i * px, (size_t)px);
        ds->labels[j++] = to;
    }
    free(new_label);
    /* Give the dropped samples' memory back (a failed shrink keeps the larger block). */
    uint8_t *pixels = realloc(ds->pixels, (size_t)(kept * px));
    int32_t *labels = realloc(ds->labels, (size_t)kept * sizeof *labels);
    if (pixels) ds->pixels = pixels;
    if (labels) ds->labels = labels;
    ds->n = kept;
    ds->classes = n;
    return 0;
}
