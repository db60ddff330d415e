/* What the optimizer plugins share. Header-only: each optimizer stays its own .so against
 * include/runner/plugin.h alone. */
#ifndef RN_OPTIM_COMMON_H
#define RN_OPTIM_COMMON_H

/* c + a * x rounded once to float, as the fused multiply-add PyTorch's AVX2 kernels use for
 * add(x, alpha=a), addcmul and lerp: done in double, where a float product is exact, so it differs
 * from a true fmaf only on double-rounding ties. Every optimizer here rounds through it so its
 * steps match torch.optim bit for bit (the plugins' header comments say where). */
static inline float optim_fma_d(float a, float x, float c)
{
    return (float)((double)a * (double)x + (double)c);
}

#endif
