// kernels/nn_kernels.cu run on the CPU (tests/cuda_emu), through its rn_cuda_* launchers:
//   - cross-entropy (300 rows x 10 classes: two blocks, the second with 44 rows; and 3 x 1000):
//     hard labels, hard labels with label smoothing 0.1, soft targets, soft targets with label
//     smoothing 0.2, and a label out of range. dlogits equal rn_cross_entropy2's (runner/nn)
//     bit for bit; the per-row losses summed in row order and divided by n equal its returned
//     mean bit for bit (it adds the rows in order on one thread at this size), NaN exactly when
//     a label is out of range; each row equals rn_ce_row on that row alone; without dlogits the
//     losses are the same.
//   - cross-entropy with grad_scale 65536 (fp16's loss scale): the same losses, every gradient
//     element exactly 65536 times the unscaled one.
//   - multi-margin (300 x 10 for p = 1 and 2, margins 1 and 0.5; 5 x 1000; a bad label in row
//     261): per-row losses summed in row order and divided by n equal rn_multi_margin's mean bit
//     for bit, each row equals rn_mm_row alone, dlogits equal its gradient bit for bit (with
//     active and inactive hinges), the losses without a gradient are the same, grad_scale 65536
//     gives exactly 65536 times the gradient; a bad label gives a NaN row (and mean) and a zero
//     gradient row; p = 3 is refused without a launch.
//   - dropout over 100003 elements (p = 0.25 and 0.5, the layer's first and second train call):
//     y equals runner/nn/dropout.c's forward bit for bit (its key: rn_key3(seed, call, "drop")),
//     the mask is rn_uniform(key, i) >= p for every i, and the backward equals the layer's.
//   - sumsq_chunks over 1, 255, 65536, 65537 and 200001 elements: each chunk's sum bit for bit
//     against the kernel's summation order transcribed (256 strided in-order partials, then the
//     halving tree), within 1e-11 relative of an in-order double sum (squares of floats are
//     exact in double; any order of m >= 0 terms is within (m - 1) 2^-53 of the sum, 7.3e-12 at
//     m = 65536), and not a double past the last chunk is written.
//   - the emulator itself: every (block, thread) of a 3 x 256 and of a 2 x (16, 4) launch runs
//     once and sees the launch's blockDim/gridDim; a block reduction whose __syncthreads sits
//     inside the branch (some threads skip it) fails with "barrier divergence", while the same
//     reduction written correctly equals the transcribed order; block sizes 0 and 2048 and an
//     empty grid fail as CUDA's "invalid configuration" through rn::launch_check.
#include "cuda_emu.h"

#include "../kernels/nn_kernels.cu"

#include <cmath>
#include <cstring>
#include <vector>

extern "C" {
#include "layer.h"
#include "tensor.h"
}

#include "emu_random.h"
#include "rn_test.h"

