/* random_resized_crop plugin: the boxes of a direct re-implementation of torchvision's
 * RandomResizedCrop.get_params (below, fed the same rn_uniform draws) equal those of the fixture
 * script's Python port, and the plugin's output equals PyTorch's F.interpolate(bilinear,
 * align_corners=False, antialias=False) of those crops within 1e-5
 * (scripts/fixtures/random_resized_crop.py: default, wide and fallback cases); on 300 more samples
 * it equals the re-implemented box resized by a direct bilinear reference within 1e-5; a sample's
 * output does not depend on its batch; over 20000 draws on 32x32 the mean area fraction h*w/(H*W)
 * is within 0.01 (about 5 standard errors) of its value for the accepted distribution, computed by
 * a 3000x3000 midpoint quadrature over (scale, log ratio) with the same rounding and the fallback;
 * bad settings are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_io.h"
#include "plugin_test_util.h"
#include "rn_test.h"

/* Python's round(): half to even. */
static double py_round(double v)
{
    double f = floor(v), d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1;
}

/* torchvision RandomResizedCrop.get_params, torch.empty(1).uniform_(a, b) and torch.randint
 * replaced by the plugin's draws: counters 4k..4k+3 of attempt k. */
static void get_params(uint64_t key, int height, int width, const double scale[2],
                       const double ratio[2], int out[4])
{
    double area = (double)height * width;
    double log_ratio[2] = {log(ratio[0]), log(ratio[1])};
    for (int k = 0; k < 10; k++) {
        double target_area = area * (scale[0] + (scale[1] - scale[0]) * rn_uniform(key, 4 * k));
        double aspect_ratio =
            exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * rn_uniform(key, 4 * k + 1));
        int w = (int)py_round(sqrt(target_area * aspect_ratio));
        int h = (int)py_round(sqrt(target_area / aspect_ratio));
        if (0 < w && w <= width && 0 < h && h <= height) {
            out[0] = (int)(rn_uniform(key, 4 * k + 2) * (height - h + 1));
            out[1] = (int)(rn_uniform(key, 4 * k + 3) * (width - w + 1));
            out[2] = h;
            out[3] = w;
            return;
        }
    }
    double in_ratio = (double)width / height, rmin = fmin(ratio[0], ratio[1]);
    double rmax = fmax(ratio[0], ratio[1]);
    int w = width, h = height;
    if (in_ratio < rmin)
        h = (int)py_round(w / rmin);
    else if (in_ratio > rmax)
        w = (int)py_round(h * rmax);
    out[0] = (height - h) / 2;
    out[1] = (width - w) / 2;
    out[2] = h;
    out[3] = w;
}

/* PyTorch's bilinear, align_corners=False: src = (in/out)(o + 0.5) - 0.5 clamped at 0. */
static double sample_at(const float *plane, int W, int i, int j, int h, int w, int H, int Wout,
                        int y, int x)
{
    double sy = fmax((double)h / H * (y + 0.5) - 0.5, 0.0);
    double sx = fmax((double)w / Wout * (x + 0.5) - 0.5, 0.0);
    int y0 = (int)sy, x0 = (int)sx;
    int y1 = y0 < h - 1 ? y0 + 1 : y0, x1 = x0 < w - 1 ? x0 + 1 : x0;
    double ly = sy - y0, lx = sx - x0;
#define P(yy, xx) (double)plane[(i + (yy)) * W + j + (xx)]
    return (1 - ly) * ((1 - lx) * P(y0, x0) + lx * P(y0, x1)) +
           ly * ((1 - lx) * P(y1, x0) + lx * P(y1, x1));
#undef P
}

static rn_value *spec(int64_t size, double smin, double smax, double rmin, double rmax)
{
    rn_value *s = pt_int(pt_spec("data.augment[3]", "random_resized_crop"), "size", size);
    return pt_num(pt_num(pt_num(pt_num(s, "scale_min", smin), "scale_max", smax), "ratio_min", rmin),
                  "ratio_max", rmax);
}

