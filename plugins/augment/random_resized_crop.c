/* random_resized_crop — torchvision's RandomResizedCrop(size, scale, ratio, bilinear) on a
 * normalized batch.
 *
 * The box is RandomResizedCrop.get_params with the uniforms taken from rn_uniform instead of
 * torch's generator, key = rn_key3(batch->seed, batch->epoch, sample_id), counters 4k..4k+3 for
 * attempt k (0..9): area fraction in [scale_min, scale_max], log aspect in
 * [log ratio_min, log ratio_max], row i and column j (floor(u * range)). w and h round half to
 * even, as Python's round(). After ten rejected attempts: the central crop with the ratio clamped.
 * The crop is resized back to h x w as F.interpolate(mode='bilinear', align_corners=False,
 * antialias=False) does on CPU (float index math): kernels/augment_elem.h's
 * rn_resized_crop_pixel, which the GPU kernel runs too (device_plan writes the boxes). The batch
 * buffers are fixed, so size must equal the image's height and width.
 */
#include <runner/plugin.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../kernels/augment_elem.h"
#include "scale_ratio.h"

typedef struct random_resized_crop {
    const rn_host *host;
    rn_ctx *ctx;
    int64_t size;
    double scale_min, scale_max, log_ratio_min, log_ratio_max, ratio_min, ratio_max;
    float *scratch;  /* a copy of the plane being resized: cap floats */
    size_t cap;
    /* a sample's column taps (rn_resize_tap), worked out once per sample: tcap columns */
    int64_t *tx0, *txs;
    float *tm1;
    size_t tcap;
} random_resized_crop;

static const rn_setting random_resized_crop_settings[] = {
    {"size", RN_SETTING_INT, 0, NULL, 1, 65536, NULL,
     "output height and width in pixels (must equal the input size: the batch shape is fixed)",
     RN_SETTING_REQUIRED},
    {"scale_min", RN_SETTING_NUMBER, 0.08, NULL, 0, 1, NULL,
     "smallest area of the crop as a fraction of the image", RN_SETTING_MIN_EXCLUSIVE},
    {"scale_max", RN_SETTING_NUMBER, 1.0, NULL, 0, 1, NULL,
     "largest area of the crop as a fraction of the image", RN_SETTING_MIN_EXCLUSIVE},
    {"ratio_min", RN_SETTING_NUMBER, 3.0 / 4.0, NULL, 0, INFINITY, NULL,
     "smallest aspect ratio (width / height) of the crop", RN_SETTING_MIN_EXCLUSIVE},
    {"ratio_max", RN_SETTING_NUMBER, 4.0 / 3.0, NULL, 0, INFINITY, NULL,
     "largest aspect ratio (width / height) of the crop", RN_SETTING_MIN_EXCLUSIVE},
};

static int random_resized_crop_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double range[4];
    if (scale_ratio_get(host, ctx, range) != RN_OK) return RN_ERR_CONFIG;
    double smin = range[0], smax = range[1], rmin = range[2], rmax = range[3];
    random_resized_crop *r = host->alloc(sizeof *r);
    if (!r) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    r->host = host;
    r->ctx = ctx;
    r->size = host->get_int(ctx, "size");
    r->scale_min = smin;
    r->scale_max = smax;
    r->ratio_min = rmin;
    r->ratio_max = rmax;
    r->log_ratio_min = log(rmin);
    r->log_ratio_max = log(rmax);
    *self = r;
    return RN_OK;
}

static void random_resized_crop_destroy(void *self)
{
    random_resized_crop *r = self;
    if (!r) return;
    r->host->free(r->scratch);
    r->host->free(r->tx0);
    r->host->free(r->txs);
    r->host->free(r->tm1);
    r->host->free(r);
}

/* get_params: the box (i, j, h, w) of an H x W image for this key. */
static void get_box(const random_resized_crop *r, uint64_t key, int64_t H, int64_t W, int64_t box[4])
{
    double area = (double)H * (double)W;
    for (uint64_t k = 0; k < 10; k++) {
        double target = area * (r->scale_min + (r->scale_max - r->scale_min) * rn_uniform(key, 4 * k));
        double aspect = exp(r->log_ratio_min +
                            (r->log_ratio_max - r->log_ratio_min) * rn_uniform(key, 4 * k + 1));
        int64_t w = (int64_t)nearbyint(sqrt(target * aspect));
        int64_t h = (int64_t)nearbyint(sqrt(target / aspect));
        if (0 < w && w <= W && 0 < h && h <= H) {
            box[0] = (int64_t)(rn_uniform(key, 4 * k + 2) * (double)(H - h + 1));
            box[1] = (int64_t)(rn_uniform(key, 4 * k + 3) * (double)(W - w + 1));
            box[2] = h;
            box[3] = w;
            return;
        }
    }
    double in_ratio = (double)W / (double)H;
    int64_t w = W, h = H;
    if (in_ratio < r->ratio_min)
        h = (int64_t)nearbyint((double)w / r->ratio_min);
    else if (in_ratio > r->ratio_max)
        w = (int64_t)nearbyint((double)h * r->ratio_max);
    box[0] = (H - h) / 2;
    box[1] = (W - w) / 2;
    box[2] = h;
    box[3] = w;
}

