/* vflip — mirrors each sample top-bottom with probability p (torchvision RandomVerticalFlip).
 * The coin is rn_uniform(rn_key3(batch->seed, batch->epoch, sample_id), 0) < p, so a sample's flip
 * depends only on (seed, epoch, sample id), never on the batch it is in. */
#include <runner/plugin.h>

#include <stdint.h>

typedef struct vflip {
    const rn_host *host;
    double p;
} vflip;

static const rn_setting vflip_settings[] = {
    {"p", RN_SETTING_NUMBER, 0.5, NULL, 0, 1, NULL, "probability of flipping a sample", 0},
};

static int vflip_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    vflip *f = host->alloc(sizeof *f);
    if (!f) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    f->host = host;
    f->p = host->get_number(ctx, "p");
    *self = f;
    return RN_OK;
}

static void vflip_destroy(void *self)
{
    vflip *f = self;
    if (f) f->host->free(f);
}

static int vflip_apply(void *self, rn_batch *b)
{
    const vflip *f = self;
    int64_t w = b->w;
    for (int64_t i = 0; i < b->n; i++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[i]);
        if (!(rn_uniform(key, 0) < f->p)) continue;
        for (int64_t ch = 0; ch < b->c; ch++) {
            float *plane = b->x + (i * b->c + ch) * b->h * w;
            for (int64_t lo = 0, hi = b->h - 1; lo < hi; lo++, hi--) {
                float *top = plane + lo * w, *bottom = plane + hi * w;
                for (int64_t x = 0; x < w; x++) {
                    float t = top[x];
                    top[x] = bottom[x];
                    bottom[x] = t;
                }
            }
        }
    }
    return RN_OK;
}

static const rn_augment_api vflip_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = vflip_apply,
};

static const rn_plugin vflip_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "vflip",
    .version = "1.0.0",
    .summary = "random vertical flip with probability p, per sample",
    .devices = RN_DEVICE_CPU,
    .settings = vflip_settings,
    .n_settings = sizeof vflip_settings / sizeof vflip_settings[0],
    .create = vflip_create,
    .destroy = vflip_destroy,
    .api = &vflip_api,
};

static const rn_plugin *const vflip_plugins[] = {&vflip_plugin};

static const rn_library vflip_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = vflip_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &vflip_library : NULL;
}
