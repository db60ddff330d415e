/* Augmentation kernels (augment_kernels.cu), for the CUDA backend: each applies per-sample
 * parameters the plugin's host code drew (the same draws as on the CPU) with the element math of
 * augment_elem.h. Each enqueues on `stream` (a cudaStream_t) and returns 0, or -1 with the launch
 * error in err. Batches are NCHW floats on the device. */
#ifndef RN_AUGMENT_KERNELS_H
#define RN_AUGMENT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "augment_elem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CutMix / Mixup: x = mix of x0 (the batch before, n x c x h x w) by plan (n entries, from
 * mix_plan); t = the soft targets mixed likewise from t0 (n x classes). */
int rn_cuda_mix(const float *x0, float *x, const float *t0, float *t,
                const rn_mix_sample *plan, int64_t n, int64_t c, int64_t h, int64_t w,
                int64_t classes, void *stream, char *err, size_t len);

/* hflip (vertical = 0) or vflip (vertical = 1): sample i flipped when flip[i] != 0; x from x0. */
int rn_cuda_flip(const float *x0, float *x, const uint8_t *flip, int vertical, int64_t n,
                 int64_t c, int64_t h, int64_t w, void *stream, char *err, size_t len);

/* random_resized_crop: sample i's box[4i..4i+3] = (row, column, height, width) resized back to
 * h x w (rn_resized_crop_pixel); a whole-image box leaves x as it is. */
int rn_cuda_resized_crop(const float *x0, float *x, const int32_t *box, int64_t n, int64_t c,
                         int64_t h, int64_t w, void *stream, char *err, size_t len);

/* random_crop: sample i moved by shift[2i] rows and shift[2i+1] columns (out = in(y + sy,
 * x + sx)), reflect-padded or filled with zero_value[channel] (c floats on the device). */
int rn_cuda_crop(const float *x0, float *x, const int32_t *shift, int reflect,
                 const float *zero_value, int64_t n, int64_t c, int64_t h, int64_t w,
                 void *stream, char *err, size_t len);

/* random_erasing, in place: sample i's box rows [box[i].y, +box[i].h), columns [box[i].x, +w)
 * in every channel becomes 0, or rn_erase_normal(box[i].key, t) when random. h = 0: none. */
/* (rn_erase_box is plugin.h's.) */
int rn_cuda_erase(float *x, const rn_erase_box *box, int random, int64_t n, int64_t c, int64_t h,
                  int64_t w, void *stream, char *err, size_t len);

/* A plugin's device plan (rn_augment_op from its device_plan, with the array its kind reads
 * copied to the device) applied to the batch x (n x c x h x w, device) and, for MIX, to the soft
 * targets t (n x classes); x0 and t0 are device scratch of the same sizes (the batch before),
 * zero_value c floats on the device (CROP's fill). Enqueues copies and one or two kernels on
 * stream. 0, or -1 with the error in err (an unknown kind included). */
int rn_cuda_augment(const rn_augment_op *op, float *x, float *x0, float *t, float *t0,
                    const float *zero_value, int64_t n, int64_t c, int64_t h, int64_t w,
                    int64_t classes, void *stream, char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
