// kernels/net_kernels.cu (the device network's own kernels) run on the CPU (tests/cuda_emu),
// through its rn_cuda_* launchers, against the CPU layers of runner/nn, bit for bit (memcmp):
//   - relu, leaky_relu (slopes 0.1 and -0.3) and gelu forward and backward over 100003 elements
//     (391 blocks, the last partial) with exact zeros, -0, large values and a NaN mixed in; the
//     backward written (accumulate 0) and, from a prefilled gradient, accumulated (accumulate 1:
//     prefill + the layer's dx, as net.c's accumulate adds);
//   - a residual block relu(leaky_relu(x) + x) (container.c; -0 and NaN among x, which the block's
//     activation passes where the relu layer gives +0): add, the block's activation, its
//     backward (relu_grad on the block's output) and the two input-gradient contributions
//     (leaky_relu's written, the identity shortcut's accumulated with grad_copy) equal the
//     container's forward and backward;
//   - identity: grad_copy without accumulate equals the layer's backward;
//   - batch norm in eval mode (running stats, 2 x 5 x 7 x 3 and 3 x 16 x 1 x 1) against
//     batchnorm2d.c's eval forward and its eval-mode input gradient (written and accumulated);
//   - global average pooling (4 x 6 x 7 x 5 and 2 x 3 x 1 x 1) forward and backward;
//   - linear's bias gradient (300 x 13 and 5 x 300: two blocks of columns) against linear.c's
//     db, and the bias rows the forward starts from;
//   - the accuracy's hits against rn_cross_entropy2's correct, with labels (ties included) and
//     with soft targets only;
//   - clip_grad's scaling against grads.c's g *= s.
//   - fp16's unscale over four tensors (1, 255, 257 and 1500 elements: partial and several
//     blocks) into one flag: values equal runner/core's rn_grad_scaler_unscale on the same
//     tensors bit for bit (its inv_scale, scale 65536 and 3), the flag is 0 when all are finite
//     and 1 when an inf, a -inf or a NaN sits in any one of them (first, last or middle element,
//     in the first, a middle or the last tensor), as its return; a flag already 1 stays 1.
//   - the 16-bit conversions: float -> bf16 / fp16 over 20011 values (random, across half's
//     range, with zeros, subnormals, half's overflow edge, inf and NaN) equal rn_bf16_from_f32 /
//     rn_f16_from_f32 element by element; back to float (written, and accumulated onto a
//     prefilled gradient) equal the element functions and prefill + them; not an element past n
//     is written.
#include "cuda_emu.h"

#include "../kernels/net_kernels.cu"

#include <cmath>
#include <cstring>
#include <vector>

extern "C" {
#include "../runner/core/grad_scaler.h"
#include "layer.h"
#include "tensor.h"
}

#include "emu_random.h"
#include "rn_test.h"