namespace {

using rn_emu_test::lcg;
using rn_emu_test::uniform;

rn_tensor tensor2(int64_t a, int64_t b)
{
    int64_t d[2] = {a, b};
    rn_tensor t;
    rn_tensor_alloc(&t, rn_shape_make(2, d));
    return t;
}

// ---- cross-entropy ----
void check_ce(const char *what, int64_t n, int64_t k, bool soft, double ls, int64_t bad_row)
{
    uint32_t seed = static_cast<uint32_t>(n * 31 + k);
    rn_tensor z = tensor2(n, k), g_cpu = tensor2(n, k);
    for (int64_t i = 0; i < n * k; i++) z.data[i] = uniform(seed, -4.0f, 4.0f);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    std::vector<float> targets(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < n; i++) {
        labels[i] = static_cast<int32_t>(lcg(seed) % k);
        float sum = 0;
        for (int64_t j = 0; j < k; j++) sum += targets[i * k + j] = uniform(seed, 0.0f, 1.0f);
        for (int64_t j = 0; j < k; j++) targets[i * k + j] /= sum;
    }
    if (bad_row >= 0) labels[bad_row] = static_cast<int32_t>(k);
    const int32_t *lab = soft ? nullptr : labels.data();
    const float *tgt = soft ? targets.data() : nullptr;
    const double mean = rn_cross_entropy2(&z, lab, tgt, ls, &g_cpu, nullptr);

    std::vector<double> rows(static_cast<size_t>(n), -7.0), rows2(static_cast<size_t>(n), -7.0),
        rows3(static_cast<size_t>(n), -7.0);
    std::vector<float> g_dev(static_cast<size_t>(n * k), -7.0f),
        g_big(static_cast<size_t>(n * k), -7.0f);
    char err[128] = "";
    CHECK(rn_cuda_cross_entropy(z.data, n, k, lab, tgt, ls, rows.data(), g_dev.data(), 1.0f,
                                nullptr, err, sizeof err) == 0);
    CHECK(rn_cuda_cross_entropy(z.data, n, k, lab, tgt, ls, rows2.data(), nullptr, 1.0f, nullptr,
                                err, sizeof err) == 0);
    CHECK(std::memcmp(g_dev.data(), g_cpu.data, static_cast<size_t>(n * k) * 4) == 0);
    CHECK(std::memcmp(rows.data(), rows2.data(), static_cast<size_t>(n) * 8) == 0);
    // fp16's loss scale: exactly 65536 times the gradient, the same losses
    CHECK(rn_cuda_cross_entropy(z.data, n, k, lab, tgt, ls, rows3.data(), g_big.data(), 65536.0f,
                                nullptr, err, sizeof err) == 0);
    CHECK(std::memcmp(rows.data(), rows3.data(), static_cast<size_t>(n) * 8) == 0);
    int64_t scaled_bad = 0;
    for (int64_t i = 0; i < n * k; i++) {
        const float want = g_cpu.data[i] * 65536.0f;
        scaled_bad += std::memcmp(&want, &g_big[i], 4) != 0;
    }
    CHECK(scaled_bad == 0);
    double total = 0;
    int nan_rows = 0, row_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z.data + i * k;
        double one = rn_ce_row(zi, k, rn_row_argmax(zi, k), lab ? lab[i] : -1,
                               tgt ? tgt + i * k : nullptr, ls, nullptr, static_cast<double>(n));
        row_bad += std::memcmp(&one, &rows[i], 8) != 0;
        if (std::isnan(rows[i])) nan_rows++;
        else total += rows[i];
    }
    CHECK(row_bad == 0);
    if (bad_row >= 0) {
        CHECK(nan_rows == 1 && std::isnan(rows[bad_row]) && std::isnan(mean));
    } else {
        CHECK(nan_rows == 0);
        const double dev_mean = total / static_cast<double>(n);
        CHECK(std::memcmp(&dev_mean, &mean, 8) == 0);
    }
    std::printf("  cross-entropy %-34s %lld x %lld: dlogits (x1, x65536) and losses equal the "
                "CPU layer's\n",
                what, static_cast<long long>(n), static_cast<long long>(k));
    rn_tensor_free(&z);
    rn_tensor_free(&g_cpu);
}