/* One fixture case: boxes as the Python port drew them, output as PyTorch resized them. */
static void check_fixture(const rn_registry *reg, const char *name, const double scale[2],
                          const double ratio[2])
{
    fx_file *f = fx_load(name);
    CHECK(f != NULL);
    if (!f) return;
    const fx_array *x = fx_get(f, "x"), *y = fx_get(f, "y"), *ids = fx_get(f, "ids"),
                   *boxes = fx_get(f, "boxes");
    if (!x || !y || !ids || !boxes) {
        fx_free(f);
        return;
    }
    CHECK_NEAR(fx_cfg(f, "scale_min", -1), scale[0], 1e-7, 0);
    CHECK_NEAR(fx_cfg(f, "scale_max", -1), scale[1], 1e-7, 0);
    CHECK_NEAR(fx_cfg(f, "ratio_min", -1), ratio[0], 1e-7, 0);
    CHECK_NEAR(fx_cfg(f, "ratio_max", -1), ratio[1], 1e-7, 0);
    int n = (int)x->dims[0], c = (int)x->dims[1], size = (int)x->dims[2];
    uint64_t seed = (uint64_t)fx_cfg(f, "seed", 0);
    int64_t epoch = (int64_t)fx_cfg(f, "epoch", 0);
    int64_t *sid = malloc((size_t)n * sizeof *sid);
    for (int k = 0; k < n; k++) sid[k] = (int64_t)ids->data[k];
    int same = 1, cropped = 0;
    for (int k = 0; k < n; k++) {
        int box[4];
        get_params(rn_key3(seed, (uint64_t)epoch, (uint64_t)sid[k]), size, size, scale, ratio, box);
        for (int q = 0; q < 4; q++) same &= box[q] == (int)boxes->data[4 * k + q];
        cropped += box[2] < size || box[3] < size;
    }
    CHECK(same);
    CHECK(cropped == n);

    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(size, scale[0], scale[1], ratio[0], ratio[1]), NULL);
    const rn_augment_api *api = inst.plugin->api;
    float *buf = malloc((size_t)x->numel * sizeof *buf);
    memcpy(buf, x->data, (size_t)x->numel * sizeof *buf);
    rn_batch b = {sizeof b, buf, n, c, size, size, NULL, NULL, 0, sid, epoch, seed, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    int bad = fx_compare(name, buf, x->numel, y, 1e-5, 0);
    printf("  %s: %d samples %dx%dx%d, boxes %s the Python port, %d values off PyTorch by > 1e-5\n",
           name, n, c, size, size, same ? "equal" : "DIFFER from", bad);
    rn_instance_destroy(&inst);
    free(buf);
    free(sid);
    fx_free(f);
}

/* The mean of h*w/(H*W) over get_params' output distribution on an S x S image: the first
 * accepted attempt has the accepted conditional distribution; after ten rejections, the fallback. */
static double expected_area(int S, const double scale[2], const double ratio[2], int grid)
{
    double lr0 = log(ratio[0]), lr1 = log(ratio[1]), A = (double)S * S;
    double acc = 0.0, sum = 0.0;
    double *aspect = malloc((size_t)grid * sizeof *aspect);
    for (int b = 0; b < grid; b++) aspect[b] = exp(lr0 + (lr1 - lr0) * (b + 0.5) / grid);
    for (int a = 0; a < grid; a++) {
        double t = A * (scale[0] + (scale[1] - scale[0]) * (a + 0.5) / grid);
        for (int b = 0; b < grid; b++) {
            double w = py_round(sqrt(t * aspect[b])), h = py_round(sqrt(t / aspect[b]));
            if (w > 0 && w <= S && h > 0 && h <= S) {
                acc += 1;
                sum += h * w / A;
            }
        }
    }
    free(aspect);
    double q = acc / ((double)grid * grid), miss = pow(1 - q, 10);
    /* the fallback on a square image: the central crop with the ratio clamped */
    double fw = S, fh = S;
    if (1.0 < ratio[0])
        fh = py_round(S / ratio[0]);
    else if (1.0 > ratio[1])
        fw = py_round(S * ratio[1]);
    return (1 - miss) * (sum / acc) + miss * fh * fw / A;
}