namespace {

using rn_emu_test::lcg;
using rn_emu_test::uniform;

rn_tensor tensor(std::initializer_list<int64_t> dims)
{
    std::vector<int64_t> d(dims);
    rn_tensor t;
    rn_tensor_alloc(&t, rn_shape_make(static_cast<int>(d.size()), d.data()));
    return t;
}

// Values with the cases element functions get wrong: zeros of both signs, large, tiny, NaN.
void fill(float *p, int64_t n, uint32_t seed, float lo, float hi, bool specials)
{
    for (int64_t i = 0; i < n; i++) p[i] = uniform(seed, lo, hi);
    if (!specials || n < 8) return;
    p[0] = 0.0f;
    p[1] = -0.0f;
    p[2] = 30.0f;
    p[3] = -30.0f;
    p[4] = 1e-30f;
    p[5] = -1e-30f;
    p[n / 2] = NAN;
    p[n - 1] = 0.0f;
}

bool same(const float *a, const float *b, int64_t n)
{
    return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

// An accumulated gradient: acc[i] must be pre[i] + d[i] rounded once, bit for bit.
bool accumulated(const float *pre, const float *d, const float *acc, int64_t n)
{
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        const float want = pre[i] + d[i];
        wrong += std::memcmp(&want, &acc[i], 4) != 0;
    }
    return wrong == 0;
}

char err[256];

// ---- element-wise layers ----
enum Kind { RELU, LEAKY, GELU };

void check_elementwise(Kind kind, float slope)
{
    const int64_t n = 100003;
    rn_layer *l = kind == RELU ? rn_relu_create()
                  : kind == GELU ? rn_gelu_create()
                                 : rn_leaky_relu_create(slope, err, sizeof err);
    rn_tensor x = tensor({1, n}), y = tensor({1, n}), dy = tensor({1, n}), dx = tensor({1, n});
    fill(x.data, n, 7 + kind, -5.0f, 5.0f, true);
    fill(dy.data, n, 11 + kind, -1.0f, 1.0f, false);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    std::vector<float> yd(n, -7.0f), gd(n, -7.0f), acc(n), pre(n);
    fill(pre.data(), n, 13, -2.0f, 2.0f, false);
    acc = pre;
    int rc = 0;
    switch (kind) {
    case RELU:
        rc |= rn_cuda_relu_forward(x.data, yd.data(), n, nullptr, err, sizeof err);
        rc |= rn_cuda_relu_backward(y.data, dy.data, gd.data(), n, 0, nullptr, err, sizeof err);
        rc |= rn_cuda_relu_backward(y.data, dy.data, acc.data(), n, 1, nullptr, err, sizeof err);
        break;
    case LEAKY:
        rc |= rn_cuda_leaky_relu_forward(x.data, yd.data(), n, slope, nullptr, err, sizeof err);
        rc |= rn_cuda_leaky_relu_backward(x.data, dy.data, gd.data(), n, slope, 0, nullptr, err,
                                          sizeof err);
        rc |= rn_cuda_leaky_relu_backward(x.data, dy.data, acc.data(), n, slope, 1, nullptr, err,
                                          sizeof err);
        break;
    case GELU:
        rc |= rn_cuda_gelu_forward(x.data, yd.data(), n, nullptr, err, sizeof err);
        rc |= rn_cuda_gelu_backward(x.data, dy.data, gd.data(), n, 0, nullptr, err, sizeof err);
        rc |= rn_cuda_gelu_backward(x.data, dy.data, acc.data(), n, 1, nullptr, err, sizeof err);
        break;
    }
    CHECK(rc == 0);
    CHECK(same(yd.data(), y.data, n));
    CHECK(same(gd.data(), dx.data, n));
    CHECK(accumulated(pre.data(), dx.data, acc.data(), n));
    std::printf("  %-10s slope %5.2f: forward, backward and accumulated backward equal the CPU "
                "layer's over %lld elements\n",
                kind == RELU ? "relu" : kind == GELU ? "gelu" : "leaky_relu", slope,
                static_cast<long long>(n));
    for (rn_tensor *t : {&x, &y, &dy, &dx}) rn_tensor_free(t);
    rn_layer_destroy(l);
}

// ---- a residual block: relu(leaky_relu(x) + x) ----
void check_residual()
{
    const int64_t n = 3, c = 4, h = 9, w = 11, total = n * c * h * w;
    const float slope = 0.5f;
    rn_layer **body = static_cast<rn_layer **>(std::malloc(sizeof(rn_layer *)));
    body[0] = rn_leaky_relu_create(slope, err, sizeof err);
    rn_layer *r = rn_residual_create("block", body, 1, nullptr, 0, true, "body", "shortcut", err,
                                     sizeof err);
    CHECK(r != nullptr);
    if (!r) return;
    rn_shape in = rn_shape_make(4, std::vector<int64_t>{n, c, h, w}.data()), out;
    CHECK(r->ops->setup(r, &in, &out, err, sizeof err) == 0);
    rn_tensor x = tensor({n, c, h, w}), y = tensor({n, c, h, w}), dy = tensor({n, c, h, w}),
              dx = tensor({n, c, h, w});
    fill(x.data, total, 21, -2.0f, 2.0f, false);
    fill(dy.data, total, 22, -1.0f, 1.0f, false);
    x.data[5] = 0.0f;   // a sum of exactly zero: relu's boundary
    x.data[6] = -0.0f;  // -0 + -0: the block's activation keeps -0 (relu.c would give +0)
    x.data[7] = NAN;    // NaN passes the block's activation
    CHECK(r->ops->forward(r, &x, &y, true) == 0);
    CHECK(r->ops->backward(r, &x, &y, &dy, &dx) == 0);
    // the graph as the device runs it: t1 = leaky(x), z = t1 + x, y = relu(z)
    std::vector<float> t1(total), z(total), yd(total), dz(total), gx(total, -7.0f);
    int rc = rn_cuda_leaky_relu_forward(x.data, t1.data(), total, slope, nullptr, err, sizeof err);
    rc |= rn_cuda_add(t1.data(), x.data, z.data(), total, nullptr, err, sizeof err);
    rc |= rn_cuda_residual_relu_forward(z.data(), yd.data(), total, nullptr, err, sizeof err);
    CHECK(same(yd.data(), y.data, total));
    CHECK(std::signbit(yd[6]) && std::isnan(yd[7]));
    // backward in reverse: dz = relu_grad(y, dy); x gets leaky's dx, then the shortcut's dz added
    rc |= rn_cuda_relu_backward(yd.data(), dy.data, dz.data(), total, 0, nullptr, err, sizeof err);
    rc |= rn_cuda_leaky_relu_backward(x.data, dz.data(), gx.data(), total, slope, 0, nullptr, err,
                                      sizeof err);
    rc |= rn_cuda_grad_copy(gx.data(), dz.data(), total, 1, nullptr, err, sizeof err);
    CHECK(rc == 0);
    CHECK(same(gx.data(), dx.data, total));
    std::printf("  residual relu(leaky_relu(x) + x) %lldx%lldx%lldx%lld: output and input "
                "gradient equal container.c's\n", static_cast<long long>(n),
                static_cast<long long>(c), static_cast<long long>(h), static_cast<long long>(w));
    for (rn_tensor *t : {&x, &y, &dy, &dx}) rn_tensor_free(t);
    rn_layer_destroy(r);
}

void check_identity()
{
    const int64_t n = 70001;
    rn_layer *l = rn_identity_create();
    rn_tensor x = tensor({1, n}), y = tensor({1, n}), dy = tensor({1, n}), dx = tensor({1, n});
    fill(x.data, n, 31, -1.0f, 1.0f, true);
    fill(dy.data, n, 32, -1.0f, 1.0f, true);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    std::vector<float> g(n, -7.0f);
    CHECK(rn_cuda_grad_copy(g.data(), dy.data, n, 0, nullptr, err, sizeof err) == 0);
    CHECK(same(g.data(), dx.data, n));
    std::printf("  identity: the gradient copy equals the layer's backward\n");
    for (rn_tensor *t : {&x, &y, &dy, &dx}) rn_tensor_free(t);
    rn_layer_destroy(l);
}

// ---- batch norm, eval mode ----
void check_bn_eval(int64_t n, int64_t c, int64_t h, int64_t w)
{
    const int64_t total = n * c * h * w;
    const double eps = 1e-3;
    rn_layer *l = rn_batchnorm2d_create("bn", c, eps, 0.1, err, sizeof err);
    rn_shape in = rn_shape_make(4, std::vector<int64_t>{n, c, h, w}.data()), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    float *gamma = l->params[0].value->data, *beta = l->params[1].value->data,
          *rm = l->params[2].value->data, *rv = l->params[3].value->data;
    fill(gamma, c, 41, 0.5f, 1.5f, false);
    fill(beta, c, 42, -0.5f, 0.5f, false);
    fill(rm, c, 43, -1.0f, 1.0f, false);
    fill(rv, c, 44, 0.1f, 3.0f, false);
    rn_tensor x = tensor({n, c, h, w}), y = tensor({n, c, h, w}), dy = tensor({n, c, h, w}),
              dx = tensor({n, c, h, w});
    fill(x.data, total, 45, -3.0f, 3.0f, false);
    fill(dy.data, total, 46, -1.0f, 1.0f, false);
    CHECK(l->ops->forward(l, &x, &y, false) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    std::vector<float> coef(4 * c), yd(total, -7.0f), gd(total, -7.0f), acc(total), pre(total);
    fill(pre.data(), total, 47, -1.0f, 1.0f, false);
    acc = pre;
    int rc = rn_cuda_bn_eval_forward(x.data, yd.data(), gamma, beta, rm, rv, eps, coef.data(), n,
                                     c, h * w, nullptr, err, sizeof err);
    rc |= rn_cuda_bn_eval_backward(x.data, dy.data, gd.data(), coef.data(), n, c, h * w, 0,
                                   nullptr, err, sizeof err);
    rc |= rn_cuda_bn_eval_backward(x.data, dy.data, acc.data(), coef.data(), n, c, h * w, 1,
                                   nullptr, err, sizeof err);
    CHECK(rc == 0);
    CHECK(same(yd.data(), y.data, total));
    CHECK(same(gd.data(), dx.data, total));
    CHECK(accumulated(pre.data(), dx.data, acc.data(), total));
    std::printf("  batch_norm2d eval %lldx%lldx%lldx%lld: output and input gradient (written, "
                "accumulated) equal batchnorm2d.c's\n", static_cast<long long>(n),
                static_cast<long long>(c), static_cast<long long>(h), static_cast<long long>(w));
    for (rn_tensor *t : {&x, &y, &dy, &dx}) rn_tensor_free(t);
    rn_layer_destroy(l);
}

// ---- global average pooling ----
void check_gap(int64_t n, int64_t c, int64_t h, int64_t w)
{
    const int64_t total = n * c * h * w, planes = n * c;
    rn_layer *l = rn_global_avgpool2d_create();
    rn_shape in = rn_shape_make(4, std::vector<int64_t>{n, c, h, w}.data()), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    rn_tensor x = tensor({n, c, h, w}), y = tensor({n, c, 1, 1}), dy = tensor({n, c, 1, 1}),
              dx = tensor({n, c, h, w});
    fill(x.data, total, 51, -3.0f, 3.0f, false);
    fill(dy.data, planes, 52, -1.0f, 1.0f, false);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, &dx) == 0);
    std::vector<float> yd(planes, -7.0f), gd(total, -7.0f);
    int rc = rn_cuda_gap_forward(x.data, yd.data(), planes, h * w, nullptr, err, sizeof err);
    rc |= rn_cuda_gap_backward(dy.data, gd.data(), planes, h * w, 0, nullptr, err, sizeof err);
    CHECK(rc == 0);
    CHECK(same(yd.data(), y.data, planes));
    CHECK(same(gd.data(), dx.data, total));
    std::printf("  global_avg_pool2d %lldx%lldx%lldx%lld: forward and backward equal the CPU "
                "layer's\n", static_cast<long long>(n), static_cast<long long>(c),
                static_cast<long long>(h), static_cast<long long>(w));
    for (rn_tensor *t : {&x, &y, &dy, &dx}) rn_tensor_free(t);
    rn_layer_destroy(l);
}