// ---- multi-margin ----
void check_mm(int64_t n, int64_t k, int p, double margin, int64_t bad_row)
{
    uint32_t seed = static_cast<uint32_t>(n * 7 + k * 3 + p);
    rn_tensor z = tensor2(n, k), g_cpu = tensor2(n, k);
    for (int64_t i = 0; i < n * k; i++) z.data[i] = uniform(seed, -2.0f, 2.0f);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) labels[i] = static_cast<int32_t>(lcg(seed) % k);
    if (bad_row >= 0) labels[bad_row] = -1;
    int64_t hits = -1;
    const double mean = rn_multi_margin(&z, labels.data(), margin, p, &g_cpu, &hits);

    const size_t nk = static_cast<size_t>(n * k);
    std::vector<double> rows(static_cast<size_t>(n), -7.0), rows2(static_cast<size_t>(n), -7.0),
        rows3(static_cast<size_t>(n), -7.0);
    std::vector<float> g_dev(nk, -7.0f), g_big(nk, -7.0f);
    char err[128] = "";
    CHECK(rn_cuda_multi_margin(z.data, n, k, labels.data(), margin, p, rows.data(), g_dev.data(),
                               1.0f, nullptr, err, sizeof err) == 0);
    CHECK(rn_cuda_multi_margin(z.data, n, k, labels.data(), margin, p, rows2.data(), nullptr,
                               1.0f, nullptr, err, sizeof err) == 0);
    CHECK(rn_cuda_multi_margin(z.data, n, k, labels.data(), margin, p, rows3.data(), g_big.data(),
                               65536.0f, nullptr, err, sizeof err) == 0);
    CHECK(std::memcmp(rows.data(), rows2.data(), static_cast<size_t>(n) * 8) == 0);
    CHECK(std::memcmp(rows.data(), rows3.data(), static_cast<size_t>(n) * 8) == 0);
    double total = 0.0;
    int64_t row_bad = 0, nan_rows = 0, grad_bad = 0, scaled_bad = 0, active = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == bad_row) continue;
        double one = rn_mm_row(z.data + i * k, k, labels[i], margin, p, nullptr,
                               static_cast<double>(n));
        row_bad += std::memcmp(&one, &rows[i], 8) != 0;
        total += rows[i];
    }
    for (int64_t i = 0; i < n; i++) nan_rows += std::isnan(rows[i]);
    // The CPU writes the rows before a bad label (it stops there); the device writes them all.
    const int64_t checked = (bad_row >= 0 ? bad_row : n) * k;
    for (int64_t i = 0; i < checked; i++) {
        grad_bad += std::memcmp(&g_cpu.data[i], &g_dev[i], 4) != 0;
        const float want = g_cpu.data[i] * 65536.0f;
        scaled_bad += std::memcmp(&want, &g_big[i], 4) != 0;
        active += g_cpu.data[i] != 0.0f;
    }
    CHECK(row_bad == 0);
    CHECK(grad_bad == 0);
    CHECK(scaled_bad == 0);
    CHECK(active > 0 && active < checked);  // both sides of the hinges are exercised
    if (bad_row >= 0) {
        CHECK(nan_rows == 1 && std::isnan(rows[bad_row]) && std::isnan(mean));
        int64_t zero = 0;
        for (int64_t j = 0; j < k; j++) zero += g_dev[bad_row * k + j] == 0.0f;
        CHECK(zero == k);
    } else {
        CHECK(nan_rows == 0);
        const double dev_mean = total / static_cast<double>(n);
        CHECK(std::memcmp(&dev_mean, &mean, 8) == 0);
        CHECK(mean > 0.0);
    }
    std::printf("  multi-margin p %d margin %.1f %lld x %lld%s: dlogits (x1, x65536) and "
                "losses equal rn_multi_margin's\n", p, margin, static_cast<long long>(n),
                static_cast<long long>(k), bad_row >= 0 ? ", a bad label" : "");
    rn_tensor_free(&z);
    rn_tensor_free(&g_cpu);
}

void check_mm_bad_p()
{
    float z[4] = {0, 1, 2, 3};
    int32_t y[2] = {0, 1};
    double rows[2] = {-7.0, -7.0};
    char err[128] = "";
    CHECK(rn_cuda_multi_margin(z, 2, 2, y, 1.0, 3, rows, nullptr, 1.0f, nullptr, err,
                               sizeof err) == -1);
    CHECK(std::strstr(err, "p must be 1 or 2") != nullptr && rows[0] == -7.0);
    std::printf("  multi-margin p 3: %s\n", err);
}

