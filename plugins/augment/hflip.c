/* hflip — mirrors each sample left-right with probability p (torchvision RandomHorizontalFlip).
 * The coin is rn_uniform(rn_key3(batch->seed, batch->epoch, sample_id), 0) < p, so a sample's flip
 * depends only on (seed, epoch, sample id), never on the batch it is in. */
#include <runner/plugin.h>

#include <stdint.h>

typedef struct hflip {
    const rn_host *host;
    double p;
} hflip;

static const rn_setting hflip_settings[] = {
    {"p", RN_SETTING_NUMBER, 0.5, NULL, 0, 1, NULL, "probability of flipping a sample", 0},
};

static int hflip_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    hflip *f = host->alloc(sizeof *f);
    if (!f) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    f->host = host;
    f->p = host->get_number(ctx, "p");
    *self = f;
    return RN_OK;
}

static void hflip_destroy(void *self)
{
    hflip *f = self;
    if (f) f->host->free(f);
}

static int hflip_apply(void *self, rn_batch *b)
{
    const hflip *f = self;
    int64_t rows = b->c * b->h;
    for (int64_t i = 0; i < b->n; i++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[i]);
        if (!(rn_uniform(key, 0) < f->p)) continue;
        float *x = b->x + i * rows * b->w;
        for (int64_t r = 0; r < rows; r++, x += b->w) {
            for (int64_t lo = 0, hi = b->w - 1; lo < hi; lo++, hi--) {
                float t = x[lo];
                x[lo] = x[hi];
                x[hi] = t;
            }
        }
    }
    return RN_OK;
}

static const rn_augment_api hflip_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = hflip_apply,
};

static const rn_plugin hflip_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "hflip",
    .version = "1.0.0",
    .summary = "random horizontal flip with probability p, per sample",
    .devices = RN_DEVICE_CPU,
    .settings = hflip_settings,
    .n_settings = sizeof hflip_settings / sizeof hflip_settings[0],
    .create = hflip_create,
    .destroy = hflip_destroy,
    .api = &hflip_api,
};

static const rn_plugin *const hflip_plugins[] = {&hflip_plugin};

static const rn_library hflip_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = hflip_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &hflip_library : NULL;
}