int main(void)
{
    rn_registry *reg = pt_registry();
    const double dscale[2] = {0.08, 1.0}, dratio[2] = {3.0 / 4.0, 4.0 / 3.0};
    check_fixture(reg, "random_resized_crop_default", dscale, dratio);
    const double wscale[2] = {0.3, 0.5}, wratio[2] = {0.5, 2.5};
    check_fixture(reg, "random_resized_crop_wide", wscale, wratio);
    const double fscale[2] = {0.9, 1.0}, fratio[2] = {2.5, 4.0};
    check_fixture(reg, "random_resized_crop_fallback", fscale, fratio);

    /* Against the direct reference, defaults, 300 samples of 2x10x10 over two epochs. */
    enum { N = 150, C = 2, S = 10 };
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT,
              pt_int(pt_spec("data.augment[3]", "random_resized_crop"), "size", S), NULL);
    const rn_augment_api *api = inst.plugin->api;
    static float x[N * C * S * S], orig[N * C * S * S];
    int64_t ids[N];
    for (int k = 0; k < N; k++) ids[k] = 31 * k + 5;
    for (int k = 0; k < N * C * S * S; k++) orig[k] = (float)sin(0.37 * k) * 2.0f;
    double worst = 0.0;
    for (int64_t epoch = 0; epoch < 2; epoch++) {
        memcpy(x, orig, sizeof x);
        rn_batch b = {sizeof b, x, N, C, S, S, NULL, NULL, 0, ids, epoch, 777, NULL, 1};
        CHECK(api->apply(inst.self, &b) == RN_OK);
        for (int k = 0; k < N; k++) {
            int box[4];
            get_params(rn_key3(777, (uint64_t)epoch, (uint64_t)ids[k]), S, S, dscale, dratio, box);
            for (int ch = 0; ch < C; ch++)
                for (int yy = 0; yy < S; yy++)
                    for (int xx = 0; xx < S; xx++) {
                        double ref = sample_at(orig + (k * C + ch) * S * S, S, box[0], box[1],
                                               box[2], box[3], S, S, yy, xx);
                        double d = fabs(ref - x[((k * C + ch) * S + yy) * S + xx]);
                        if (!(d <= worst)) worst = d;
                    }
        }
    }
    printf("  direct reference: worst |diff| %.3g over %d samples (bound 1e-5)\n", worst, 2 * N);
    CHECK(worst <= 1e-5);

    /* Batch composition: ids[9] alone equals ids[9] inside the batch. */
    memcpy(x, orig, sizeof x);
    rn_batch b = {sizeof b, x, N, C, S, S, NULL, NULL, 0, ids, 1, 777, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    float one[C * S * S];
    memcpy(one, orig + 9 * C * S * S, sizeof one);
    rn_batch b1 = {sizeof b1, one, 1, C, S, S, NULL, NULL, 0, ids + 9, 1, 777, NULL, 1};
    CHECK(api->apply(inst.self, &b1) == RN_OK);
    CHECK(memcmp(one, x + 9 * C * S * S, sizeof one) == 0);

    /* size must match the image: refused at apply, naming both. */
    rn_batch b2 = {sizeof b2, one, 1, C, S - 2, S, NULL, NULL, 0, ids, 0, 1, NULL, 1};
    CHECK(api->apply(inst.self, &b2) < 0);
    printf("  mismatch: %s\n", rn_instance_error(&inst));
    CHECK(strstr(rn_instance_error(&inst), "size 10") && strstr(rn_instance_error(&inst), "8x10"));
    rn_instance_destroy(&inst);

    /* The mean area fraction against the accepted distribution's. */
    enum { DRAWS = 20000, BIG = 32 };
    double sum = 0.0, sum2 = 0.0;
    for (int s = 0; s < DRAWS; s++) {
        int box[4];
        get_params(rn_key3(4242, 3, (uint64_t)s), BIG, BIG, dscale, dratio, box);
        double frac = (double)box[2] * box[3] / (BIG * BIG);
        sum += frac;
        sum2 += frac * frac;
    }
    double mean = sum / DRAWS, sd = sqrt(sum2 / DRAWS - mean * mean);
    double expect = expected_area(BIG, dscale, dratio, 3000);
    printf("  mean area fraction %.4f, accepted distribution %.4f (bound 0.01; sd %.3f, "
           "standard error %.4f); inside [scale_min, scale_max] = [0.08, 1]\n",
           mean, expect, sd, sd / sqrt(DRAWS));
    CHECK_NEAR(mean, expect, 0.01, 0);
    CHECK(mean >= dscale[0] && mean <= dscale[1]);

    /* Bad settings: refused at create with the key or both values named. */
    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(8, 0.6, 0.4, 0.75, 1.33), err, sizeof err));
    printf("  scale_min > scale_max: %s\n", err);
    CHECK(strstr(err, "scale_min = 0.6") && strstr(err, "scale_max = 0.4"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(8, 0.08, 1, 2, 1), err, sizeof err));
    printf("  ratio_min > ratio_max: %s\n", err);
    CHECK(strstr(err, "ratio_min = 2") && strstr(err, "ratio_max = 1"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(8, 0.08, 1, 0, 1), err, sizeof err));
    printf("  ratio_min = 0: %s\n", err);
    CHECK(strstr(err, "data.augment[3].ratio_min") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(8, 0.08, 1, 0.5, -1), err, sizeof err));
    CHECK(strstr(err, "data.augment[3].ratio_max") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(8, 0.08, 1.5, 0.5, 1), err, sizeof err));
    CHECK(strstr(err, "data.augment[3].scale_max") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_spec("data.augment[3]", "random_resized_crop"),
                          err, sizeof err));
    CHECK(strstr(err, "size") != NULL);
    rn_registry_free(reg);
    return rn_test_report("test_random_resized_crop");
}
