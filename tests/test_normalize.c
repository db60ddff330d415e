/* normalize (plugins/augment/normalize.c) through the real loader: bit-equal to torchvision's
 * Normalize on a 3-channel batch, one value broadcast to every channel, zero_value and the
 * normalized flag updated, a batch already normalized refused, a channel-count mismatch named,
 * and std = 0 refused by the schema under the element's key path.
 *
 * PyTorch agreement: `expected` below is what torch computes for these inputs,
 *     x = torch.tensor(bytes, dtype=torch.uint8).view(2, 3, 2, 2).float().div(255)
 *     torchvision.transforms.Normalize(mean, std)(x)   # x.sub_(mean).div_(std) in float32
 * with mean and std converted to float32 first. The values were written out with Python's
 * struct module rounding every step to float32 (IEEE sub and div, as torch's CPU kernels), not
 * by running torch itself. They tell apart the obvious shortcuts: a multiply by 1/std differs
 * in 2 of the 24 values, one rounding of (x - mean) / std in double differs in 1.
 */
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

#define N 2
#define C 3
#define H 2
#define W 2
#define NUMEL (N * C * H * W)

static const double cifar_mean[C] = {0.4914, 0.4822, 0.4465};
static const double cifar_std[C] = {0.2470, 0.2435, 0.2616};

/* torch's output for bytes[i] = (37 i + 11) mod 256 in NCHW order (see the header). */
static const float expected[NUMEL] = {
    -0x1.d098a2p+0f, -0x1.3a3612p+0f, -0x1.47a7p-1f,   -0x1.ae1e12p-5f,
    0x1.292b4ap-1f,  0x1.2d2192p+0f,  0x1.c5ad8p+0f,   -0x1.c13bb8p+0f,
    -0x1.e2724ep-1f, -0x1.8cecd4p-2f, 0x1.5615e4p-3f,  0x1.71816p-1f,
    0x1.2b85b2p+0f,  0x1.c1e842p+0f,  -0x1.b835ap+0f,  -0x1.21d31p+0f,
    -0x1.078af4p-1f, 0x1.4c675cp-4f,  0x1.5aa4c8p-1f,  0x1.45de52p+0f,
    0x1.e03fdep+0f,  -0x1.683084p+0f, -0x1.b46522p-1f, -0x1.30d27cp-2f,
};
/* Normalize of a black pixel (0 - mean) / std, and of a host zero {0.1, 0.2, 0.3}. */
static const float expected_zero[C] = {-0x1.fd4e26p+0f, -0x1.faf42p+0f, -0x1.b4f122p+0f};
static const float expected_zero_from[C] = {-0x1.95a95cp+0f, -0x1.28afc8p+0f, -0x1.1eba52p-1f};

typedef struct fixture {
    float x[NUMEL];
    int32_t labels[N];
    int64_t ids[N];
    rn_batch b;
} fixture;

/* pixel/255 in float32 (torch's ToTensor: byte.float().div(255)), a batch not yet normalized. */
static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < NUMEL; i++) f->x[i] = (float)((37 * i + 11) % 256) / 255.0f;
    for (int i = 0; i < N; i++) f->ids[i] = i;
    f->b = (rn_batch){
        .struct_size = sizeof(rn_batch), .x = f->x, .n = N, .c = C, .h = H, .w = W,
        .labels = f->labels, .sample_ids = f->ids, .seed = 1, .zero_value = NULL,
        .normalized = 0,
    };
}

static rn_value *spec(const double *mean, size_t n_mean, const double *std, size_t n_std)
{
    return pt_list(pt_list(pt_spec("data.augment[1]", "normalize"), "mean", mean, n_mean), "std",
                   std, n_std);
}

static int apply(rn_instance *inst, rn_batch *b)
{
    return ((const rn_augment_api *)inst->plugin->api)->apply(inst->self, b);
}

static int contains(const char *s, const char *want)
{
    int ok = strstr(s, want) != NULL;
    if (!ok) fprintf(stderr, "  \"%s\" not in: %s\n", want, s);
    return ok;
}

static void torch_agreement(const rn_registry *reg)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(cifar_mean, C, cifar_std, C), NULL);
    fixture f;
    fixture_init(&f);
    float direct[NUMEL];
    for (int i = 0; i < NUMEL; i++) {
        int c = (i / (H * W)) % C;
        direct[i] = (f.x[i] - (float)cifar_mean[c]) / (float)cifar_std[c];
    }
    CHECK(apply(&inst, &f.b) == RN_OK);
    int same_torch = 1, same_direct = 1;
    for (int i = 0; i < NUMEL; i++) {
        same_torch &= f.x[i] == expected[i];
        same_direct &= f.x[i] == direct[i];
        if (f.x[i] != expected[i])
            fprintf(stderr, "  x[%d] = %a, torch %a\n", i, (double)f.x[i], (double)expected[i]);
    }
    CHECK(same_torch);
    CHECK(same_direct);
    CHECK(f.b.normalized == 1);
    CHECK(f.b.zero_value != NULL);
    if (f.b.zero_value)
        for (int c = 0; c < C; c++) CHECK(f.b.zero_value[c] == expected_zero[c]);

    /* A second batch reuses the same array; a host zero {0.1, 0.2, 0.3} is mapped too. */
    const float *first = f.b.zero_value;
    static const float host_zero[C] = {0.1f, 0.2f, 0.3f};
    fixture g;
    fixture_init(&g);
    g.b.zero_value = host_zero;
    CHECK(apply(&inst, &g.b) == RN_OK);
    CHECK(g.b.zero_value == first && g.b.zero_value != host_zero);
    for (int c = 0; c < C; c++) CHECK(g.b.zero_value[c] == expected_zero_from[c]);
    CHECK(memcmp(g.x, expected, sizeof g.x) == 0);
    rn_instance_destroy(&inst);
}