// ---- dropout ----
void check_dropout(double p, uint64_t seed, int calls)
{
    const int64_t n = 100003;
    char err[128] = "";
    rn_layer *l = rn_dropout_create(p, seed, err, sizeof err);
    int64_t d[2] = {1, n};
    rn_shape in = rn_shape_make(2, d), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    rn_tensor x = tensor2(1, n), y = tensor2(1, n), dy = tensor2(1, n), dx = tensor2(1, n);
    uint32_t s = static_cast<uint32_t>(seed);
    for (int64_t i = 0; i < n; i++) {
        x.data[i] = uniform(s, 0.5f, 1.5f);
        dy.data[i] = uniform(s, -1.0f, 1.0f);
    }
    for (int c = 0; c < calls; c++) CHECK(l->ops->forward(l, &x, &y, true) == 0);
    const uint64_t key = rn_key3(seed, l->calls, 0x64726f70ull /* "drop" */);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);

    std::vector<float> yd(static_cast<size_t>(n), -7.0f), gd(static_cast<size_t>(n), -7.0f);
    std::vector<uint8_t> mask(static_cast<size_t>(n) + 8, 0xee);
    CHECK(rn_cuda_dropout_forward(x.data, yd.data(), mask.data(), n, key, p, nullptr, err,
                                  sizeof err) == 0);
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    CHECK(rn_cuda_dropout_backward(dy.data, mask.data(), gd.data(), n, scale, nullptr, err,
                                   sizeof err) == 0);
    CHECK(std::memcmp(yd.data(), y.data, static_cast<size_t>(n) * 4) == 0);
    CHECK(std::memcmp(gd.data(), dx.data, static_cast<size_t>(n) * 4) == 0);
    int64_t wrong = 0, kept = 0;
    for (int64_t i = 0; i < n; i++) {
        wrong += mask[i] != (rn_uniform(key, static_cast<uint64_t>(i)) >= p);
        kept += mask[i];
    }
    for (int k = 0; k < 8; k++) wrong += mask[static_cast<size_t>(n + k)] != 0xee;
    CHECK(wrong == 0);
    CHECK(kept > 0 && kept < n);
    std::printf("  dropout p %.2f, call %d: %lld of %lld kept, y, mask and gradient equal the "
                "CPU layer's\n", p, calls, static_cast<long long>(kept),
                static_cast<long long>(n));
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_tensor_free(&dy);
    rn_tensor_free(&dx);
    rn_layer_destroy(l);
}

// ---- gradient norm chunks ----
double tree_sum(const double *terms, int64_t m)
{
    double part[rn::kThreads];
    for (int t = 0; t < rn::kThreads; t++) {
        double a = 0;
        for (int64_t i = t; i < m; i += rn::kThreads) a += terms[i];
        part[t] = a;
    }
    for (int h = rn::kThreads / 2; h > 0; h >>= 1)
        for (int t = 0; t < h; t++) part[t] += part[t + h];
    return part[0];
}

void check_sumsq(int64_t n)
{
    uint32_t s = static_cast<uint32_t>(n);
    std::vector<float> g(static_cast<size_t>(n));
    std::vector<double> sq(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) {
        g[i] = uniform(s, -2.0f, 2.0f);
        sq[i] = static_cast<double>(g[i]) * g[i];
    }
    const int64_t chunks = (n + RN_MT_CHUNK - 1) / RN_MT_CHUNK;
    std::vector<double> partial(static_cast<size_t>(chunks + 4), -7.0);
    char err[128] = "";
    CHECK(rn_cuda_sumsq_chunks(g.data(), n, partial.data(), nullptr, err, sizeof err) == 0);
    int exact = 0, near = 0;
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t lo = c * RN_MT_CHUNK, m = std::min<int64_t>(RN_MT_CHUNK, n - lo);
        double flat = 0;
        for (int64_t i = 0; i < m; i++) flat += sq[lo + i];
        exact += partial[c] == tree_sum(&sq[lo], m);
        near += std::fabs(partial[c] - flat) <= 1e-11 * flat;
    }
    CHECK(exact == chunks);
    CHECK(near == chunks);
    for (int k = 0; k < 4; k++) CHECK(partial[chunks + k] == -7.0);
    std::printf("  sumsq_chunks n = %lld: %lld chunks equal the kernel's order\n",
                static_cast<long long>(n), static_cast<long long>(chunks));
}

// ---- the emulator itself ----
__global__ void coverage(unsigned *hits, unsigned *dims)
{
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned per = blockDim.x * blockDim.y * blockDim.z;
    hits[b * per + t] += 1;  // each element belongs to one thread
    if (t == 0 && b == 0) {
        dims[0] = blockDim.x, dims[1] = blockDim.y, dims[2] = blockDim.z;
        dims[3] = gridDim.x, dims[4] = gridDim.y, dims[5] = gridDim.z;
    }
}

