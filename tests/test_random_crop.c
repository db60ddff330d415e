/* random_crop plugin against a direct reference (pad with zeros, cut the window at the same
 * keyed offsets), exactly; a sample's output does not depend on the batch it is in; every offset
 * in [0, 2*padding] occurs with frequency 1/(2p+1) within 0.02 over 20000 draws (5 standard
 * deviations is 0.011); bad sizes are refused. padding_mode = "reflect" against a reference that
 * pads as np.pad(mode="reflect") does (mirror rows then columns about the edge, edge not repeated),
 * exactly, at padding 2 and at the largest allowed, size - 1 = 6; reflect padding >= size is
 * refused at create. */
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"
#include "../kernels/augment_elem.h"

enum { C = 3, H = 7, W = 7, PAD = 2 };

static float pixel(int64_t id, int c, int y, int x) { return (float)(id * 1000 + c * 100 + y * 10 + x) + 0.5f; }

static void fill(float *x, const int64_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    x[((i * C + c) * H + y) * W + xx] = pixel(ids[i], c, y, xx);
}

/* What black becomes after normalization, per channel: the padding. */
static const float black[4] = {-0.8101983f, 1.25f, -2.0f, 0.5f};

/* The reference: pad with black, then take the size x size window at (dy, dx). */
static void reference(float *out, const int64_t *ids, int n, uint64_t seed, int64_t epoch)
{
    enum { PH = H + 2 * PAD, PW = W + 2 * PAD };
    for (int i = 0; i < n; i++) {
        uint64_t key = rn_key3(seed, (uint64_t)epoch, (uint64_t)ids[i]);
        int dy = (int)(rn_uniform(key, 0) * (PH - H + 1));
        int dx = (int)(rn_uniform(key, 1) * (PW - W + 1));
        for (int c = 0; c < C; c++) {
            float padded[PH][PW];
            for (int y = 0; y < PH; y++)
                for (int x = 0; x < PW; x++) padded[y][x] = black[c];
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) padded[y + PAD][x + PAD] = pixel(ids[i], c, y, x);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    out[((i * C + c) * H + y) * W + x] = padded[y + dy][x + dx];
        }
    }
}

/* The GPU kernel's way: every output pixel alone, from its source through rn_crop_src
 * (kernels/augment_elem.h), black where it has none. */
static void kernel_way(float *out, const int64_t *ids, int n, uint64_t seed, int64_t epoch,
                       int pad, int reflect)
{
    for (int i = 0; i < n; i++) {
        uint64_t key = rn_key3(seed, (uint64_t)epoch, (uint64_t)ids[i]);
        int64_t sy = (int64_t)(rn_uniform(key, 0) * (2 * pad + 1)) - pad;
        int64_t sx = (int64_t)(rn_uniform(key, 1) * (2 * pad + 1)) - pad;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int64_t ty = rn_crop_src(y, H, sy, reflect);
                    int64_t tx = rn_crop_src(x, W, sx, reflect);
                    out[((i * C + c) * H + y) * W + x] =
                        ty < 0 || tx < 0 ? black[c] : pixel(ids[i], c, (int)ty, (int)tx);
                }
    }
}

/* The reference for reflect: copy into the middle, then mirror rows and columns as np.pad. */
static void reference_reflect(float *out, const int64_t *ids, int n, uint64_t seed, int64_t epoch,
                              int pad)
{
    enum { MAXP = H + 2 * (H - 1) };
    int ph = H + 2 * pad, pw = W + 2 * pad;
    for (int i = 0; i < n; i++) {
        uint64_t key = rn_key3(seed, (uint64_t)epoch, (uint64_t)ids[i]);
        int dy = (int)(rn_uniform(key, 0) * (ph - H + 1));
        int dx = (int)(rn_uniform(key, 1) * (pw - W + 1));
        for (int c = 0; c < C; c++) {
            float padded[MAXP][MAXP];
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) padded[y + pad][x + pad] = pixel(ids[i], c, y, x);
            for (int k = 1; k <= pad; k++)
                for (int x = pad; x < pad + W; x++) {
                    padded[pad - k][x] = padded[pad + k][x];
                    padded[pad + H - 1 + k][x] = padded[pad + H - 1 - k][x];
                }
            for (int k = 1; k <= pad; k++)
                for (int y = 0; y < ph; y++) {
                    padded[y][pad - k] = padded[y][pad + k];
                    padded[y][pad + W - 1 + k] = padded[y][pad + W - 1 - k];
                }
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    out[((i * C + c) * H + y) * W + x] = padded[y + dy][x + dx];
        }
    }
}

static rn_batch make_batch(float *x, const int64_t *ids, int n, uint64_t seed, int64_t epoch)
{
    rn_batch b = {sizeof b, x, n, C, H, W, NULL, NULL, 0, ids, epoch, seed, black, 1};
    return b;
}

