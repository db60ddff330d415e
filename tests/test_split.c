/* data.val_split: per class the rounded share goes to validation, chosen by the seed; both sides
 * keep the source order and pixels; a split that leaves one side empty is refused.
 * data.<split>.classes: the listed classes keep their samples in order, relabeled by their place
 * in the list; an empty list, a class out of range or listed twice, or no sample left is refused
 * and leaves the data set as it was. */
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "rn_test.h"

/* n samples of 2x1x1 pixels: pixel 0 = sample index mod 256, pixel 1 = label; labels cycle
 * through `classes` with class c holding counts[c] samples. */
static rn_dataset make(const int64_t *counts, int classes)
{
    rn_dataset ds = {.c = 2, .h = 1, .w = 1, .classes = classes};
    for (int c = 0; c < classes; c++) ds.n += counts[c];
    ds.pixels = malloc((size_t)ds.n * 2);
    ds.labels = malloc((size_t)ds.n * sizeof *ds.labels);
    int64_t left[16], i = 0;
    memcpy(left, counts, (size_t)classes * sizeof *left);
    while (i < ds.n)
        for (int c = 0; c < classes && i < ds.n; c++) {
            if (!left[c]) continue;
            left[c]--;
            ds.labels[i] = c;
            ds.pixels[2 * i] = (uint8_t)i;
            ds.pixels[2 * i + 1] = (uint8_t)c;
            i++;
        }
    return ds;
}

static int64_t count_of(const rn_dataset *d, int c)
{
    int64_t k = 0;
    for (int64_t i = 0; i < d->n; i++) k += d->labels[i] == c;
    return k;
}

/* The class filter on 4 classes of 3, 4, 5, 6 samples (18 in all, labels interleaved). */
static void test_select_classes(void)
{
    const int64_t counts[4] = {3, 4, 5, 6};
    rn_dataset ds = make(counts, 4);
    char err[256] = "";
    const int32_t keep[2] = {3, 1};
    CHECK(rn_dataset_select_classes(&ds, keep, 2, err, sizeof err) == 0);
    /* 6 + 4 samples; class 3 becomes 0 and class 1 becomes 1 (the list's order, not the
     * labels'); pixel 1 still holds the original label, pixel 0 the original index. */
    CHECK(ds.n == 10 && ds.classes == 2 && ds.c == 2);
    CHECK(count_of(&ds, 0) == 6 && count_of(&ds, 1) == 4);
    int relabeled = 1, ordered = 1;
    for (int64_t i = 0; i < ds.n; i++) {
        relabeled &= ds.labels[i] == (ds.pixels[2 * i + 1] == 3 ? 0 : 1);
        relabeled &= ds.pixels[2 * i + 1] == 3 || ds.pixels[2 * i + 1] == 1;
        if (i) ordered &= ds.pixels[2 * i] > ds.pixels[2 * i - 2];
    }
    CHECK(relabeled && ordered);
    /* make() interleaves 0,1,2,3,0,1,2,3,...: the first kept samples are indices 1 and 3. */
    CHECK(ds.pixels[0] == 1 && ds.labels[0] == 1 && ds.pixels[2] == 3 && ds.labels[1] == 0);
    rn_dataset_free(&ds);

    /* Refusals: one line naming the place in the list, the data set untouched. */
    const int64_t gap[3] = {5, 0, 5};
    ds = make(gap, 3);
    int32_t labels0[10];
    memcpy(labels0, ds.labels, sizeof labels0);
    const int32_t out_of_range[2] = {0, 3}, negative[1] = {-1}, twice[3] = {2, 0, 2},
                  absent[1] = {1};
    struct { const int32_t *list; int n; const char *want; } bad[] = {
        {out_of_range, 0, ": expected a non-empty list of class labels"},
        {out_of_range, 2, "[2]: class 3 is out of range: the data has 3 classes (0 to 2)"},
        {negative, 1, "[1]: class -1 is out of range: the data has 3 classes (0 to 2)"},
        {twice, 3, "[3]: class 2 is listed twice (also [1])"},
        {absent, 1, ": none of the 10 samples has one of these classes"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        err[0] = 0;
        CHECK(rn_dataset_select_classes(&ds, bad[b].list, bad[b].n, err, sizeof err) != 0);
        CHECK(strcmp(err, bad[b].want) == 0);
        CHECK(ds.n == 10 && ds.classes == 3 && memcmp(ds.labels, labels0, sizeof labels0) == 0);
    }
    rn_dataset_free(&ds);
}

int main(void)
{
    const int64_t counts[3] = {100, 40, 7};
    rn_dataset src = make(counts, 3), tr, va;
    char err[256] = "";
    CHECK(rn_dataset_split(&src, 0.1, 42, &tr, &va, err, sizeof err) == 0);
    /* round(0.1 * count): 10, 4, 1 (0.7 rounds to 1) */
    CHECK(va.n == 15 && tr.n == src.n - 15);
    CHECK(count_of(&va, 0) == 10 && count_of(&va, 1) == 4 && count_of(&va, 2) == 1);
    CHECK(count_of(&tr, 0) == 90 && count_of(&tr, 1) == 36 && count_of(&tr, 2) == 6);
    CHECK(tr.classes == 3 && va.classes == 3 && tr.c == 2 && va.h == 1);
    /* Samples travel whole (pixels with their label) and keep the source order. */
    int ordered = 1, whole = 1;
    for (int64_t i = 0; i < va.n; i++) {
        whole &= va.pixels[2 * i + 1] == va.labels[i];
        if (i) ordered &= (uint8_t)(va.pixels[2 * i] - va.pixels[2 * i - 2]) < 128;
    }
    for (int64_t i = 0; i < tr.n; i++) whole &= tr.pixels[2 * i + 1] == tr.labels[i];
    CHECK(whole && ordered);
    /* The same seed picks the same samples; another seed others. */
    rn_dataset tr2, va2, tr3, va3;
    CHECK(rn_dataset_split(&src, 0.1, 42, &tr2, &va2, err, sizeof err) == 0);
    CHECK(rn_dataset_split(&src, 0.1, 43, &tr3, &va3, err, sizeof err) == 0);
    CHECK(va2.n == va.n && memcmp(va2.pixels, va.pixels, (size_t)va.n * 2) == 0);
    CHECK(va3.n == va.n && memcmp(va3.pixels, va.pixels, (size_t)va.n * 2) != 0);
    rn_dataset_free(&tr);
    rn_dataset_free(&va);
    rn_dataset_free(&tr2);
    rn_dataset_free(&va2);
    rn_dataset_free(&tr3);
    rn_dataset_free(&va3);
    rn_dataset_free(&src);

    /* One sample per class: nothing can go to validation. */
    const int64_t ones[2] = {1, 1};
    src = make(ones, 2);
    err[0] = 0;
    CHECK(rn_dataset_split(&src, 0.5, 1, &tr, &va, err, sizeof err) != 0);
    CHECK(strstr(err, "data.val_split: 0.5 of 2 training samples leaves no validation sample"));
    CHECK(tr.n == 0 && va.n == 0 && !tr.pixels && !va.pixels);
    rn_dataset_free(&src);

    test_select_classes();
    return rn_test_report("test_split");
}
