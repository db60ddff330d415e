/* random_erasing plugin against a direct reference (the same keyed coin, a re-implementation of
 * torchvision's RandomErasing.get_params fed the same rn_uniform draws, the box zeroed or filled
 * with Box-Muller normals), exactly, for value = "zero" and "random"; pixels outside the box are
 * untouched; a sample's output does not depend on its batch; over 4000 samples of 32x32 the erase
 * rate is p = 0.5 within 0.04 (5 binomial standard deviations is 0.0395; ten failed attempts are
 * rarer than 1e-9 here); the "random" fill over 40000+ pixels has mean 0 within 0.03 and standard
 * deviation 1 within 0.03; p = 0 and 1 erase none and all; bad settings are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"
#include "../kernels/augment_elem.h"

enum { C = 3, H = 16, W = 16 };

static double py_round(double v)
{
    double f = floor(v), d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1;
}

static const double SCALE[2] = {0.02, 0.33}, RATIO[2] = {0.3, 3.3};

/* torchvision RandomErasing.get_params: draws 1 + 4k..4 + 4k of attempt k; 0 when no box. */
static int get_params(uint64_t key, int img_h, int img_w, int out[4])
{
    double area = (double)img_h * img_w;
    double log_ratio[2] = {log(RATIO[0]), log(RATIO[1])};
    for (int k = 0; k < 10; k++) {
        uint64_t c = 1 + 4 * (uint64_t)k;
        double erase_area = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * rn_uniform(key, c));
        double aspect_ratio =
            exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * rn_uniform(key, c + 1));
        int h = (int)py_round(sqrt(erase_area * aspect_ratio));
        int w = (int)py_round(sqrt(erase_area / aspect_ratio));
        if (!(h < img_h && w < img_w)) continue;
        out[0] = (int)(rn_uniform(key, c + 2) * (img_h - h + 1));
        out[1] = (int)(rn_uniform(key, c + 3) * (img_w - w + 1));
        out[2] = h;
        out[3] = w;
        return 1;
    }
    return 0;
}

/* Normal t of the box: Box-Muller on uniforms 64 + 2*(t/2) and 65 + 2*(t/2). */
static float normal(uint64_t key, int t)
{
    double u1 = rn_uniform(key, 64 + 2 * (uint64_t)(t / 2)), u2 = rn_uniform(key, 65 + 2 * (uint64_t)(t / 2));
    double r = sqrt(-2.0 * log(1.0 - u1)), a = 2.0 * M_PI * u2;
    return (float)(r * (t % 2 ? sin(a) : cos(a)));
}

static float pixel(int64_t id, int c, int y, int x) { return 1.0f + (float)(id % 97) + 0.01f * (float)(c * 256 + y * 16 + x); }

static void fill(float *x, const int64_t *ids, int n, int h, int w)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) x[((i * C + c) * h + y) * w + xx] = pixel(ids[i], c, y % 16, xx % 16);
}

static rn_value *spec(double p, const char *value)
{
    return pt_str(pt_num(pt_spec("data.augment[4]", "random_erasing"), "p", p), "value", value);
}

/* Runs value mode `value` on 64 samples and compares with the reference; returns erased count. */
static int check_reference(const rn_registry *reg, const char *value, double *nsum, double *nsum2,
                           int *ncount)
{
    enum { N = 64 };
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(0.5, value), NULL);
    const rn_augment_api *api = inst.plugin->api;
    int random = strcmp(value, "random") == 0, erased = 0, outside_changed = 0;
    int64_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 11 * i + 3;
    static float x[N * C * H * W], ref[N * C * H * W];
    fill(x, ids, N, H, W);
    fill(ref, ids, N, H, W);
    rn_batch b = {sizeof b, x, N, C, H, W, NULL, NULL, 0, ids, 6, 31337, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    for (int i = 0; i < N; i++) {
        uint64_t key = rn_key3(31337, 6, (uint64_t)ids[i]);
        int box[4];
        if (!(rn_uniform(key, 0) < 0.5) || !get_params(key, H, W, box)) continue;
        erased++;
        int t = 0;
        for (int c = 0; c < C; c++)
            for (int y = box[0]; y < box[0] + box[2]; y++)
                for (int xx = box[1]; xx < box[1] + box[3]; xx++) {
                    float v = random ? normal(key, t++) : 0.0f;
                    ref[((i * C + c) * H + y) * W + xx] = v;
                    if (random) *nsum += v, *nsum2 += (double)v * v, (*ncount)++;
                }
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int inside = y >= box[0] && y < box[0] + box[2] && xx >= box[1] &&
                                 xx < box[1] + box[3];
                    if (!inside)
                        outside_changed += x[((i * C + c) * H + y) * W + xx] != pixel(ids[i], c, y, xx);
                }
    }
    CHECK(memcmp(x, ref, sizeof x) == 0);
    CHECK(outside_changed == 0);
    CHECK(erased > 0 && erased < N);
    printf("  value = %s: %d of %d samples erased, all equal to the reference, %d pixels changed "
           "outside the boxes\n", value, erased, N, outside_changed);

    /* Batch composition: ids[7] alone equals ids[7] inside the batch. */
    float one[C * H * W];
    fill(one, ids + 7, 1, H, W);
    rn_batch b1 = {sizeof b1, one, 1, C, H, W, NULL, NULL, 0, ids + 7, 6, 31337, NULL, 1};
    CHECK(api->apply(inst.self, &b1) == RN_OK);
    CHECK(memcmp(one, x + 7 * C * H * W, sizeof one) == 0);
    rn_instance_destroy(&inst);
    return erased;
}