// ---- linear's bias ----
void check_linear_bias(int64_t n, int64_t f)
{
    const int64_t in_f = 3;
    rn_layer *l = rn_linear_create("fc", in_f, f, true, 5, err, sizeof err);
    rn_shape in = rn_shape_make(2, std::vector<int64_t>{n, in_f}.data()), out;
    CHECK(l->ops->setup(l, &in, &out, err, sizeof err) == 0);
    rn_tensor x = tensor({n, in_f}), y = tensor({n, f}), dy = tensor({n, f});
    fill(x.data, n * in_f, 61, -1.0f, 1.0f, false);
    fill(dy.data, n * f, 62, -1.0f, 1.0f, false);
    CHECK(l->ops->forward(l, &x, &y, true) == 0);
    CHECK(l->ops->backward(l, &x, &y, &dy, nullptr) == 0);
    const float *b = l->params[1].value->data, *db = l->params[1].grad->data;
    std::vector<float> dbd(f, -7.0f), rows(n * f, -7.0f);
    int rc = rn_cuda_bias_grad(dy.data, dbd.data(), n, f, nullptr, err, sizeof err);
    rc |= rn_cuda_bias_rows(b, rows.data(), n, f, nullptr, err, sizeof err);
    CHECK(rc == 0);
    CHECK(same(dbd.data(), db, f));
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; i++) wrong += !same(rows.data() + i * f, b, f);
    CHECK(wrong == 0);
    std::printf("  linear bias %lld x %lld: the gradient equals linear.c's, every row holds the "
                "bias\n", static_cast<long long>(n), static_cast<long long>(f));
    for (rn_tensor *t : {&x, &y, &dy}) rn_tensor_free(t);
    rn_layer_destroy(l);
}