int main(void)
{
    rn_registry *reg = pt_registry();
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT,
              pt_int(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", H), "padding", PAD),
              NULL);
    const rn_augment_api *api = inst.plugin->api;

    /* Against the reference, over several epochs and a batch of 64. */
    enum { N = 64 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 7919 * i % 1000;
    float x[N * C * H * W], ref[N * C * H * W];
    for (int64_t epoch = 0; epoch < 3; epoch++) {
        fill(x, ids, N);
        rn_batch b = make_batch(x, ids, N, 0x1234 + 0, epoch);
        CHECK(api->apply(inst.self, &b) == RN_OK);
        reference(ref, ids, N, 0x1234, epoch);
        CHECK(memcmp(x, ref, sizeof x) == 0);
        kernel_way(ref, ids, N, 0x1234, epoch, PAD, 0);
        CHECK(memcmp(x, ref, sizeof x) == 0);
    }

    /* Batch composition: sample 7 alone equals sample 7 inside another batch. */
    int64_t mixed[3] = {42, 7, 999}, alone[1] = {7};
    float xm[3 * C * H * W], xa[C * H * W];
    fill(xm, mixed, 3);
    fill(xa, alone, 1);
    rn_batch bm = make_batch(xm, mixed, 3, 99, 4), ba = make_batch(xa, alone, 1, 99, 4);
    CHECK(api->apply(inst.self, &bm) == RN_OK);
    CHECK(api->apply(inst.self, &ba) == RN_OK);
    CHECK(memcmp(xm + C * H * W, xa, sizeof xa) == 0);

    /* Offsets are uniform over [0, 2*PAD]. */
    enum { DRAWS = 20000, R = 2 * PAD + 1 };
    int count[R][R] = {{0}}, cy[R] = {0};
    for (int s = 0; s < DRAWS; s++) {
        uint64_t key = rn_key3(5, 0, (uint64_t)s);
        int dy = (int)(rn_uniform(key, 0) * R), dx = (int)(rn_uniform(key, 1) * R);
        count[dy][dx]++;
        cy[dy]++;
    }
    for (int k = 0; k < R; k++) CHECK_NEAR((double)cy[k] / DRAWS, 1.0 / R, 0.02, 0);
    CHECK(count[0][0] > 0 && count[R - 1][R - 1] > 0);
    rn_instance_destroy(&inst);

    /* size must match the image: refused at apply, naming both. */
    pt_create(&inst, reg, RN_KIND_AUGMENT,
              pt_int(pt_spec("data.augment[1]", "random_crop"), "size", 5), NULL);
    rn_batch bad = make_batch(xa, alone, 1, 1, 0);
    CHECK(api->apply(inst.self, &bad) < 0);
    const char *msg = rn_instance_error(&inst);
    printf("  mismatch: %s\n", msg);
    CHECK(strstr(msg, "size 5") && strstr(msg, "7x7"));
    rn_instance_destroy(&inst);

    /* size is required; padding must be >= 0. */
    char err[512];
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, pt_spec("data.augment[1]", "random_crop"), err,
                          sizeof err));
    printf("  no size: %s\n", err);
    CHECK(strstr(err, "data.augment[1]") && strstr(err, "size"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_int(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", 7),
                                 "padding", -1),
                          err, sizeof err));
    CHECK(strstr(err, "data.augment[1].padding") != NULL);

    /* padding_mode = "reflect", at padding 2 and at the largest allowed (size - 1). */
    for (int pad = PAD; pad <= H - 1; pad += H - 1 - PAD) {
        pt_create(&inst, reg, RN_KIND_AUGMENT,
                  pt_str(pt_int(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", H),
                                "padding", pad),
                         "padding_mode", "reflect"),
                  NULL);
        api = inst.plugin->api;
        int moved = 0;
        for (int64_t epoch = 0; epoch < 3; epoch++) {
            fill(x, ids, N);
            rn_batch b = make_batch(x, ids, N, 0x777, epoch);
            CHECK(api->apply(inst.self, &b) == RN_OK);
            float kern[N * C * H * W];
            kernel_way(kern, ids, N, 0x777, epoch, pad, 1);
            reference_reflect(ref, ids, N, 0x777, epoch, pad);
            CHECK(memcmp(kern, ref, sizeof kern) == 0);
            CHECK(memcmp(x, ref, sizeof x) == 0);
            for (int i = 0; i < N; i++) moved += x[i * C * H * W] != pixel(ids[i], 0, 0, 0);
        }
        printf("  reflect, padding %d: %d batches of %d equal the np.pad reference (%d samples "
               "moved)\n", pad, 3, N, moved);
        CHECK(moved > 0);
        rn_instance_destroy(&inst);
    }

    /* reflect padding must stay inside the image: refused at create, naming both. */
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_str(pt_int(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", 7),
                                        "padding", 7),
                                 "padding_mode", "reflect"),
                          err, sizeof err));
    printf("  reflect padding 7: %s\n", err);
    CHECK(strstr(err, "padding = 7") && strstr(err, "size = 7"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_str(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", 7),
                                 "padding_mode", "edge"),
                          err, sizeof err));
    CHECK(strstr(err, "data.augment[1].padding_mode") != NULL);
    /* zero padding of any size is still allowed */
    pt_create(&inst, reg, RN_KIND_AUGMENT,
              pt_int(pt_int(pt_spec("data.augment[1]", "random_crop"), "size", 7), "padding", 9),
              NULL);
    rn_instance_destroy(&inst);
    rn_registry_free(reg);
    return rn_test_report("test_random_crop");
}
