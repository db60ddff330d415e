/* hflip plugin against a direct reference (same keyed coin, mirrored rows), exactly; a sample's
 * output does not depend on the batch it is in; the flip rate over 20000 samples is p within 0.015
 * (about 5 binomial standard deviations at p = 0.3; the draw is deterministic, so the test is not
 * flaky); p = 0 and p = 1 flip none and all; p outside [0, 1] is refused. */
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"
#include "../kernels/augment_elem.h"

enum { C = 2, H = 3, W = 5 };

static void fill(float *x, int64_t n)
{
    for (int64_t i = 0; i < n * C * H * W; i++) x[i] = (float)i;
}

static int flips_of(const rn_registry *reg, double p, int n)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, pt_num(pt_spec("data.augment[2]", "hflip"), "p", p),
              NULL);
    const rn_augment_api *api = inst.plugin->api;
    /* 1x1x2 images [0, 1]: flipped when the first pixel is 1. */
    float *x = malloc((size_t)n * 2 * sizeof *x);
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) x[2 * i] = 0, x[2 * i + 1] = 1, ids[i] = i;
    rn_batch b = {sizeof b, x, n, 1, 1, 2, NULL, NULL, 0, ids, 3, 777, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    int flips = 0;
    for (int i = 0; i < n; i++) flips += x[2 * i] == 1;
    free(x);
    free(ids);
    rn_instance_destroy(&inst);
    return flips;
}

int main(void)
{
    rn_registry *reg = pt_registry();
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, pt_spec("data.augment[2]", "hflip"), NULL); /* p 0.5 */
    const rn_augment_api *api = inst.plugin->api;

    enum { N = 32 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 1000 + 13 * i;
    float x[N * C * H * W], orig[N * C * H * W], ref[N * C * H * W];
    fill(orig, N);
    memcpy(x, orig, sizeof x);
    rn_batch b = {sizeof b, x, N, C, H, W, NULL, NULL, 0, ids, 2, 4242, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    int flipped = 0;
    for (int i = 0; i < N; i++) {
        int flip = rn_uniform(rn_key3(4242, 2, (uint64_t)ids[i]), 0) < 0.5;
        flipped += flip;
        for (int r = 0; r < C * H; r++)
            for (int xx = 0; xx < W; xx++)
                ref[(i * C * H + r) * W + xx] = orig[(i * C * H + r) * W + (flip ? W - 1 - xx : xx)];
    }
    CHECK(memcmp(x, ref, sizeof x) == 0);
    /* the GPU kernel's per-pixel source (kernels/augment_elem.h) gives the same batch */
    float kern[N * C * H * W];
    for (int i = 0; i < N; i++) {
        int flip = rn_uniform(rn_key3(4242, 2, (uint64_t)ids[i]), 0) < 0.5;
        for (int r = 0; r < C * H; r++)
            for (int xx = 0; xx < W; xx++)
                kern[(i * C * H + r) * W + xx] =
                    orig[(i * C * H + r) * W + rn_flip_src(xx, W, flip)];
    }
    CHECK(memcmp(x, kern, sizeof x) == 0);
    CHECK(flipped > 0 && flipped < N);

    /* Batch composition: ids[5] alone gives the same image as inside the batch. */
    float one[C * H * W];
    memcpy(one, orig + 5 * C * H * W, sizeof one);
    rn_batch b1 = {sizeof b1, one, 1, C, H, W, NULL, NULL, 0, ids + 5, 2, 4242, NULL, 1};
    CHECK(api->apply(inst.self, &b1) == RN_OK);
    CHECK(memcmp(one, ref + 5 * C * H * W, sizeof one) == 0);
    rn_instance_destroy(&inst);

    enum { DRAWS = 20000 };
    double rate = (double)flips_of(reg, 0.3, DRAWS) / DRAWS;
    printf("  flip rate at p = 0.3: %.4f\n", rate);
    CHECK_NEAR(rate, 0.3, 0.015, 0);
    CHECK(flips_of(reg, 0.0, 1000) == 0);
    CHECK(flips_of(reg, 1.0, 1000) == 1000);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_num(pt_spec("data.augment[2]", "hflip"), "p", 1.5),
                          err, sizeof err));
    CHECK(strstr(err, "data.augment[2].p") != NULL);
    rn_registry_free(reg);
    return rn_test_report("test_hflip");
}