// ---- accuracy hits ----
void check_hits(bool soft)
{
    const int64_t n = 300, k = 10;
    rn_tensor z = tensor({n, k});
    uint32_t s = 71;
    for (int64_t i = 0; i < n * k; i++) z.data[i] = static_cast<float>(lcg(s) % 7);  // ties
    std::vector<int32_t> labels(n);
    std::vector<float> t(n * k);
    for (int64_t i = 0; i < n; i++) labels[i] = static_cast<int32_t>(lcg(s) % k);
    fill(t.data(), n * k, 72, 0.0f, 1.0f, false);
    int64_t correct = -1;
    rn_cross_entropy2(&z, soft ? nullptr : labels.data(), soft ? t.data() : nullptr, 0.0,
                      nullptr, &correct);
    std::vector<int32_t> hits(n, -7);
    CHECK(rn_cuda_row_hits(z.data, n, k, soft ? nullptr : labels.data(), t.data(), hits.data(),
                           nullptr, err, sizeof err) == 0);
    int64_t sum = 0;
    for (int32_t h : hits) sum += h;
    CHECK(sum == correct);
    std::printf("  hits with %s: %lld of %lld, as rn_cross_entropy2 counts\n",
                soft ? "soft targets" : "labels", static_cast<long long>(sum),
                static_cast<long long>(n));
    rn_tensor_free(&z);
}

