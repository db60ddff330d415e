/* random_crop — torchvision's RandomCrop(size, padding, padding_mode) on a normalized batch, with
 * padding_mode "zero" (torchvision's "constant" with fill 0) or "reflect".
 *
 * Each sample is padded by `padding` pixels on every side and a size x size window is cut at
 * (dy, dx), both uniform in [0, h + 2*padding - size]:
 *   dy = floor(rn_uniform(key, 0) * range_y), dx = floor(rn_uniform(key, 1) * range_x),
 *   key = rn_key3(batch->seed, batch->epoch, sample_id)
 * so a sample's crop depends only on (seed, epoch, sample id), never on the batch it is in.
 * The batch buffers are fixed, so size must equal the image's height and width: the crop is then
 * a shift by (dy - padding, dx - padding), done in place row by row. The batch is normalized
 * already, so the fill is batch->zero_value[c], what black became (torchvision pads before
 * normalizing); a host without zero_value gets 0. "reflect" mirrors about the edge pixel without
 * repeating it (np.pad / F.pad mode "reflect"), which needs padding < size.
 */
#include <runner/plugin.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../kernels/augment_elem.h"

typedef struct random_crop {
    const rn_host *host;
    rn_ctx *ctx;
    int64_t size, padding;
    int reflect;
    float *scratch; /* one plane, for reflect: size * size floats, made at the first apply */
} random_crop;

static const rn_setting random_crop_settings[] = {
    {"size", RN_SETTING_INT, 0, NULL, 1, 65536, NULL,
     "output height and width in pixels (must equal the input size for now)",
     RN_SETTING_REQUIRED},
    {"padding", RN_SETTING_INT, 0, NULL, 0, 65536, NULL,
     "padding added on every side before cropping, in pixels", 0},
    {"padding_mode", RN_SETTING_STRING, 0, "zero", 1, 0, "zero|reflect",
     "zero: pad with black (raw 0, as torchvision pads before normalizing); reflect: mirror "
     "without repeating the edge (needs padding < size)", 0},
};

static int random_crop_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    int64_t size = host->get_int(ctx, "size"); /* required: the host refused a missing one */
    int64_t padding = host->get_int(ctx, "padding");
    int reflect = strcmp(host->get_string(ctx, "padding_mode"), "reflect") == 0;
    if (reflect && padding >= size) {
        host->set_error(ctx, "padding_mode = reflect needs padding < size (the image size), got "
                        "padding = %lld and size = %lld", (long long)padding, (long long)size);
        return RN_ERR_CONFIG;
    }
    random_crop *r = host->alloc(sizeof *r);
    if (!r) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    r->host = host;
    r->ctx = ctx;
    r->size = size;
    r->padding = padding;
    r->reflect = reflect;
    *self = r;
    return RN_OK;
}

static void random_crop_destroy(void *self)
{
    random_crop *r = self;
    if (!r) return;
    r->host->free(r->scratch);
    r->host->free(r);
}

static void fill(float *p, int64_t n, float v)
{
    if (v == 0.0f) {
        memset(p, 0, (size_t)n * sizeof *p);
        return;
    }
    for (int64_t i = 0; i < n; i++) p[i] = v;
}

/* Moves one h x w plane in place so that out(y, x) = in(y + sy, x + sx), `pad` outside. Rows are
 * visited in the direction that reads each source row before it is overwritten. */
static void shift_plane(float *p, int64_t h, int64_t w, int64_t sy, int64_t sx, float pad)
{
    int64_t x0 = sx < 0 ? -sx : 0;           /* first output column with a source */
    int64_t x1 = sx > 0 ? w - sx : w;        /* one past the last */
    if (x1 < x0) x1 = x0;
    size_t keep = (size_t)(x1 - x0) * sizeof(float);
    for (int64_t k = 0; k < h; k++) {
        int64_t y = sy > 0 ? k : h - 1 - k;
        int64_t src = y + sy;
        float *row = p + y * w;
        if (src < 0 || src >= h || keep == 0) {
            fill(row, w, pad);
            continue;
        }
        memmove(row + x0, p + src * w + x0 + sx, keep);
        fill(row, x0, pad);
        fill(row + x1, w - x1, pad);
    }
}

/* out(y, x) = in(reflect(y + sy), reflect(x + sx)), through a copy of the plane. */
static void reflect_plane(float *p, float *copy, int64_t h, int64_t w, int64_t sy, int64_t sx)
{
    memcpy(copy, p, (size_t)(h * w) * sizeof *p);
    for (int64_t y = 0; y < h; y++) {
        const float *src = copy + rn_crop_src(y, h, sy, 1) * w;
        for (int64_t x = 0; x < w; x++) p[y * w + x] = src[rn_crop_src(x, w, sx, 1)];
    }
}

