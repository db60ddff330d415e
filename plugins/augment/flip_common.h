/* What hflip and vflip share: the setting p, the per-sample coin
 * rn_uniform(rn_key3(batch->seed, batch->epoch, sample_id), 0) < p (so a sample's flip depends
 * only on (seed, epoch, sample id), never on its batch), and the plugin boilerplate. Each plugin
 * gives the flip of one sample and says RN_FLIP_PLUGIN(id, summary, fn). Header-only: each
 * plugin stays its own .so against include/runner/plugin.h alone. */
#ifndef RN_FLIP_COMMON_H
#define RN_FLIP_COMMON_H

#include <runner/plugin.h>

#include <stdint.h>

/* Flips one sample of c x h x w floats in place. */
typedef void (*flip_sample_fn)(float *x, int64_t c, int64_t h, int64_t w);

typedef struct flip {
    const rn_host *host;
    double p;
} flip;

static const rn_setting flip_settings[] = {
    {"p", RN_SETTING_NUMBER, 0.5, NULL, 0, 1, NULL, "probability of flipping a sample", 0},
};

static int flip_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    flip *f = host->alloc(sizeof *f);
    if (!f) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    f->host = host;
    f->p = host->get_number(ctx, "p");
    *self = f;
    return RN_OK;
}

static void flip_destroy(void *self)
{
    flip *f = self;
    if (f) f->host->free(f);
}

static int flip_apply_with(const flip *f, rn_batch *b, flip_sample_fn fn)
{
    int64_t sample = b->c * b->h * b->w;
    for (int64_t i = 0; i < b->n; i++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[i]);
        if (rn_uniform(key, 0) < f->p) fn(b->x + i * sample, b->c, b->h, b->w);
    }
    return RN_OK;
}

/* The same coins as the batch's device plan (plugin ABI 1.2): flip[i] for sample i. */
static int flip_plan_with(const flip *f, const rn_batch *b, rn_augment_op *op, int vertical)
{
    op->kind = RN_AUGMENT_OP_FLIP;
    op->vertical = vertical;
    for (int64_t i = 0; i < b->n; i++) {
        uint64_t key = rn_key3(b->seed, (uint64_t)b->epoch, (uint64_t)b->sample_ids[i]);
        op->flip[i] = rn_uniform(key, 0) < f->p;
    }
    return RN_OK;
}

/* The plugin `ID` (a string literal) flipping each sample with FN; VERTICAL: FN flips rows. */
#define RN_FLIP_PLUGIN(ID, SUMMARY, FN, VERTICAL)                                               \
    static int flip_apply(void *self, rn_batch *b) { return flip_apply_with(self, b, FN); }    \
    static int flip_plan(void *self, const rn_batch *b, rn_augment_op *op)                     \
    {                                                                                          \
        return flip_plan_with(self, b, op, VERTICAL);                                          \
    }                                                                                          \
    static const rn_augment_api flip_api = {.struct_size = sizeof(rn_augment_api),             \
                                            .apply = flip_apply, .device_plan = flip_plan};    \
    static const rn_plugin flip_plugin = {                                                     \
        .struct_size = sizeof(rn_plugin), .kind = RN_KIND_AUGMENT, .id = ID,                   \
        .version = "1.0.0", .summary = SUMMARY, .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,     \
        .settings = flip_settings, .n_settings = sizeof flip_settings / sizeof *flip_settings, \
        .create = flip_create, .destroy = flip_destroy, .api = &flip_api};                     \
    static const rn_plugin *const flip_plugins[] = {&flip_plugin};                             \
    static const rn_library flip_library = {                                                   \
        .struct_size = sizeof(rn_library), .abi_major = RN_ABI_MAJOR,                          \
        .abi_minor = RN_ABI_MINOR, .build_signature = RN_BUILD_SIGNATURE_CPU,                  \
        .plugins = flip_plugins, .n_plugins = 1};                                              \
    RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)                           \
    {                                                                                          \
        return host->abi_major == RN_ABI_MAJOR ? &flip_library : NULL;                         \
    }

#endif