void check_scale()
{
    const int64_t n = 65537;
    std::vector<float> g(n), want(n);
    fill(g.data(), n, 81, -3.0f, 3.0f, true);
    const float s = static_cast<float>(1.0 / 3.7);
    for (int64_t i = 0; i < n; i++) want[i] = g[i] * s;  // grads.c: gr[j] *= s
    CHECK(rn_cuda_scale(g.data(), n, s, nullptr, err, sizeof err) == 0);
    CHECK(same(g.data(), want.data(), n));
    std::printf("  gradient scale over %lld elements equals grads.c's\n",
                static_cast<long long>(n));
}

// clip_grad.value and gradient accumulation (3 micro-batches of 32, 17 and 5 samples, then the
// mean) against grads.c's expressions, written out.
void check_clamp_accumulate()
{
    const int64_t n = 70001;
    std::vector<float> g(n), want(n), acc(n, -9.0f), racc(n), mean(n);
    fill(g.data(), n, 91, -3.0f, 3.0f, true);
    const float v = 0.75f;
    for (int64_t i = 0; i < n; i++) want[i] = g[i] > v ? v : g[i] < -v ? -v : g[i];
    std::vector<float> c = g;
    CHECK(rn_cuda_clamp(c.data(), n, v, nullptr, err, sizeof err) == 0);
    CHECK(same(c.data(), want.data(), n));
    const int64_t sizes[3] = {32, 17, 5};
    for (int m = 0; m < 3; m++) {
        fill(g.data(), n, 92 + static_cast<uint32_t>(m), -2.0f, 2.0f, true);
        const float w = static_cast<float>(sizes[m]);
        for (int64_t i = 0; i < n; i++) racc[i] = m == 0 ? w * g[i] : racc[i] + w * g[i];
        CHECK(rn_cuda_accumulate(acc.data(), g.data(), n, w, m == 0, nullptr, err, sizeof err) ==
              0);
    }
    CHECK(same(acc.data(), racc.data(), n));
    const float inv = 1.0f / static_cast<float>(32 + 17 + 5);
    for (int64_t i = 0; i < n; i++) want[i] = racc[i] * inv;
    CHECK(rn_cuda_mean(mean.data(), acc.data(), n, inv, nullptr, err, sizeof err) == 0);
    CHECK(same(mean.data(), want.data(), n));
    std::printf("  clamp, accumulation over 3 micro-batches and the mean, over %lld elements, "
                "equal grads.c's\n", static_cast<long long>(n));
}

// ---- fp16's unscale ----
void check_unscale(float scale)
{
    const int64_t sizes[4] = {1, 255, 257, 1500};
    rn_grad_scaler gs;
    rn_grad_scaler_init(&gs);
    gs.scale = scale;
    const float inv = rn_grad_scaler_inv_scale(&gs);
    struct Bad {
        int tensor;
        int64_t at;
        float v;
    };
    const Bad cases[] = {{-1, 0, 0.0f},       {0, 0, INFINITY},    {3, 1499, -INFINITY},
                         {1, 128, NAN},       {2, 256, INFINITY},  {3, 700, NAN},
                         {2, 0, -INFINITY}};
    int wrong_values = 0, wrong_flags = 0;
    for (const Bad &c : cases) {
        std::vector<std::vector<float>> dev(4), cpu(4);
        int want = 0;
        for (int t = 0; t < 4; t++) {
            dev[t].assign(static_cast<size_t>(sizes[t]) + 1, -7.0f);  // one past n: untouched
            fill(dev[t].data(), sizes[t], 101 + static_cast<uint32_t>(t), -4e4f, 4e4f, false);
            if (t == c.tensor) dev[t][c.at] = c.v;
            cpu[t] = dev[t];
            want |= rn_grad_scaler_unscale(&gs, cpu[t].data(), static_cast<size_t>(sizes[t]));
        }
        int flag = 0;
        for (int t = 0; t < 4; t++)
            CHECK(rn_cuda_unscale(dev[t].data(), sizes[t], inv, &flag, nullptr, err,
                                  sizeof err) == 0);
        for (int t = 0; t < 4; t++)
            wrong_values += !same(dev[t].data(), cpu[t].data(), sizes[t] + 1);
        wrong_flags += flag != want || want != (c.tensor >= 0);
    }
    CHECK(wrong_values == 0);
    CHECK(wrong_flags == 0);
    // a flag set by an earlier tensor is not cleared by a clean one
    std::vector<float> clean(300, 1.0f);
    int flag = 1;
    CHECK(rn_cuda_unscale(clean.data(), 300, inv, &flag, nullptr, err, sizeof err) == 0);
    CHECK(flag == 1 && clean[0] == inv && clean[299] == inv);
    std::printf("  unscale (scale %g) over 4 tensors, %zu placements of inf / NaN: values and "
                "flag as rn_grad_scaler_unscale\n", static_cast<double>(scale),
                sizeof cases / sizeof *cases - 1);
}

