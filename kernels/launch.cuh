// What every kernel file shares: the block size, the launch and the launch check. CUDA C++, or
// host C++ with RN_CUDA_EMU (tests/cuda_emu/cuda_emu.h, included first, runs the kernels on the
// CPU for the tests).
#ifndef RN_LAUNCH_CUH
#define RN_LAUNCH_CUH

// RN_LAUNCH(kernel, grid, block, stream)(args...) launches kernel over grid x block on stream
// (no dynamic shared memory): kernel<<<grid, block, 0, stream>>>(args...) under nvcc, the
// emulator's launch with RN_CUDA_EMU.
#if defined(RN_CUDA_EMU)
#ifndef RN_CUDA_EMU_H
#error "RN_CUDA_EMU: include tests/cuda_emu/cuda_emu.h before the kernel file"
#endif
#define RN_LAUNCH(kernel, grid, block, stream)                                                \
    ::rn_emu::launch(#kernel, (grid), (block), (stream),                                    \
                     [](auto... rn_launch_args) { kernel(rn_launch_args...); })
#else
#define RN_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

#include <cstdint>
#include <cstdio>

namespace rn {

constexpr int kThreads = 256;  // every launch; the block reductions need a power of two
static_assert((kThreads & (kThreads - 1)) == 0, "kThreads must be a power of two");

// Blocks of kThreads covering n elements, one thread each.
inline unsigned blocks_for(int64_t n)
{
    return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

// 0 after a good launch, else -1 with "what: <CUDA's message>" in err.
inline int launch_check(const char *what, char *err, size_t len)
{
    cudaError_t rc = cudaGetLastError();
    if (rc == cudaSuccess) return 0;
    std::snprintf(err, len, "%s: %s", what, cudaGetErrorString(rc));
    return -1;
}

}  // namespace rn

#endif
