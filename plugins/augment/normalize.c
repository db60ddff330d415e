/* normalize — torchvision's Normalize(mean, std) as an augment step, for a list that works on
 * pixel/255 (no data.normalize) and normalizes at a chosen place, e.g. before random_erasing.
 *
 * x = (x - mean[c]) / std[c] in float32, the two roundings of torch's tensor.sub_(mean).div_(std)
 * with mean and std converted to float32 first (torchvision's F.normalize), so the batch is
 * bit-equal to torch's. A list of one value serves every channel; otherwise it has one per
 * channel. Afterwards batch->normalized is 1 and batch->zero_value points at what black became,
 * (zero[c] - mean[c]) / std[c] computed the same way.
 */
#include <runner/plugin.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct normalize {
    const rn_host *host;
    rn_ctx *ctx; /* for set_error in apply */
    float mean[RN_MAX_SETTING_NUMBERS], std[RN_MAX_SETTING_NUMBERS];
    size_t n_mean, n_std;
    float *zero;        /* what black became: batch->zero_value for the plugins after this one
                           (read during the same list run, on this thread) */
    int64_t zero_cap;   /* floats zero holds */
} normalize;

static const rn_setting normalize_settings[] = {
    {"mean", RN_SETTING_NUMBERS, 0, NULL, 1, 0, NULL,
     "per-channel mean of pixel/255 to subtract (one value for all channels, or one per channel)",
     RN_SETTING_REQUIRED},
    {"std", RN_SETTING_NUMBERS, 0, NULL, 0, INFINITY, NULL,
     "per-channel standard deviation of pixel/255 to divide by (one value, or one per channel)",
     RN_SETTING_REQUIRED | RN_SETTING_MIN_EXCLUSIVE},
};

static int normalize_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    if (host->struct_size < offsetof(rn_host, get_numbers) + sizeof host->get_numbers) {
        host->set_error(ctx, "this runner's plugin ABI is older than 1.1 (no get_numbers)");
        return RN_ERR;
    }
    double mean[RN_MAX_SETTING_NUMBERS], std[RN_MAX_SETTING_NUMBERS];
    size_t n_mean = host->get_numbers(ctx, "mean", mean, RN_MAX_SETTING_NUMBERS);
    size_t n_std = host->get_numbers(ctx, "std", std, RN_MAX_SETTING_NUMBERS);
    if (n_mean > 1 && n_std > 1 && n_mean != n_std) {
        host->set_error(ctx, "mean has %zu values but std has %zu (expected one value or the "
                        "same count, one per channel)", n_mean, n_std);
        return RN_ERR_CONFIG;
    }
    normalize *nz = host->alloc(sizeof *nz);
    if (!nz) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    nz->host = host;
    nz->ctx = ctx;
    /* float32 first, as torchvision's torch.as_tensor(mean, dtype=tensor.dtype) */
    for (size_t k = 0; k < n_mean; k++) nz->mean[k] = (float)mean[k];
    for (size_t k = 0; k < n_std; k++) nz->std[k] = (float)std[k];
    nz->n_mean = n_mean;
    nz->n_std = n_std;
    *self = nz;
    return RN_OK;
}

static void normalize_destroy(void *self)
{
    normalize *nz = self;
    if (!nz) return;
    nz->host->free(nz->zero);
    nz->host->free(nz);
}

/* What black became, (old_zero[c] - mean[c]) / std[c], in nz->zero; NULL when out of memory. */
static const float *zero_after(normalize *nz, const float *old_zero, int64_t c)
{
    if (nz->zero_cap < c) {
        nz->host->free(nz->zero);
        nz->zero = nz->host->alloc((size_t)c * sizeof *nz->zero);
        nz->zero_cap = nz->zero ? c : 0;
        if (!nz->zero) return NULL;
    }
    for (int64_t ch = 0; ch < c; ch++) {
        float m = nz->mean[nz->n_mean == 1 ? 0 : ch], s = nz->std[nz->n_std == 1 ? 0 : ch];
        nz->zero[ch] = ((old_zero ? old_zero[ch] : 0.0f) - m) / s;
    }
    return nz->zero;
}

static int normalize_apply(void *self, rn_batch *b)
{
    normalize *nz = self;
    const rn_host *host = nz->host;
    if (b->struct_size < offsetof(rn_batch, normalized) + sizeof b->normalized) {
        host->set_error(nz->ctx, "the batch is already normalized (this runner's batches predate "
                        "ABI 1.1 and are always normalized by the loader)");
        return RN_ERR;
    }
    if (b->normalized) {
        host->set_error(nz->ctx, "the batch is already normalized (by data.normalize or an "
                        "earlier normalize); keep one of them");
        return RN_ERR;
    }
    const char *name[2] = {"mean", "std"};
    size_t count[2] = {nz->n_mean, nz->n_std};
    for (int k = 0; k < 2; k++) {
        if (count[k] == 1 || (int64_t)count[k] == b->c) continue;
        host->set_error(nz->ctx, "%s has %zu values but the images have %lld channel%s "
                        "(expected one value or one per channel)", name[k], count[k],
                        (long long)b->c, b->c == 1 ? "" : "s");
        return RN_ERR_CONFIG;
    }
    const float *zero = zero_after(nz, b->zero_value, b->c);
    if (!zero) {
        host->set_error(nz->ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    int64_t plane = b->h * b->w;
    for (int64_t n = 0; n < b->n; n++) {
        for (int64_t ch = 0; ch < b->c; ch++) {
            float m = nz->mean[nz->n_mean == 1 ? 0 : ch], s = nz->std[nz->n_std == 1 ? 0 : ch];
            float *x = b->x + (n * b->c + ch) * plane;
            /* two roundings, sub then div, as torch: not a multiply by 1/s */
            for (int64_t i = 0; i < plane; i++) x[i] = (x[i] - m) / s;
        }
    }
    b->normalized = 1;
    b->zero_value = zero;
    return RN_OK;
}

static const rn_augment_api normalize_api = {
    .struct_size = sizeof(rn_augment_api),
    .apply = normalize_apply,
    .flags = RN_AUGMENT_EVAL,
};

static const rn_plugin normalize_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_AUGMENT,
    .id = "normalize",
    .version = "1.0.0",
    .summary = "x = (x - mean) / std per channel (torchvision Normalize), as a step of the list",
    .devices = RN_DEVICE_CPU,
    .settings = normalize_settings,
    .n_settings = sizeof normalize_settings / sizeof normalize_settings[0],
    .create = normalize_create,
    .destroy = normalize_destroy,
    .api = &normalize_api,
};

static const rn_plugin *const normalize_plugins[] = {&normalize_plugin};

static const rn_library normalize_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = normalize_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &normalize_library : NULL;
}