// ---- 16-bit conversions ----
void check_convert(int fp16)
{
    const int64_t n = 20011;
    std::vector<float> x(n);
    uint32_t s = 111 + static_cast<uint32_t>(fp16);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t u = rn_emu_test::lcg(s) << 8 | (rn_emu_test::lcg(s) & 0xff);
        float f;
        std::memcpy(&f, &u, 4);
        // half the values random bit patterns, half spread over half's range
        x[i] = i % 2 ? f
                     : uniform(s, -1.0f, 1.0f) * std::ldexp(1.0f, static_cast<int>(i % 41) - 25);
    }
    const float edges[] = {0.0f, -0.0f, 65504.0f, 65520.0f, -65520.0f, 0x1p-24f, 0x1p-25f,
                           0x1.8p-24f, 3.4e38f, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) x[i * 197] = edges[i];
    std::vector<uint16_t> h(n + 1, 0xbeef);
    CHECK(rn_cuda_narrow(x.data(), h.data(), n, fp16, nullptr, err, sizeof err) == 0);
    int64_t narrow_bad = 0, wide_bad = 0;
    for (int64_t i = 0; i < n; i++)
        narrow_bad += h[i] != (fp16 ? rn_f16_from_f32(x[i]) : rn_bf16_from_f32(x[i]));
    CHECK(narrow_bad == 0 && h[n] == 0xbeef);
    std::vector<float> y(n + 1, -7.0f), pre(n + 1), acc;
    fill(pre.data(), n, 121, -2.0f, 2.0f, false);
    pre[n] = -7.0f;
    acc = pre;
    CHECK(rn_cuda_widen(h.data(), y.data(), n, fp16, 0, nullptr, err, sizeof err) == 0);
    CHECK(rn_cuda_widen(h.data(), acc.data(), n, fp16, 1, nullptr, err, sizeof err) == 0);
    for (int64_t i = 0; i < n; i++) {
        const float w = fp16 ? rn_f16_to_f32(h[i]) : rn_bf16_to_f32(h[i]);
        wide_bad += std::memcmp(&w, &y[i], 4) != 0;
    }
    CHECK(wide_bad == 0 && y[n] == -7.0f);
    CHECK(accumulated(pre.data(), y.data(), acc.data(), n) && acc[n] == -7.0f);
    std::printf("  %s narrow and widen (written and accumulated) over %lld values equal the "
                "element functions\n", fp16 ? "fp16" : "bf16", static_cast<long long>(n));
}

}  // namespace

int main()
{
    check_elementwise(RELU, 0.0f);
    check_elementwise(LEAKY, 0.1f);
    check_elementwise(LEAKY, -0.3f);
    check_elementwise(GELU, 0.0f);
    check_residual();
    check_identity();
    check_bn_eval(2, 5, 7, 3);
    check_bn_eval(3, 16, 1, 1);
    check_gap(4, 6, 7, 5);
    check_gap(2, 3, 1, 1);
    check_linear_bias(300, 13);
    check_linear_bias(5, 300);
    check_hits(false);
    check_hits(true);
    check_scale();
    check_clamp_accumulate();
    check_unscale(65536.0f);
    check_unscale(3.0f);
    check_convert(0);
    check_convert(1);
    return rn_test_report("test_kernels_emu_net");
}