static void broadcast(const rn_registry *reg)
{
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_AUGMENT,
              pt_num(pt_num(pt_spec("data.augment[1]", "normalize"), "mean", 0.45), "std", 0.3),
              NULL);
    fixture f;
    fixture_init(&f);
    float direct[NUMEL];
    for (int i = 0; i < NUMEL; i++) direct[i] = (f.x[i] - 0.45f) / 0.3f;
    CHECK(apply(&inst, &f.b) == RN_OK);
    CHECK(memcmp(f.x, direct, sizeof f.x) == 0);
    CHECK(f.b.normalized == 1);
    for (int c = 0; c < C && f.b.zero_value; c++)
        CHECK(f.b.zero_value[c] == (0.0f - 0.45f) / 0.3f);
    rn_instance_destroy(&inst);

    /* One mean for all channels with a std per channel. */
    const double one[] = {0.5};
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(one, 1, cifar_std, C), NULL);
    fixture_init(&f);
    for (int i = 0; i < NUMEL; i++)
        direct[i] = (f.x[i] - 0.5f) / (float)cifar_std[(i / (H * W)) % C];
    CHECK(apply(&inst, &f.b) == RN_OK);
    CHECK(memcmp(f.x, direct, sizeof f.x) == 0);
    rn_instance_destroy(&inst);
}

static void refusals(const rn_registry *reg)
{
    rn_instance inst;
    fixture f;
    float before[NUMEL];

    /* Already normalized (data.normalize), or by an earlier normalize: the batch is untouched. */
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(cifar_mean, C, cifar_std, C), NULL);
    fixture_init(&f);
    f.b.normalized = 1;
    memcpy(before, f.x, sizeof before);
    CHECK(apply(&inst, &f.b) != RN_OK);
    CHECK(contains(rn_instance_error(&inst), "normalize: the batch is already normalized (by "
                   "data.normalize or an earlier normalize); keep one of them"));
    CHECK(memcmp(f.x, before, sizeof before) == 0);
    printf("  %s\n", rn_instance_error(&inst));
    rn_instance_destroy(&inst);

    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(cifar_mean, C, cifar_std, C), NULL);
    fixture_init(&f);
    CHECK(apply(&inst, &f.b) == RN_OK);
    CHECK(apply(&inst, &f.b) != RN_OK); /* the same batch twice: the flag stops it */
    CHECK(contains(rn_instance_error(&inst), "already normalized"));
    rn_instance_destroy(&inst);

    /* An ABI 1.0 batch (no normalized field) is always normalized by the loader. */
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(cifar_mean, C, cifar_std, C), NULL);
    fixture_init(&f);
    f.b.struct_size = offsetof(rn_batch, normalized);
    CHECK(apply(&inst, &f.b) != RN_OK);
    CHECK(contains(rn_instance_error(&inst), "already normalized"));
    rn_instance_destroy(&inst);

    /* A list that is neither one value nor one per channel. */
    const double two[] = {0.5, 0.5};
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(two, 2, cifar_std, 1), NULL);
    fixture_init(&f);
    memcpy(before, f.x, sizeof before);
    CHECK(apply(&inst, &f.b) == RN_ERR_CONFIG);
    CHECK(contains(rn_instance_error(&inst), "mean has 2 values but the images have 3 channels"));
    CHECK(memcmp(f.x, before, sizeof before) == 0 && f.b.normalized == 0);
    printf("  %s\n", rn_instance_error(&inst));
    rn_instance_destroy(&inst);
    pt_create(&inst, reg, RN_KIND_AUGMENT, spec(cifar_mean, 1, two, 2), NULL);
    fixture_init(&f);
    CHECK(apply(&inst, &f.b) == RN_ERR_CONFIG);
    CHECK(contains(rn_instance_error(&inst), "std has 2 values but the images have 3 channels"));
    rn_instance_destroy(&inst);

    /* Refused before any batch: the schema (std > 0, required lists) and mismatched lists. */
    char err[512];
    const double std0[] = {0.2470, 0, 0.2616};
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(cifar_mean, C, std0, C), err, sizeof err));
    CHECK(contains(err, "data.augment[1].std[2]: expected a number in (0, inf], got 0"));
    printf("  %s\n", err);
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_num(pt_num(pt_spec("data.augment[1]", "normalize"), "mean", 0.5),
                                 "std", 0),
                          err, sizeof err));
    CHECK(contains(err, "data.augment[1].std: expected a number in (0, inf], got 0"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT,
                          pt_num(pt_spec("data.augment[1]", "normalize"), "std", 0.5), err,
                          sizeof err));
    CHECK(contains(err, "data.augment[1].mean: missing"));
    CHECK(pt_create_fails(reg, RN_KIND_AUGMENT, spec(cifar_mean, C, two, 2), err, sizeof err));
    CHECK(contains(err, "mean has 3 values but std has 2"));
    printf("  %s\n", err);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    char err[512];
    const rn_plugin *p = rn_registry_find(reg, RN_KIND_AUGMENT, "normalize", "test", NULL, err,
                                          sizeof err);
    CHECK(p && strcmp(p->version, "1.0.0") == 0 && p->devices == RN_DEVICE_CPU);
    CHECK(p && ((const rn_augment_api *)p->api)->flags == RN_AUGMENT_EVAL);
    torch_agreement(reg);
    broadcast(reg);
    refusals(reg);
    rn_registry_free(reg);
    return rn_test_report("test_normalize");
}
