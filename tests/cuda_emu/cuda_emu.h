// A CPU emulation of the parts of CUDA that kernels/*.cu use, so the project's own kernels
// (indexing, chunk loops, block reductions, launches) run in host C++ tests on a machine without
// a GPU. Include this header first, then the kernel file, with RN_CUDA_EMU defined: launch.cuh's
// RN_LAUNCH then calls rn_emu::launch instead of the triple-chevron launch.
//
// How a launch runs: synchronously, on the calling thread's return. One real std::thread per
// thread of the block (blockDim.x * y * z of them, created for the launch and joined at its end);
// the blocks of the grid run one after another, every thread walking them in order. Each thread
// arrives at a block-wide barrier at every __syncthreads() and once more at the end of every
// block, so
//   - no thread passes a __syncthreads() before every thread of its block has reached it;
//   - `__shared__` (a function-local `static`) is one array that only the current block's threads
//     use: block b + 1 starts only after every thread has finished block b;
//   - threadIdx/blockIdx are per thread (thread_local); blockDim/gridDim are what the launch asked.
// A barrier reached at different places by the threads of one block (a __syncthreads() inside a
// branch that some threads skip, or skipped by threads that returned early) is detected: the
// launch fails, and cudaGetLastError() reports cudaErrorLaunchFailure with the kernel, the block
// and the source lines in cudaGetErrorString. A launch configuration CUDA refuses (no threads,
// more than 1024 per block, an empty grid) fails with cudaErrorInvalidConfiguration and runs
// nothing.
//
// NOT emulated (the kernels here use none of it; a kernel that does will not compile or will be
// wrong): warp shuffles/votes (__shfl_*, __ballot_sync, ...), warp-synchronous code that relies
// on lockstep execution without __syncthreads, atomics, dynamic shared memory (the launch's smem
// argument is always 0), memory spaces (a "device pointer" is a plain host pointer; cudaMalloc
// does not exist here and cudaMemcpyAsync is a synchronous memcpy), streams and events (launches are synchronous; the stream is
// ignored), the device math library's own rounding (sqrt, exp, log, sin, cos are the host's
// libm: CUDA's may differ in the last bit where the CUDA docs allow it), and uninitialized shared
// memory (a `static` array starts zeroed and keeps the previous block's values, so a kernel
// reading shared memory it did not write is not caught).
#ifndef RN_CUDA_EMU_H
#define RN_CUDA_EMU_H

#ifndef RN_CUDA_EMU
#error "cuda_emu.h is for builds with RN_CUDA_EMU defined"
#endif

#include <math.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

// ---- qualifiers ----------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static  // one array per process; blocks never run concurrently (see above)

// ---- types ---------------------------------------------------------------------------------
struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorLaunchFailure = 719,
};

typedef struct CUstream_st *cudaStream_t;

namespace rn_emu {

inline thread_local uint3 thread_idx{0, 0, 0};
inline thread_local uint3 block_idx{0, 0, 0};
inline dim3 block_dim{0, 0, 0};  // written before the launch's threads start, read-only in them
inline dim3 grid_dim{0, 0, 0};

inline cudaError_t last_error = cudaSuccess;  // CUDA keeps one per host thread; tests use one
inline std::string last_message;

// The barrier of the running launch: `threads` arrivals complete a phase; all arrivals of a
// phase must come from the same place (site = source line of the __syncthreads, or kBlockEnd).
struct Barrier {
    static constexpr int kBlockEnd = -1;
    unsigned threads = 0;
    unsigned arrived = 0;
    uint64_t phase = 0;
    int site = 0;
    bool broken = false;
    std::string why;
    std::mutex mu;
    std::condition_variable cv;
    const char *kernel = "";

    static std::string place(int where)
    {
        return where == kBlockEnd ? "the block's end" : "__syncthreads() at line " +
                                                            std::to_string(where);
    }

