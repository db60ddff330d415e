/* random_erasing — torchvision's RandomErasing(p, scale, ratio, value) on a normalized batch.
 *
 * Per sample, key = rn_key3(batch->seed, batch->epoch, sample_id): the coin is
 * rn_uniform(key, 0) < p; then RandomErasing.get_params with counters 1 + 4k..4 + 4k for attempt k
 * (0..9): area fraction in [scale_min, scale_max], log aspect in [log ratio_min, log ratio_max],
 * h = round(sqrt(area * ratio)), w = round(sqrt(area / ratio)) (half to even, as Python), skipped
 * unless h < H and w < W; row i and column j floor(u * range). No box in ten attempts leaves the
 * sample as it is (torchvision returns the image). The box gets 0 in every channel ("zero") or
 * per-pixel normal(0, 1) values ("random"): pixel t = (c*h + y)*w + x of the box takes the
 * cos (t even) or sin (t odd) half of Box-Muller on uniforms 64 + 2*(t/2) and 65 + 2*(t/2).
 */
#include <runner/plugin.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../kernels/augment_elem.h"
#include "scale_ratio.h"

typedef struct random_erasing {
    const rn_host *host;
    double p, scale_min, scale_max, log_ratio_min, log_ratio_max;
    int random;
} random_erasing;

static const rn_setting random_erasing_settings[] = {
    {"p", RN_SETTING_NUMBER, 0.5, NULL, 0, 1, NULL, "probability of erasing a box in a sample", 0},
    {"scale_min", RN_SETTING_NUMBER, 0.02, NULL, 0, 1, NULL,
     "smallest area of the box as a fraction of the image", RN_SETTING_MIN_EXCLUSIVE},
    {"scale_max", RN_SETTING_NUMBER, 0.33, NULL, 0, 1, NULL,
     "largest area of the box as a fraction of the image", RN_SETTING_MIN_EXCLUSIVE},
    {"ratio_min", RN_SETTING_NUMBER, 0.3, NULL, 0, INFINITY, NULL,
     "smallest aspect ratio (height / width) of the box", RN_SETTING_MIN_EXCLUSIVE},
    {"ratio_max", RN_SETTING_NUMBER, 3.3, NULL, 0, INFINITY, NULL,
     "largest aspect ratio (height / width) of the box", RN_SETTING_MIN_EXCLUSIVE},
    {"value", RN_SETTING_STRING, 0, "zero", 1, 0, "zero|random",
     "fill: zero = 0 in normalized space (torchvision's value=0 after Normalize, i.e. the mean "
     "color), random = per-pixel normal(0, 1)", 0},
};

static int random_erasing_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double range[4];
    if (scale_ratio_get(host, ctx, range) != RN_OK) return RN_ERR_CONFIG;
    double smin = range[0], smax = range[1], rmin = range[2], rmax = range[3];
    random_erasing *e = host->alloc(sizeof *e);
    if (!e) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    e->host = host;
    e->p = host->get_number(ctx, "p");
    e->scale_min = smin;
    e->scale_max = smax;
    e->log_ratio_min = log(rmin);
    e->log_ratio_max = log(rmax);
    e->random = strcmp(host->get_string(ctx, "value"), "random") == 0;
    *self = e;
    return RN_OK;
}

static void random_erasing_destroy(void *self)
{
    random_erasing *e = self;
    if (e) e->host->free(e);
}

/* get_params: 1 and the box (i, j, h, w), or 0 when ten attempts found none. */
static int get_box(const random_erasing *e, uint64_t key, int64_t H, int64_t W, int64_t box[4])
{
    double area = (double)H * (double)W;
    for (uint64_t k = 0; k < 10; k++) {
        uint64_t c = 1 + 4 * k;
        double erase = area * (e->scale_min + (e->scale_max - e->scale_min) * rn_uniform(key, c));
        double aspect = exp(e->log_ratio_min +
                            (e->log_ratio_max - e->log_ratio_min) * rn_uniform(key, c + 1));
        int64_t h = (int64_t)nearbyint(sqrt(erase * aspect));
        int64_t w = (int64_t)nearbyint(sqrt(erase / aspect));
        if (!(h < H && w < W)) continue;
        box[0] = (int64_t)(rn_uniform(key, c + 2) * (double)(H - h + 1));
        box[1] = (int64_t)(rn_uniform(key, c + 3) * (double)(W - w + 1));
        box[2] = h;
        box[3] = w;
        return 1;
    }
    return 0;
}

static int random_erasing_apply(void *self, rn_batch *b)
{
    const random_erasing *e = self;
    int64_t H = b->h, W = b->w;
    for (int64_t n = 0; n < b->n; n++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[n]);
        int64_t box[4];
        if (!(rn_uniform(key, 0) < e->p) || !get_box(e, key, H, W, box)) continue;
        int64_t i = box[0], j = box[1], h = box[2], w = box[3];
        uint64_t t = 0;
        for (int64_t ch = 0; ch < b->c; ch++) {
            float *plane = b->x + (n * b->c + ch) * H * W;
            for (int64_t y = i; y < i + h; y++) {
                float *row = plane + y * W + j;
                if (!e->random) {
                    memset(row, 0, (size_t)w * sizeof *row);
                    continue;
                }
                for (int64_t x = 0; x < w; x++) row[x] = rn_erase_normal(key, t++);
            }
        }
    }
    return RN_OK;
}

static int random_erasing_plan(void *self, const rn_batch *b, rn_augment_op *op)
{
    const random_erasing *e = self;
    op->kind = RN_AUGMENT_OP_ERASE;
    op->random = e->random;
    for (int64_t n = 0; n < b->n; n++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[n]);
        int64_t box[4];
        rn_erase_box *out = &op->erase[n];
        *out = (rn_erase_box){.key = key};
        if (!(rn_uniform(key, 0) < e->p) || !get_box(e, key, b->h, b->w, box)) continue;
        out->y = (int32_t)box[0];
        out->x = (int32_t)box[1];
        out->h = (int32_t)box[2];
        out->w = (int32_t)box[3];
    }
    return RN_OK;
}

static const rn_augment_api random_erasing_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = random_erasing_apply,
    .device_plan = random_erasing_plan,
};

static const rn_plugin random_erasing_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "random_erasing",
    .version = "1.0.0",
    .summary = "erase a random box with probability p (torchvision RandomErasing), per sample",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = random_erasing_settings,
    .n_settings = sizeof random_erasing_settings / sizeof random_erasing_settings[0],
    .create = random_erasing_create,
    .destroy = random_erasing_destroy,
    .api = &random_erasing_api,
};

static const rn_plugin *const random_erasing_plugins[] = {&random_erasing_plugin};

static const rn_library random_erasing_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = random_erasing_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &random_erasing_library : NULL;
}
