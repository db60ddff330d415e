/* hflip and vflip against a direct reference (the same keyed coin; columns or rows reversed in
 * every channel), exactly, and against the GPU kernel's per-pixel source (kernels/augment_elem.h);
 * a sample's output does not depend on the batch it is in; the flip rate over 20000 samples is p
 * within 0.015 (about 5 binomial standard deviations at p = 0.3; the draw is deterministic, so
 * the test is not flaky); p = 0 and p = 1 flip none and all; p outside [0, 1] is refused. */
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"
#include "../kernels/augment_elem.h"

enum { C = 2, H = 3, W = 5, N = 32 };

static const char *id_of(int vertical) { return vertical ? "vflip" : "hflip"; }

static rn_value *spec(int vertical) { return pt_spec("data.augment[2]", id_of(vertical)); }

static int flips_of(const rn_registry *reg, int vertical, double p, int n)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, pt_num(spec(vertical), "p", p), NULL);
    const rn_augment_api *api = inst.plugin->api;
    /* two-pixel images [0, 1] along the flipped axis: flipped when the first pixel is 1 */
    float *x = malloc((size_t)n * 2 * sizeof *x);
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) x[2 * i] = 0, x[2 * i + 1] = 1, ids[i] = i;
    rn_batch b = {sizeof b, x, n, 1, vertical ? 2 : 1, vertical ? 1 : 2, NULL, NULL, 0, ids, 3,
                  777, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    int flips = 0;
    for (int i = 0; i < n; i++) flips += x[2 * i] == 1;
    free(x);
    free(ids);
    rn_instance_destroy(&inst);
    return flips;
}

static void check_plugin(const rn_registry *reg, int vertical)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(vertical), NULL); /* p 0.5 */
    const rn_augment_api *api = inst.plugin->api;
    int64_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 1000 + 13 * i;
    static float x[N * C * H * W], orig[N * C * H * W], ref[N * C * H * W], kern[N * C * H * W];
    for (int64_t i = 0; i < N * C * H * W; i++) orig[i] = (float)i;
    memcpy(x, orig, sizeof x);
    rn_batch b = {sizeof b, x, N, C, H, W, NULL, NULL, 0, ids, 2, 4242, NULL, 1};
    CHECK(api->apply(inst.self, &b) == RN_OK);
    int flipped = 0;
    for (int i = 0; i < N; i++) {
        int flip = rn_uniform(rn_key3(4242, 2, (uint64_t)ids[i]), 0) < 0.5;
        flipped += flip;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int at = ((i * C + c) * H + y) * W + xx, plane = (i * C + c) * H * W;
                    int ry = vertical && flip ? H - 1 - y : y;
                    int rx = !vertical && flip ? W - 1 - xx : xx;
                    ref[at] = orig[plane + ry * W + rx];
                    int64_t ky = vertical ? rn_flip_src(y, H, flip) : y;
                    int64_t kx = vertical ? xx : rn_flip_src(xx, W, flip);
                    kern[at] = orig[plane + ky * W + kx];
                }
    }
    CHECK(memcmp(x, ref, sizeof x) == 0);
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
    double rate = (double)flips_of(reg, vertical, 0.3, DRAWS) / DRAWS;
    printf("  %s: flip rate at p = 0.3: %.4f (bound 0.3 +- 0.015)\n", id_of(vertical), rate);
    CHECK_NEAR(rate, 0.3, 0.015, 0);
    CHECK(flips_of(reg, vertical, 0.0, 1000) == 0);
    CHECK(flips_of(reg, vertical, 1.0, 1000) == 1000);

    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_num(spec(vertical), "p", 1.5), err,
                          sizeof err));
    printf("  p = 1.5: %s\n", err);
    CHECK(strstr(err, "data.augment[2].p") != NULL);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_num(spec(vertical), "p", -0.1), err,
                          sizeof err));
    CHECK(strstr(err, "data.augment[2].p") != NULL);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    check_plugin(reg, 0);
    check_plugin(reg, 1);
    rn_registry_free(reg);
    return rn_test_report("test_flip");
}
