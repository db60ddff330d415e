// kernels/augment_kernels.cu run on the CPU (tests/cuda_emu), through its rn_cuda_* launchers,
// against the augmentation plugins (loaded from RN_PLUGIN_DIR, as the runner loads them) on the
// same batch: 13 samples of 3 x 23 x 19 (17043 pixels: 67 blocks, the last with 13 threads past
// the end; not square, so a swapped height and width shows) or 3 x 23 x 23 for random_crop,
// with the same seed, epoch and sample ids, so the same draws. Each kernel gets the per-sample
// parameters the plugin's host code draws (the documented formulas, and mix_plan itself for
// CutMix/Mixup) and reads the batch as it was; its output must equal the plugin's bit for bit (tolerance 0: every pixel is a copy, a fill, or the same float expression):
//   - cutmix_or_mixup in modes elem and batch (CutMix boxes, Mixup blends, kept samples; the
//     soft targets too);
//   - hflip and vflip at p = 0.5;
//   - random_crop with zero padding 4 and 30 (past the image: whole rows of fill) and reflect
//     padding 4 and 22 (the largest), with a per-channel zero_value;
//   - random_erasing with value zero and random (its boxes read from the zero run, whose input
//     has no zeros; the random run must then match the kernel's noise at every box pixel);
//   - every plugin's device_plan through rn_cuda_augment against its apply(), random_resized_crop
//     (plugin ABI 1.3: bilinear resize of a per-sample box) included.
// Empty images (a zero height, width or channel count) or zero classes launch nothing and
// succeed: CUDA refuses a grid of 0 blocks, which the launchers used to ask for there.
// Each case also checks that it did something (some samples flipped, moved, erased, mixed) so
// that a no-op kernel could not pass.
#include "cuda_emu.h"

#include "../kernels/augment_kernels.cu"

#include <cstring>
#include <vector>

#include "emu_plugins.h"
#include "rn_test.h"

