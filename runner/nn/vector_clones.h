/* RN_VECTOR_CLONES: a hot element-wise layer function compiled three times, for AVX-512
 * (x86-64-v4), AVX2 (x86-64-v3) and baseline x86-64, the best one the CPU runs picked when the
 * library loads (GCC's target_clones: an ifunc). The build itself targets baseline x86-64 so that
 * one binary runs on any x86-64 machine, and there the layers' own loops get SSE2 only: 4 lanes,
 * no vector 64-bit multiply (dropout's mask hash) and no masked selects (ReLU's backward). With
 * the clones, on this machine's AVX-512, dropout's forward went from 3.0 to 0.5 ms and the MNIST
 * CNN's large ReLU backward from 3.0 to 1.6 ms per step (tests/bench_mnist_cnn).
 *
 * Only for functions whose results cannot depend on the vector width: element-wise maps and
 * loops whose sums run in a fixed scalar order. The C build is ISO C11, in which GCC neither
 * contracts a * b + c into a fused multiply-add nor reorders a sum, so every clone rounds as the
 * baseline does: the layer tests' bit-for-bit references hold whichever clone runs. A loop with
 * an OpenMP `simd reduction` must not be cloned (its order follows the vector width). */
#ifndef RN_VECTOR_CLONES_H
#define RN_VECTOR_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RN_VECTOR_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RN_VECTOR_CLONES
#endif

#endif