static int check_size(const random_resized_crop *r, const rn_batch *b)
{
    if (r->size == b->h && r->size == b->w) return RN_OK;
    r->host->set_error(r->ctx, "size %lld must equal the batch's image size %lldx%lld (the "
                       "batch buffers are fixed; resizing to another size is not supported)",
                       (long long)r->size, (long long)b->h, (long long)b->w);
    return RN_ERR_CONFIG;
}

static int random_resized_crop_apply(void *self, rn_batch *b)
{
    random_resized_crop *r = self;
    if (check_size(r, b) != RN_OK) return RN_ERR_CONFIG;
    int64_t H = b->h, W = b->w, plane = H * W;
    if ((size_t)plane > r->cap) {
        float *p = r->host->alloc((size_t)plane * sizeof *p);
        if (!p) {
            r->host->set_error(r->ctx, "out of memory");
            return RN_ERR_NOMEM;
        }
        r->host->free(r->scratch);
        r->scratch = p;
        r->cap = (size_t)plane;
    }
    if ((size_t)W > r->tcap) {
        r->host->free(r->tx0);
        r->host->free(r->txs);
        r->host->free(r->tm1);
        r->tx0 = r->host->alloc((size_t)W * sizeof *r->tx0);
        r->txs = r->host->alloc((size_t)W * sizeof *r->txs);
        r->tm1 = r->host->alloc((size_t)W * sizeof *r->tm1);
        r->tcap = r->tx0 && r->txs && r->tm1 ? (size_t)W : 0;
        if (!r->tcap) {
            r->host->set_error(r->ctx, "out of memory");
            return RN_ERR_NOMEM;
        }
    }
    for (int64_t n = 0; n < b->n; n++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[n]);
        int64_t box[4];
        get_box(r, key, H, W, box);
        if (box[2] == H && box[3] == W) continue; /* the whole image, resized to itself */
        /* rn_resized_crop_pixel's taps, per column and per row rather than per pixel */
        for (int64_t x = 0; x < W; x++)
            rn_resize_tap(box[3], W, x, &r->tx0[x], &r->txs[x], &r->tm1[x]);
        for (int64_t ch = 0; ch < b->c; ch++) {
            float *p = b->x + (n * b->c + ch) * plane;
            memcpy(r->scratch, p, (size_t)plane * sizeof *p);
            for (int64_t y = 0; y < H; y++) {
                int64_t y0, ys;
                float l1;
                rn_resize_tap(box[2], H, y, &y0, &ys, &l1);
                for (int64_t x = 0; x < W; x++)
                    p[y * W + x] = rn_resized_crop_blend(r->scratch, W, box[0], box[1], y0, ys,
                                                         l1, r->tx0[x], r->txs[x], r->tm1[x]);
            }
        }
    }
    return RN_OK;
}

/* On a GPU: the same boxes, for the host's RESIZED_CROP kernel. */
static int random_resized_crop_device_plan(void *self, const rn_batch *b, rn_augment_op *op)
{
    random_resized_crop *r = self;
    if (check_size(r, b) != RN_OK) return RN_ERR_CONFIG;
    if (op->struct_size < offsetof(rn_augment_op, box) + sizeof op->box || !op->box) {
        r->host->set_error(r->ctx, "the host's augmentation plan has no crop boxes (a host "
                           "older than plugin ABI 1.3)");
        return RN_ERR_CONFIG;
    }
    op->kind = RN_AUGMENT_OP_RESIZED_CROP;
    for (int64_t n = 0; n < b->n; n++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[n]);
        int64_t box[4];
        get_box(r, key, b->h, b->w, box);
        for (int k = 0; k < 4; k++) op->box[4 * n + k] = (int32_t)box[k];
    }
    return RN_OK;
}

static const rn_augment_api random_resized_crop_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = random_resized_crop_apply,
    .device_plan = random_resized_crop_device_plan,
};

static const rn_plugin random_resized_crop_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "random_resized_crop",
    .version = "1.1.0",
    .summary = "random area/aspect crop resized back bilinearly (torchvision RandomResizedCrop), "
               "per sample",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = random_resized_crop_settings,
    .n_settings = sizeof random_resized_crop_settings / sizeof random_resized_crop_settings[0],
    .create = random_resized_crop_create,
    .destroy = random_resized_crop_destroy,
    .api = &random_resized_crop_api,
};

static const rn_plugin *const random_resized_crop_plugins[] = {&random_resized_crop_plugin};

static const rn_library random_resized_crop_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = random_resized_crop_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &random_resized_crop_library : NULL;
}