    void arrive(int where)
    {
        std::unique_lock<std::mutex> lock(mu);
        if (broken) return;  // after a divergence nothing is synchronized: the launch has failed
        if (arrived == 0) {
            site = where;
        } else if (site != where) {
            char buf[256];
            std::snprintf(buf, sizeof buf,
                          "barrier divergence in %s, block (%u,%u,%u): thread (%u,%u,%u) at %s "
                          "while others wait at %s",
                          kernel, block_idx.x, block_idx.y, block_idx.z, thread_idx.x,
                          thread_idx.y, thread_idx.z, place(where).c_str(), place(site).c_str());
            why = buf;
            broken = true;
            cv.notify_all();
            return;
        }
        const uint64_t mine = phase;
        if (++arrived == threads) {
            arrived = 0;
            phase++;
            cv.notify_all();
            return;
        }
        cv.wait(lock, [&] { return phase != mine || broken; });
    }
};

inline Barrier *current = nullptr;  // the running launch's; launches do not nest

inline void syncthreads(int line)
{
    current->arrive(line);
}

inline void fail(cudaError_t rc, const std::string &msg)
{
    last_error = rc;
    last_message = msg;
}

// Runs body (the kernel called with the launch's arguments) over grid x block.
inline void run(const char *kernel, dim3 grid, dim3 block, const std::function<void()> &body)
{
    const uint64_t threads = uint64_t(block.x) * block.y * block.z;
    const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
    if (threads == 0 || threads > 1024 || block.z > 64 || blocks == 0 || grid.x > 0x7fffffffu ||
        grid.y > 65535 || grid.z > 65535) {
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "invalid configuration argument (%s: grid (%u,%u,%u), block (%u,%u,%u))",
                      kernel, grid.x, grid.y, grid.z, block.x, block.y, block.z);
        fail(cudaErrorInvalidConfiguration, buf);
        return;
    }
    Barrier barrier;
    barrier.threads = static_cast<unsigned>(threads);
    barrier.kernel = kernel;
    current = &barrier;
    block_dim = block;
    grid_dim = grid;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; t++)
        pool.emplace_back([&, t] {
            thread_idx = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
            for (uint64_t b = 0; b < blocks; b++) {
                block_idx = uint3{static_cast<unsigned>(b % grid.x),
                                  static_cast<unsigned>(b / grid.x % grid.y),
                                  static_cast<unsigned>(b / (uint64_t(grid.x) * grid.y))};
                body();
                barrier.arrive(Barrier::kBlockEnd);
            }
        });
    for (auto &th : pool) th.join();
    current = nullptr;
    if (barrier.broken) fail(cudaErrorLaunchFailure, "unspecified launch failure: " + barrier.why);
}

// What RN_LAUNCH(kernel, grid, block, stream) makes: called with the kernel's arguments, it runs
// the launch. The arguments are copied once, as CUDA copies them to the device.
template <class Kernel>
struct Launch {
    const char *name;
    dim3 grid, block;
    Kernel kernel;

    template <class... Args>
    void operator()(Args... args) const
    {
        run(name, grid, block, [&] { kernel(args...); });
    }
};

template <class Kernel>
Launch<Kernel> launch(const char *name, dim3 grid, dim3 block, cudaStream_t, Kernel kernel)
{
    return Launch<Kernel>{name, grid, block, kernel};
}

}  // namespace rn_emu

#define threadIdx (::rn_emu::thread_idx)
#define blockIdx (::rn_emu::block_idx)
#define blockDim (::rn_emu::block_dim)
#define gridDim (::rn_emu::grid_dim)
#define __syncthreads() ::rn_emu::syncthreads(__LINE__)

// Copies are synchronous memcpy: device and host pointers are the same kind here.
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind,
                                   cudaStream_t = nullptr)
{
    if (bytes) std::memcpy(dst, src, bytes);
    return cudaSuccess;
}

inline cudaError_t cudaGetLastError()
{
    cudaError_t rc = rn_emu::last_error;
    rn_emu::last_error = cudaSuccess;
    return rc;
}

inline cudaError_t cudaPeekAtLastError()
{
    return rn_emu::last_error;
}

// The message of the last failure when rc is its code (the emulator's detail), else CUDA's text.
inline const char *cudaGetErrorString(cudaError_t rc)
{
    switch (rc) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidConfiguration:
    case cudaErrorLaunchFailure:
        return rn_emu::last_message.empty() ? "launch failed" : rn_emu::last_message.c_str();
    }
    return "unknown error";
}

#endif
