// Augmentations on the device: one thread per output element, each reading the batch as it was
// (x0) and computing its value with augment_elem.h, the functions the CPU plugins run.
#include "augment_kernels.h"

#include <cstdio>

#include "launch.cuh"

namespace {

using rn::blocks_for;
using rn::kThreads;

__global__ void mix_pixels(const float *x0, float *x, const rn_mix_sample *plan, int64_t n,
                           int64_t c, int64_t h, int64_t w)
{
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t sample = c * h * w;
    if (e >= n * sample) return;
    const int64_t i = e / sample, at = e % sample, y = (at / w) % h, xx = at % w;
    const rn_mix_sample p = plan[i];
    x[e] = rn_mix_pixel(&p, x0[e], x0[p.partner * sample + at], y, xx);
}

__global__ void mix_targets(const float *t0, float *t, const rn_mix_sample *plan, int64_t n,
                            int64_t classes)
{
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (e >= n * classes) return;
    const int64_t i = e / classes, k = e % classes;
    const rn_mix_sample p = plan[i];
    t[e] = rn_mix_target(&p, t0[e], t0[p.partner * classes + k]);
}

__global__ void flip_pixels(const float *x0, float *x, const uint8_t *flip, int vertical,
                            int64_t n, int64_t c, int64_t h, int64_t w)
{
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t plane = h * w;
    if (e >= n * c * plane) return;
    const int64_t i = e / (c * plane), base = e - e % plane, at = e % plane;
    const int64_t y = at / w, xx = at % w;
    const int f = flip[i] != 0;
    const int64_t sy = vertical ? rn_flip_src(y, h, f) : y;
    const int64_t sx = vertical ? xx : rn_flip_src(xx, w, f);
    x[e] = x0[base + sy * w + sx];
}

__global__ void crop_pixels(const float *x0, float *x, const int32_t *shift, int reflect,
                            const float *zero_value, int64_t n, int64_t c, int64_t h, int64_t w)
{
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t plane = h * w;
    if (e >= n * c * plane) return;
    const int64_t i = e / (c * plane), ch = (e / plane) % c, at = e % plane;
    const int64_t sy = rn_crop_src(at / w, h, shift[2 * i], reflect);
    const int64_t sx = rn_crop_src(at % w, w, shift[2 * i + 1], reflect);
    x[e] = sy < 0 || sx < 0 ? zero_value[ch] : x0[e - at + sy * w + sx];
}

__global__ void resized_crop_pixels(const float *x0, float *x, const int32_t *box, int64_t n,
                                    int64_t c, int64_t h, int64_t w)
{
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t plane = h * w;
    if (e >= n * c * plane) return;
    const int64_t i = e / (c * plane), at = e % plane;
    const int32_t *b = box + 4 * i;
    if (b[2] == h && b[3] == w) return;  // the whole image: the sample stays as it is
    x[e] = rn_resized_crop_pixel(x0 + (e - at), h, w, b[0], b[1], b[2], b[3], at / w, at % w);
}

__global__ void erase_pixels(float *x, const rn_erase_box *box, int random, int64_t n, int64_t c,
                             int64_t h, int64_t w)
{
    const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t plane = h * w;
    if (e >= n * c * plane) return;
    const int64_t i = e / (c * plane), ch = (e / plane) % c, at = e % plane;
    const rn_erase_box b = box[i];
    const int64_t y = at / w - b.y, xx = at % w - b.x;
    if (y < 0 || y >= b.h || xx < 0 || xx >= b.w) return;
    const uint64_t t = static_cast<uint64_t>((ch * b.h + y) * b.w + xx);
    x[e] = random ? rn_erase_normal(b.key, t) : 0.0f;
}

}  // namespace

extern "C" int rn_cuda_mix(const float *x0, float *x, const float *t0, float *t,
                           const rn_mix_sample *plan, int64_t n, int64_t c, int64_t h, int64_t w,
                           int64_t classes, void *stream, char *err, size_t len)
{
    if (n <= 0) return 0;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (c * h * w > 0) {  // a grid of 0 blocks is a launch error: launch only what has elements
        RN_LAUNCH(mix_pixels, blocks_for(n * c * h * w), kThreads, s)(x0, x, plan, n, c, h, w);
        if (rn::launch_check("mix launch", err, len)) return -1;
    }
    if (classes <= 0) return 0;
    RN_LAUNCH(mix_targets, blocks_for(n * classes), kThreads, s)(t0, t, plan, n, classes);
    return rn::launch_check("mix targets launch", err, len);
}

