/* data.val_split: per class the rounded share goes to validation, chosen by the seed; both sides
 * keep the source order and pixels; a split that leaves one side empty is refused. */
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
    return rn_test_report("test_split");
}