namespace {

constexpr int64_t N = 13, C = 3, K = 10;
int64_t H = 23, W = 19, S = C * H * W;  // random_crop needs square images: set_image(23, 23)
constexpr uint64_t kSeed = 0x5eed;
constexpr int64_t kEpoch = 3;
const float kZero[C] = {-1.25f, -0.5f, -2.0f};

int64_t ids[N];

void set_image(int64_t h, int64_t w)
{
    H = h, W = w, S = C * h * w;
}

std::vector<float> batch_x()
{
    std::vector<float> x(N * S);
    uint32_t s = 17;
    for (float &v : x) {
        s = s * 1664525u + 1013904223u;
        v = 0.25f + static_cast<float>((s >> 8) * (1.0 / 16777216.0));  // never 0
    }
    return x;
}

// The batch's labels (sample id mod K) into labels, and their one-hot soft targets.
std::vector<float> one_hot(std::vector<int32_t> &labels)
{
    labels.assign(N, 0);
    std::vector<float> t(N * K, 0.0f);
    for (int64_t i = 0; i < N; i++) {
        labels[i] = static_cast<int32_t>(ids[i] % K);
        t[i * K + labels[i]] = 1.0f;
    }
    return t;
}

rn_batch make_batch(float *x, float *soft = nullptr, const int32_t *labels = nullptr)
{
    rn_batch b;
    std::memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    b.x = x;
    b.n = N, b.c = C, b.h = H, b.w = W;
    b.labels = labels;
    b.soft_targets = soft;
    b.classes = soft ? K : 0;
    b.sample_ids = ids;
    b.epoch = kEpoch;
    b.seed = kSeed;
    b.zero_value = kZero;
    b.normalized = 1;
    return b;
}

uint64_t sample_key(int64_t i)
{
    return rn_key3(kSeed, static_cast<uint64_t>(kEpoch), static_cast<uint64_t>(ids[i]));
}

bool same(const std::vector<float> &a, const std::vector<float> &b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

int samples_changed(const std::vector<float> &a, const std::vector<float> &b)
{
    int changed = 0;
    for (int64_t i = 0; i < N; i++)
        changed += std::memcmp(&a[i * S], &b[i * S], S * 4) != 0;
    return changed;
}

// ---- CutMix / Mixup ----
void check_mix(void *reg, bool elem)
{
    const std::vector<float> x0 = batch_x();
    std::vector<int32_t> labels;
    const std::vector<float> t0 = one_hot(labels);
    std::vector<float> x_cpu = x0, t_cpu = t0;
    rn_batch b = make_batch(x_cpu.data(), t_cpu.data(), labels.data());
    const emu_setting set[] = {{"prob", 'n', elem ? 0.8 : 1.0, nullptr},
                               {"switch_prob", 'n', 0.5, nullptr},
                               {"cutmix_alpha", 'n', 1.0, nullptr},
                               {"mixup_alpha", 'n', 0.4, nullptr},
                               {"correct_lam", 'b', 1, nullptr},
                               {"mode", 's', 0, elem ? "elem" : "batch"}};
    CHECK(emu_augment_apply(reg, "cutmix_or_mixup", set, 6, &b) == RN_OK);

    std::vector<float> x0c = x0, t0c = t0;
    rn_batch b0 = make_batch(x0c.data(), t0c.data(), labels.data());
    std::vector<rn_mix_sample> plan(N);
    CHECK(emu_mix_plan(elem ? 0.8 : 1.0, 0.5, 1.0, 0.4, 1, elem, &b0, plan.data()) == 0);
    int modes[3] = {0, 0, 0};
    for (const rn_mix_sample &p : plan) modes[p.mode]++;
    std::vector<float> x_dev(N * S, -7.0f), t_dev(N * K, -7.0f);
    char err[256] = "";
    CHECK(rn_cuda_mix(x0.data(), x_dev.data(), t0.data(), t_dev.data(), plan.data(), N, C, H, W, K,
                      nullptr, err, sizeof err) == 0);
    CHECK(same(x_dev, x_cpu));
    CHECK(same(t_dev, t_cpu));
    CHECK(samples_changed(x_dev, x0) > 0);
    if (elem) CHECK(modes[RN_MIX_PASTE] > 0 && modes[RN_MIX_BLEND] > 0);
    std::printf("  cutmix_or_mixup mode %-5s: %d kept, %d blended, %d pasted: x and targets "
                "equal the plugin's\n", elem ? "elem" : "batch", modes[RN_MIX_KEEP],
                modes[RN_MIX_BLEND], modes[RN_MIX_PASTE]);
}

// ---- flips ----
void check_flip(void *reg, int vertical)
{
    const std::vector<float> x0 = batch_x();
    std::vector<float> x_cpu = x0;
    rn_batch b = make_batch(x_cpu.data());
    const emu_setting set[] = {{"p", 'n', 0.5, nullptr}};
    CHECK(emu_augment_apply(reg, vertical ? "vflip" : "hflip", set, 1, &b) == RN_OK);
    std::vector<uint8_t> flip(N);
    int flipped = 0;
    for (int64_t i = 0; i < N; i++) flipped += flip[i] = rn_uniform(sample_key(i), 0) < 0.5;
    std::vector<float> x_dev(N * S, -7.0f);
    char err[256] = "";
    CHECK(rn_cuda_flip(x0.data(), x_dev.data(), flip.data(), vertical, N, C, H, W, nullptr, err,
                       sizeof err) == 0);
    CHECK(same(x_dev, x_cpu));
    CHECK(flipped > 0 && flipped < N);
    CHECK(samples_changed(x_dev, x0) == flipped);
    std::printf("  %s: %d of %d flipped, equal to the plugin's\n", vertical ? "vflip" : "hflip",
                flipped, static_cast<int>(N));
}

// ---- random_crop ----
void check_crop(void *reg, int padding, bool reflect)
{
    const std::vector<float> x0 = batch_x();
    std::vector<float> x_cpu = x0;
    rn_batch b = make_batch(x_cpu.data());
    const emu_setting set[] = {{"size", 'i', static_cast<double>(H), nullptr},
                               {"padding", 'i', static_cast<double>(padding), nullptr},
                               {"padding_mode", 's', 0, reflect ? "reflect" : "zero"}};
    CHECK(emu_augment_apply(reg, "random_crop", set, 3, &b) == RN_OK);
    std::vector<int32_t> shift(2 * N);
    const double range = 2 * padding + 1;  // size == H == W
    for (int64_t i = 0; i < N; i++) {
        shift[2 * i] = static_cast<int32_t>(rn_uniform(sample_key(i), 0) * range) - padding;
        shift[2 * i + 1] = static_cast<int32_t>(rn_uniform(sample_key(i), 1) * range) - padding;
    }
    std::vector<float> x_dev(N * S, -7.0f);
    char err[256] = "";
    CHECK(rn_cuda_crop(x0.data(), x_dev.data(), shift.data(), reflect, kZero, N, C, H, W, nullptr,
                       err, sizeof err) == 0);
    CHECK(same(x_dev, x_cpu));
    const int moved = samples_changed(x_dev, x0);
    CHECK(moved > 0);
    std::printf("  random_crop padding %2d %-7s: %d of %d moved, equal to the plugin's\n", padding,
                reflect ? "reflect" : "zero", moved, static_cast<int>(N));
}

// ---- random_erasing ----
void check_erase(void *reg)
{
    const std::vector<float> x0 = batch_x();
    std::vector<float> x_zero = x0, x_rand = x0;
    rn_batch bz = make_batch(x_zero.data()), br = make_batch(x_rand.data());
    const emu_setting zero[] = {{"p", 'n', 0.7, nullptr}, {"value", 's', 0, "zero"}};
    const emu_setting rand[] = {{"p", 'n', 0.7, nullptr}, {"value", 's', 0, "random"}};
    CHECK(emu_augment_apply(reg, "random_erasing", zero, 2, &bz) == RN_OK);
    CHECK(emu_augment_apply(reg, "random_erasing", rand, 2, &br) == RN_OK);
    // the boxes: the zeros of the zero run (the input has none), a rectangle in every channel
    std::vector<rn_erase_box> box(N);
    int erased = 0, not_boxes = 0;
    for (int64_t i = 0; i < N; i++) {
        int y0 = static_cast<int>(H), y1 = -1, x0_ = static_cast<int>(W), x1 = -1;
        int64_t zeros = 0;
        for (int64_t at = 0; at < S; at++)
            if (x_zero[i * S + at] == 0.0f) {
                zeros++;
                const int y = static_cast<int>(at / W % H), xx = static_cast<int>(at % W);
                y0 = std::min(y0, y), y1 = std::max(y1, y);
                x0_ = std::min(x0_, xx), x1 = std::max(x1, xx);
            }
        rn_erase_box bx{sample_key(i), 0, 0, 0, 0};
        if (zeros) {
            bx.y = y0, bx.x = x0_, bx.h = y1 - y0 + 1, bx.w = x1 - x0_ + 1;
            not_boxes += zeros != C * bx.h * bx.w;
            erased++;
        }
        box[i] = bx;
    }
    CHECK(not_boxes == 0);
    CHECK(erased > 0 && erased < N);
    for (int random = 0; random <= 1; random++) {
        std::vector<float> x_dev = x0;
        char err[256] = "";
        CHECK(rn_cuda_erase(x_dev.data(), box.data(), random, N, C, H, W, nullptr, err,
                            sizeof err) == 0);
        CHECK(same(x_dev, random ? x_rand : x_zero));
    }
    std::printf("  random_erasing zero and random: %d of %d erased, equal to the plugin's\n",
                erased, static_cast<int>(N));
}

// Empty images or targets launch nothing (a grid of 0 blocks is a launch error in CUDA).
void check_empty()
{
    char err[256] = "";
    std::vector<float> x0 = batch_x(), x = x0, t(N * K, 0.0f);
    std::vector<uint8_t> flip(N, 1);
    std::vector<int32_t> shift(2 * N, 1);
    std::vector<rn_erase_box> box(N, rn_erase_box{1, 0, 0, 1, 1});
    std::vector<rn_mix_sample> plan(N, rn_mix_sample{RN_MIX_BLEND, 0, 0.5f, 0.5f, 0, 0, 0, 0});
    CHECK(rn_cuda_flip(x0.data(), x.data(), flip.data(), 0, N, C, H, 0, nullptr, err,
                       sizeof err) == 0);
    CHECK(rn_cuda_crop(x0.data(), x.data(), shift.data(), 0, kZero, N, 0, H, W, nullptr, err,
                       sizeof err) == 0);
    CHECK(rn_cuda_erase(x.data(), box.data(), 0, N, C, 0, W, nullptr, err, sizeof err) == 0);
    CHECK(same(x, x0));
    CHECK(rn_cuda_mix(x0.data(), x.data(), t.data(), t.data(), plan.data(), N, C, H, W, 0, nullptr,
                      err, sizeof err) == 0);
    CHECK(x[S] == x0[S] * 0.5f + x0[0] * 0.5f);  // the pixels were mixed, the empty targets not
    CHECK(rn_cuda_mix(x0.data(), x.data(), t.data(), t.data(), plan.data(), N, C, 0, W, K, nullptr,
                      err, sizeof err) == 0);
    if (err[0]) std::printf("  %s\n", err);
}

// ---- the device path as the host runs it (plugin ABI 1.2) ----
// The plugin's device_plan on a batch without pixels, then rn_cuda_augment (the backend's
// dispatch: the copy to scratch, the kernel of the plan's kind) must give what apply() gives on
// the CPU, pixels and soft targets, bit for bit.
void check_device_path(void *reg, const char *id, const emu_setting *set, int n_set, bool soft)
{
    const std::vector<float> x0 = batch_x();
    std::vector<int32_t> labels;
    const std::vector<float> t0 = one_hot(labels);
    std::vector<float> x_cpu = x0, t_cpu = t0;
    rn_batch b = make_batch(x_cpu.data(), soft ? t_cpu.data() : nullptr, labels.data());
    CHECK(emu_augment_apply(reg, id, set, n_set, &b) == RN_OK);

    rn_batch meta = make_batch(nullptr, nullptr, labels.data());  // no pixels on the host
    meta.classes = soft ? K : 0;
    std::vector<uint8_t> flip(N, 0xee);
    std::vector<int32_t> shift(2 * N, -999);
    std::vector<rn_erase_box> erase(N);
    std::vector<rn_mix_sample> mix(N);
    std::vector<int32_t> box(4 * N, -999);
    rn_augment_op op;
    std::memset(&op, 0, sizeof op);
    op.struct_size = sizeof op;
    op.kind = static_cast<rn_augment_op_kind>(-1);
    op.flip = flip.data(), op.shift = shift.data(), op.erase = erase.data(), op.mix = mix.data();
    op.box = box.data();
    CHECK(emu_augment_device_plan(reg, id, set, n_set, &meta, &op) == RN_OK);
    std::vector<float> x = x0, t = t0, xs(N * S, -3.0f), ts(N * K, -3.0f);
    char err[256] = "";
    CHECK(rn_cuda_augment(&op, x.data(), xs.data(), t.data(), ts.data(), kZero, N, C, H, W,
                          soft ? K : 0, nullptr, err, sizeof err) == 0);
    CHECK(same(x, x_cpu));
    if (soft) CHECK(same(t, t_cpu));
    int changed = samples_changed(x, x0);
    CHECK(changed > 0);
    std::printf("  %-16s device_plan (kind %d) + rn_cuda_augment: %d of %lld samples changed, "
                "equal to apply()%s\n", id, static_cast<int>(op.kind), changed,
                static_cast<long long>(N), err[0] ? err : "");
}

void check_device_paths(void *reg)
{
    const emu_setting flip[] = {{"p", 'n', 0.5, nullptr}};
    check_device_path(reg, "hflip", flip, 1, false);
    check_device_path(reg, "vflip", flip, 1, false);
    const emu_setting zero[] = {{"p", 'n', 0.7, nullptr}, {"value", 's', 0, "zero"}};
    const emu_setting noise[] = {{"p", 'n', 0.7, nullptr}, {"value", 's', 0, "random"}};
    check_device_path(reg, "random_erasing", zero, 2, false);
    check_device_path(reg, "random_erasing", noise, 2, false);
    const emu_setting cm[] = {{"alpha", 'n', 1.0, nullptr}};
    check_device_path(reg, "cutmix", cm, 1, true);
    const emu_setting mu[] = {{"alpha", 'n', 0.4, nullptr}, {"mode", 's', 0, "elem"}};
    check_device_path(reg, "mixup", mu, 2, true);
    const emu_setting both[] = {{"prob", 'n', 0.8, nullptr}, {"mode", 's', 0, "elem"}};
    check_device_path(reg, "cutmix_or_mixup", both, 2, true);
    set_image(23, 23);
    const emu_setting crop[] = {{"size", 'i', 23, nullptr}, {"padding", 'i', 4, nullptr}};
    check_device_path(reg, "random_crop", crop, 2, false);
    const emu_setting reflect[] = {{"size", 'i', 23, nullptr}, {"padding", 'i', 6, nullptr},
                                   {"padding_mode", 's', 0, "reflect"}};
    check_device_path(reg, "random_crop", reflect, 3, false);
    // random_resized_crop (plugin ABI 1.3): torchvision's defaults, and a narrow range of scales
    // and ratios, so that most boxes are drawn (not the central fallback)
    const emu_setting rrc[] = {{"size", 'i', 23, nullptr}};
    check_device_path(reg, "random_resized_crop", rrc, 1, false);
    const emu_setting rrc2[] = {{"size", 'i', 23, nullptr}, {"scale_min", 'n', 0.3, nullptr},
                                {"scale_max", 'n', 0.6, nullptr}, {"ratio_min", 'n', 0.5, nullptr},
                                {"ratio_max", 'n', 2.0, nullptr}};
    check_device_path(reg, "random_resized_crop", rrc2, 5, false);
    set_image(23, 19);
}

}  // namespace

int main()
{
    for (int64_t i = 0; i < N; i++) ids[i] = 1000 + 7919 * i % 997;
    void *reg = emu_registry_open();
    check_mix(reg, true);
    check_mix(reg, false);
    check_flip(reg, 0);
    check_flip(reg, 1);
    check_erase(reg);
    check_empty();
    check_device_paths(reg);
    set_image(23, 23);
    check_crop(reg, 4, false);
    check_crop(reg, 30, false);
    check_crop(reg, 4, true);
    check_crop(reg, 22, true);
    emu_registry_close(reg);
    return rn_test_report("test_kernels_emu_augment");
}