// A block sum of 256 doubles; `wrong` moves the barrier into the branch, as a real bug would.
__global__ void block_sum(const double *x, double *out, int wrong)
{
    __shared__ double s[rn::kThreads];
    s[threadIdx.x] = x[blockIdx.x * rn::kThreads + threadIdx.x];
    __syncthreads();
    for (int h = rn::kThreads / 2; h > 0; h >>= 1) {
        if (static_cast<int>(threadIdx.x) < h) {
            s[threadIdx.x] += s[threadIdx.x + h];
            if (wrong) __syncthreads();
        }
        if (!wrong) __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

void check_emulator()
{
    // coverage and dimensions
    struct Shape {
        dim3 grid, block;
    } shapes[2] = {{dim3(3), dim3(256)}, {dim3(2, 1, 1), dim3(16, 4, 1)}};
    for (const Shape &sh : shapes) {
        const unsigned total = sh.grid.x * sh.grid.y * sh.grid.z * sh.block.x * sh.block.y *
                               sh.block.z;
        std::vector<unsigned> hits(total, 0);
        unsigned dims[6] = {0, 0, 0, 0, 0, 0};
        RN_LAUNCH(coverage, sh.grid, sh.block, nullptr)(hits.data(), dims);
        CHECK(cudaGetLastError() == cudaSuccess);
        unsigned once = 0;
        for (unsigned h : hits) once += h == 1;
        CHECK(once == total);
        CHECK(dims[0] == sh.block.x && dims[1] == sh.block.y && dims[2] == sh.block.z);
        CHECK(dims[3] == sh.grid.x && dims[4] == sh.grid.y && dims[5] == sh.grid.z);
    }

    // a correct block reduction: the transcribed order; a divergent barrier: a launch failure
    const int blocks = 3;
    std::vector<double> x(blocks * rn::kThreads);
    uint32_t s = 5;
    for (double &v : x) v = uniform(s, -1.0f, 1.0f);
    double out[blocks] = {0, 0, 0};
    RN_LAUNCH(block_sum, blocks, rn::kThreads, nullptr)(x.data(), out, 0);
    CHECK(cudaGetLastError() == cudaSuccess);
    for (int b = 0; b < blocks; b++) CHECK(out[b] == tree_sum(&x[b * rn::kThreads], rn::kThreads));
    RN_LAUNCH(block_sum, blocks, rn::kThreads, nullptr)(x.data(), out, 1);
    char err[512] = "";
    CHECK(rn::launch_check("divergent block_sum", err, sizeof err) == -1);
    std::printf("  a __syncthreads in a branch: %s\n", err);
    CHECK(std::strstr(err, "barrier divergence in block_sum") != nullptr);
    CHECK(cudaGetLastError() == cudaSuccess);  // the error was read (and cleared) above

    // launch configurations CUDA refuses run nothing and fail
    unsigned hits[4] = {0, 0, 0, 0}, dims[6];
    RN_LAUNCH(coverage, 1, 2048, nullptr)(hits, dims);
    CHECK(rn::launch_check("2048 threads", err, sizeof err) == -1);
    std::printf("  2048 threads per block: %s\n", err);
    CHECK(std::strstr(err, "invalid configuration argument") != nullptr);
    RN_LAUNCH(coverage, 0, 256, nullptr)(hits, dims);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    RN_LAUNCH(coverage, 1, 0, nullptr)(hits, dims);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(hits[0] == 0);
}

}  // namespace

int main()
{
    check_ce("hard labels", 300, 10, false, 0.0, -1);
    check_ce("hard labels, label_smoothing 0.1", 300, 10, false, 0.1, -1);
    check_ce("soft targets", 300, 10, true, 0.0, -1);
    check_ce("soft targets, label_smoothing 0.2", 3, 1000, true, 0.2, -1);
    check_ce("hard labels, row 257 out of range", 300, 10, false, 0.0, 257);
    for (int p : {1, 2})
        for (double margin : {1.0, 0.5}) check_mm(300, 10, p, margin, -1);
    check_mm(5, 1000, 2, 1.0, -1);
    check_mm(300, 10, 1, 1.0, 261);
    check_mm_bad_p();
    check_dropout(0.25, 1234, 0);
    check_dropout(0.5, 99, 1);
    for (int64_t n : {int64_t(1), int64_t(255), int64_t(65536), int64_t(65537), int64_t(200001)})
        check_sumsq(n);
    check_emulator();
    return rn_test_report("test_kernels_emu_nn");
}
