/* RN_HD marks a function both the CPU code (C11) and CUDA kernels (nvcc) compile: the element
 * math of an optimizer or an augmentation lives once, in a header, and the CPU tests check the
 * formula the GPU runs. */
#ifndef RN_HD_H
#define RN_HD_H

#if defined(__CUDACC__)
#define RN_HD static __host__ __device__ __forceinline__
#else
#define RN_HD static inline
#endif

/* c + a * x rounded once to float, as the fused multiply-add PyTorch's AVX2 kernels use for
 * add(x, alpha=a), addcmul and lerp: done in double, where a float product is exact, so it
 * differs from a true fmaf only on double-rounding ties. The optimizers round through it so
 * their steps match torch.optim bit for bit on the CPU; on the GPU it is one double FMA. */
RN_HD float rn_fma_d(float a, float x, float c)
{
    return (float)((double)a * (double)x + (double)c);
}

#endif