extern "C" int rn_cuda_flip(const float *x0, float *x, const uint8_t *flip, int vertical,
                            int64_t n, int64_t c, int64_t h, int64_t w, void *stream, char *err,
                            size_t len)
{
    if (n <= 0 || c * h * w <= 0) return 0;  // a grid of 0 blocks is a launch error
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    RN_LAUNCH(flip_pixels, blocks_for(n * c * h * w), kThreads, s)(
        x0, x, flip, vertical, n, c, h, w);
    return rn::launch_check("flip launch", err, len);
}

extern "C" int rn_cuda_crop(const float *x0, float *x, const int32_t *shift, int reflect,
                            const float *zero_value, int64_t n, int64_t c, int64_t h, int64_t w,
                            void *stream, char *err, size_t len)
{
    if (n <= 0 || c * h * w <= 0) return 0;  // a grid of 0 blocks is a launch error
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    RN_LAUNCH(crop_pixels, blocks_for(n * c * h * w), kThreads, s)(
        x0, x, shift, reflect, zero_value, n, c, h, w);
    return rn::launch_check("crop launch", err, len);
}

extern "C" int rn_cuda_resized_crop(const float *x0, float *x, const int32_t *box, int64_t n,
                                    int64_t c, int64_t h, int64_t w, void *stream, char *err,
                                    size_t len)
{
    if (n <= 0 || c * h * w <= 0) return 0;  // a grid of 0 blocks is a launch error
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    RN_LAUNCH(resized_crop_pixels, blocks_for(n * c * h * w), kThreads, s)(x0, x, box, n, c, h, w);
    return rn::launch_check("resized crop launch", err, len);
}

extern "C" int rn_cuda_erase(float *x, const rn_erase_box *box, int random, int64_t n, int64_t c,
                             int64_t h, int64_t w, void *stream, char *err, size_t len)
{
    if (n <= 0 || c * h * w <= 0) return 0;  // a grid of 0 blocks is a launch error
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    RN_LAUNCH(erase_pixels, blocks_for(n * c * h * w), kThreads, s)(
        x, box, random, n, c, h, w);
    return rn::launch_check("erase launch", err, len);
}

extern "C" int rn_cuda_augment(const rn_augment_op *op, float *x, float *x0, float *t, float *t0,
                               const float *zero_value, int64_t n, int64_t c, int64_t h,
                               int64_t w, int64_t classes, void *stream, char *err, size_t len)
{
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    const size_t bytes = static_cast<size_t>(n * c * h * w) * sizeof(float);
    // The kernels read the batch as it was (x0) and write x; erasing works in place.
    auto before = [&](float *dst, const float *src, size_t size) {
        cudaError_t rc = cudaMemcpyAsync(dst, src, size, cudaMemcpyDeviceToDevice, s);
        if (rc == cudaSuccess) return 0;
        std::snprintf(err, len, "augment copy: %s", cudaGetErrorString(rc));
        return -1;
    };
    switch (op->kind) {
    case RN_AUGMENT_OP_NONE: return 0;
    case RN_AUGMENT_OP_ERASE:
        return rn_cuda_erase(x, op->erase, op->random, n, c, h, w, stream, err, len);
    case RN_AUGMENT_OP_FLIP:
        if (before(x0, x, bytes)) return -1;
        return rn_cuda_flip(x0, x, op->flip, op->vertical, n, c, h, w, stream, err, len);
    case RN_AUGMENT_OP_CROP:
        if (before(x0, x, bytes)) return -1;
        return rn_cuda_crop(x0, x, op->shift, op->reflect, zero_value, n, c, h, w, stream, err,
                            len);
    case RN_AUGMENT_OP_RESIZED_CROP:
        if (before(x0, x, bytes)) return -1;
        return rn_cuda_resized_crop(x0, x, op->box, n, c, h, w, stream, err, len);
    case RN_AUGMENT_OP_MIX:
        if (before(x0, x, bytes) ||
            before(t0, t, static_cast<size_t>(n * classes) * sizeof(float)))
            return -1;
        return rn_cuda_mix(x0, x, t0, t, op->mix, n, c, h, w, classes, stream, err, len);
    }
    std::snprintf(err, len, "unknown augment kind %d", static_cast<int>(op->kind));
    return -1;
}
