/* Element math of the device network's own kernels (kernels/net_kernels.cu), written as the CPU
 * layers in runner/nn compute it, operation for operation, so the kernels round as the CPU does:
 * ReLU (relu.c; a residual block's activation in container.c, which differs at NaN and -0), LeakyReLU (leaky_relu.c), GELU
 * (gelu.c, the erf form in double), the residual sum and the accumulation of a tensor's gradient
 * (net.c), batch norm in eval mode (batchnorm2d.c), global average pooling (global_avgpool2d.c),
 * linear's bias gradient (linear.c), the gradient scaling of clip_grad (runner/core/grads.c) and
 * the loss's argmax hits (cross_entropy.c). The emulator test (tests/test_kernels_emu_net.cc)
 * holds each to its CPU layer, bit for bit. */
#ifndef RN_NET_ELEM_H
#define RN_NET_ELEM_H

#include <math.h>
#include <stdint.h>

#include "rn_hd.h"

#define RN_GELU_RSQRT2 0.70710678118654752440   /* 1 / sqrt(2) */
#define RN_GELU_RSQRT2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */

/* A gradient contribution d written into g, or added to what g holds (a tensor read by several
 * nodes: the first writes, the others add, as net.c's accumulate). */
RN_HD float rn_grad_put(float g, float d, int accumulate)
{
    return accumulate ? g + d : d;
}

/* The residual sum a + b (container.c, net.c's ADD). */
RN_HD float rn_add_elem(float a, float b)
{
    return a + b;
}

/* ReLU as relu.c: x > 0 ? x : 0 (NaN and -0 give +0). */
RN_HD float rn_relu_elem(float x)
{
    return x > 0.0f ? x : 0.0f;
}

/* A residual block's activation as container.c: x < 0 ? 0 : x (NaN and -0 pass through, unlike
 * the relu layer). */
RN_HD float rn_residual_relu_elem(float x)
{
    return x < 0.0f ? 0.0f : x;
}

/* ReLU's input gradient from its output y: dy where y > 0, else 0 (relu.c; a residual block's
 * activation too: y > 0 exactly when the sum z > 0). */
RN_HD float rn_relu_grad(float y, float dy)
{
    return y > 0.0f ? dy : 0.0f;
}

/* LeakyReLU with slope a (the layer's float): x for x > 0, x a otherwise. */
RN_HD float rn_leaky_relu_elem(float x, float a)
{
    return x > 0.0f ? x : x * a;
}

/* LeakyReLU's input gradient, decided on x (the sign of y says nothing for a negative slope). */
RN_HD float rn_leaky_relu_grad(float x, float dy, float a)
{
    return x > 0.0f ? dy : dy * a;
}

/* GELU, exact: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, in double, rounded once. */
RN_HD float rn_gelu_elem(float x)
{
    double v = x;
    return (float)(0.5 * v * (1.0 + erf(v * RN_GELU_RSQRT2)));
}

/* GELU's input gradient: dy (Phi(x) + x phi(x)), phi the standard normal density. */
RN_HD float rn_gelu_grad(float x, float dy)
{
    double v = x;
    double d = 0.5 * (1.0 + erf(v * RN_GELU_RSQRT2)) + v * RN_GELU_RSQRT2PI * exp(-0.5 * v * v);
    return (float)(dy * d);
}

/* Batch norm's per-channel coefficients in eval mode (running stats), as batchnorm2d.c forms
 * them: co[0] = a = float(gamma / sqrt(var + eps)), co[1] = float(mean), co[2] = beta, co[3] =
 * k = float(gamma / sqrt(var + eps)) for the input gradient (the same value as a; kept apart
 * because the CPU derives it separately). */
RN_HD void rn_bn_eval_coef(float gamma, float beta, float rmean, float rvar, double eps,
                           float co[4])
{
    double is = 1.0 / sqrt((double)rvar + eps);
    co[0] = (float)(gamma * is);
    co[1] = (float)(double)rmean;
    co[2] = beta;
    co[3] = (float)(gamma * is);
}

/* y = (x - mean) a + beta (batchnorm2d.c's forward once the coefficients are known). */
RN_HD float rn_bn_apply(float x, const float co[4])
{
    return (x - co[1]) * co[0] + co[2];
}

/* Eval-mode input gradient: dy k + (x - mean) u + v with u = v = 0, written as batchnorm2d.c's
 * train/eval formula so a signed zero or a NaN propagates as on the CPU. */
RN_HD float rn_bn_eval_grad(float x, float dy, const float co[4])
{
    return dy * co[3] + (x - co[1]) * 0.0f + 0.0f;
}

/* The mean of one plane of hw floats, summed in double in order (global_avgpool2d.c). */
RN_HD float rn_plane_mean(const float *p, int64_t hw)
{
    double s = 0.0;
    for (int64_t j = 0; j < hw; j++) s += p[j];
    return (float)(s / (double)hw);
}

/* Global average pooling's input gradient for one plane: dy / (h w), with 1/(h w) rounded to
 * float first, as global_avgpool2d.c. */
RN_HD float rn_plane_mean_grad(float dy, int64_t hw)
{
    return dy * (float)(1.0 / (double)hw);
}

/* Column j of g (n rows of f floats) summed in double, in row order (linear.c's bias
 * gradient). */
RN_HD float rn_col_sum(const float *g, int64_t n, int64_t f, int64_t j)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += g[i * f + j];
    return (float)s;
}

/* clip_grad's scaling of one gradient element (grads.c: g *= s). */
RN_HD float rn_scale_elem(float g, float s)
{
    return g * s;
}

/* clip_grad.value: g clamped to [-v, v] (grads.c). */
RN_HD float rn_clamp_elem(float g, float v)
{
    return g > v ? v : g < -v ? -v : g;
}

/* Gradient accumulation over micro-batches (grads.c): the running sum of w_j g_j (w_j the
 * micro-batch's samples), then the mean, a * (1 / total). */
RN_HD float rn_acc_elem(float a, float g, float w, int first)
{
    return first ? w * g : a + w * g;
}

/* Whether a row of logits z[0..k) is a hit (cross_entropy.c's accuracy): its argmax (first of
 * equal maxima) is the label, or, with soft targets t, the argmax of t. */
RN_HD int rn_row_hit(const float *z, int64_t k, int32_t label, const float *t)
{
    int64_t best = 0, want = 0;
    for (int64_t j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    if (!t) return best == (int64_t)label;
    for (int64_t j = 1; j < k; j++)
        if (t[j] > t[want]) want = j;
    return best == want;
}

#endif
