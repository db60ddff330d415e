// What every kernel file shares: the block size and the launch check. CUDA C++ only.
#ifndef RN_LAUNCH_CUH
#define RN_LAUNCH_CUH

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