/* Samples of 32x32 (value zero) in which some pixel became 0. */
static int erased_of(const rn_registry *reg, double p, int n, double *mean_area)
{
    enum { S = 32 };
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(p, "zero"), NULL);
    const rn_augment_api *api = inst.plugin->api;
    float *x = malloc((size_t)n * C * S * S * sizeof *x);
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = i;
    fill(x, ids, n, S, S);
    rn_batch b = {sizeof b, x, n, C, S, S, NULL, NULL, 0, ids, 0, 2024, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    int erased = 0;
    double area = 0.0;
    for (int i = 0; i < n; i++) {
        int zeros = 0;
        for (int k = 0; k < S * S; k++) zeros += x[(size_t)i * C * S * S + k] == 0.0f;
        erased += zeros > 0;
        area += (double)zeros / (S * S);
    }
    if (mean_area) *mean_area = erased ? area / erased : 0.0;
    free(x);
    free(ids);
    rn_instance_destroy(&inst);
    return erased;
}

int main(void)
{
    /* the fill a GPU kernel computes per pixel (kernels/augment_elem.h) is this test's normal */
    int same_noise = 1;
    for (uint64_t key = 1; key < 40; key++)
        for (int t = 0; t < 300; t++) same_noise &= rn_erase_normal(key * 7919, (uint64_t)t) ==
                                                    normal(key * 7919, t);
    CHECK(same_noise);
    rn_registry *reg = pt_registry();
    double nsum = 0.0, nsum2 = 0.0;
    int ncount = 0;
    check_reference(reg, "zero", &nsum, &nsum2, &ncount);
    check_reference(reg, "random", &nsum, &nsum2, &ncount);
    CHECK(ncount > 0);

    /* The normals on many more boxes (the reference's own draws, shown equal to the plugin's). */
    for (int s = 0; s < 4000; s++) {
        uint64_t key = rn_key3(8, 0, (uint64_t)s);
        int box[4];
        if (!get_params(key, H, W, box)) continue;
        for (int t = 0; t < C * box[2] * box[3]; t++) {
            double v = normal(key, t);
            nsum += v, nsum2 += v * v, ncount++;
        }
    }
    double nmean = nsum / ncount, nsd = sqrt(nsum2 / ncount - nmean * nmean);
    printf("  random fill: %d values, mean %.4f (bound 0 +- 0.03), sd %.4f (bound 1 +- 0.03)\n",
           ncount, nmean, nsd);
    CHECK(ncount > 40000);
    CHECK_NEAR(nmean, 0.0, 0.03, 0);
    CHECK_NEAR(nsd, 1.0, 0.03, 0);

    enum { DRAWS = 4000 };
    double area = 0.0;
    double rate = (double)erased_of(reg, 0.5, DRAWS, &area) / DRAWS;
    printf("  erase rate at p = 0.5 over %d samples of 32x32: %.4f (bound 0.5 +- 0.04); mean erased "
           "area fraction %.4f (inside [0.02, 0.33])\n", DRAWS, rate, area);
    CHECK_NEAR(rate, 0.5, 0.04, 0);
    CHECK(area >= SCALE[0] && area <= SCALE[1]);
    CHECK(erased_of(reg, 0.0, 500, NULL) == 0);
    CHECK(erased_of(reg, 1.0, 500, NULL) == 500);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(1.5, "zero"), err, sizeof err));
    printf("  p = 1.5: %s\n", err);
    CHECK(strstr(err, "data.augment[4].p") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(-0.5, "zero"), err, sizeof err));
    CHECK(strstr(err, "data.augment[4].p") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(0.5, "gray"), err, sizeof err));
    printf("  value = gray: %s\n", err);
    CHECK(strstr(err, "data.augment[4].value") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_num(pt_num(spec(0.5, "zero"), "scale_min", 0.4), "scale_max", 0.2), err,
                          sizeof err));
    printf("  scale_min > scale_max: %s\n", err);
    CHECK(strstr(err, "scale_min = 0.4") && strstr(err, "scale_max = 0.2"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_num(spec(0.5, "zero"), "ratio_min", 0), err,
                          sizeof err));
    printf("  ratio_min = 0: %s\n", err);
    CHECK(strstr(err, "data.augment[4].ratio_min") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_num(spec(0.5, "zero"), "ratio_max", -2), err,
                          sizeof err));
    CHECK(strstr(err, "data.augment[4].ratio_max") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_num(pt_num(spec(0.5, "zero"), "ratio_min", 3), "ratio_max", 2), err,
                          sizeof err));
    printf("  ratio_min > ratio_max: %s\n", err);
    CHECK(strstr(err, "ratio_min = 3") && strstr(err, "ratio_max = 2"));
    rn_registry_free(reg);
    return rn_test_report("test_random_erasing");
}