/* Refuses a size the batch cannot take; shared by apply() and device_plan(). */
static int random_crop_check(random_crop *r, const rn_batch *b)
{
    if (r->size > b->h + 2 * r->padding || r->size > b->w + 2 * r->padding) {
        r->host->set_error(r->ctx, "size %lld is larger than the padded image %lldx%lld (the "
                           "batch's %lldx%lld plus padding %lld on each side)",
                           (long long)r->size, (long long)(b->h + 2 * r->padding),
                           (long long)(b->w + 2 * r->padding), (long long)b->h, (long long)b->w,
                           (long long)r->padding);
        return RN_ERR_CONFIG;
    }
    if (r->size != b->h || r->size != b->w) {
        r->host->set_error(r->ctx, "size %lld must equal the batch's image size %lldx%lld (the "
                           "batch buffers are fixed; resizing crops are not supported yet)",
                           (long long)r->size, (long long)b->h, (long long)b->w);
        return RN_ERR_CONFIG;
    }
    return RN_OK;
}

/* Sample i's shift (out(y, x) = in(y + sy, x + sx)): its window's offset in the padded image. */
static void random_crop_shift(const random_crop *r, const rn_batch *b, int64_t i, int64_t *sy,
                              int64_t *sx)
{
    uint64_t range_y = (uint64_t)(b->h + 2 * r->padding - r->size + 1);
    uint64_t range_x = (uint64_t)(b->w + 2 * r->padding - r->size + 1);
    uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[i]);
    int64_t dy = (int64_t)(rn_uniform(key, 0) * (double)range_y);
    int64_t dx = (int64_t)(rn_uniform(key, 1) * (double)range_x);
    *sy = dy - r->padding;
    *sx = dx - r->padding;
}

static int random_crop_apply(void *self, rn_batch *b)
{
    random_crop *r = self;
    int rc = random_crop_check(r, b);
    if (rc) return rc;
    if (r->padding == 0)
        return RN_OK; /* the only window is the image itself */
    int64_t plane = b->h * b->w;
    if (r->reflect && !r->scratch) {
        r->scratch = r->host->alloc((size_t)plane * sizeof *r->scratch);
        if (!r->scratch) {
            r->host->set_error(r->ctx, "out of memory");
            return RN_ERR_NOMEM;
        }
    }
    const float *zero = b->struct_size >= offsetof(rn_batch, zero_value) + sizeof b->zero_value
                            ? b->zero_value : NULL;
    for (int64_t i = 0; i < b->n; i++) {
        int64_t sy, sx;
        random_crop_shift(r, b, i, &sy, &sx);
        if (sy == 0 && sx == 0) continue;
        for (int64_t ch = 0; ch < b->c; ch++)
            if (r->reflect)
                reflect_plane(b->x + (i * b->c + ch) * plane, r->scratch, b->h, b->w, sy, sx);
            else
                shift_plane(b->x + (i * b->c + ch) * plane, b->h, b->w, sy, sx, zero ? zero[ch] : 0.0f);
    }
    return RN_OK;
}

static int random_crop_plan(void *self, const rn_batch *b, rn_augment_op *op)
{
    random_crop *r = self;
    int rc = random_crop_check(r, b);
    if (rc) return rc;
    op->kind = RN_AUGMENT_OP_CROP;
    op->reflect = r->reflect;
    for (int64_t i = 0; i < b->n; i++) {
        int64_t sy = 0, sx = 0;
        if (r->padding > 0) random_crop_shift(r, b, i, &sy, &sx);
        op->shift[2 * i] = (int32_t)sy;
        op->shift[2 * i + 1] = (int32_t)sx;
    }
    return RN_OK;
}

static const rn_augment_api random_crop_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = random_crop_apply,
    .device_plan = random_crop_plan,
};

static const rn_plugin random_crop_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "random_crop",
    .version = "1.1.0",
    .summary = "random crop after zero or reflect padding (torchvision RandomCrop), per-sample "
               "offsets",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = random_crop_settings,
    .n_settings = sizeof random_crop_settings / sizeof random_crop_settings[0],
    .create = random_crop_create,
    .destroy = random_crop_destroy,
    .api = &random_crop_api,
};

static const rn_plugin *const random_crop_plugins[] = {&random_crop_plugin};

static const rn_library random_crop_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = random_crop_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &random_crop_library : NULL;
}
