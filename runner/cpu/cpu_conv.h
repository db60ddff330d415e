/* 2-D convolution on the CPU with oneDNN primitives, behind an opaque plan.
 *
 * A plan is built once per shape (batch size included) and holds the forward, backward-data and
 * backward-weights primitives; their scratchpads and reorder copies live in the process-wide
 * arena (cpu_internal.h), so executing a plan allocates nothing once the arena has grown.
 * Callers pass NCHW (or, see src_blocked, nChw16c) activations and OIHW weights (float32,
 * row-major; with G groups, output channels [g OC/G, (g+1) OC/G) see input channels
 * [g IC/G, (g+1) IC/G), as in PyTorch). */
#ifndef RN_CPU_CONV_H
#define RN_CPU_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rn_cpu_conv_desc {
    int64_t n, ic, ih, iw;   /* input (N, C, H, W) */
    int64_t oc, kh, kw;      /* weights (OC, IC, KH, KW) */
    int64_t sh, sw;          /* stride, >= 1 */
    int64_t ph, pw;          /* zero padding on both sides, >= 0 */
    int64_t oh, ow;          /* output size: (ih + 2 ph - dh (kh - 1) - 1) / sh + 1, likewise w */
    int64_t dh, dw;          /* dilation as PyTorch counts it (1: dense kernel); 0 is taken as 1 */
    int64_t groups;          /* ic and oc divisible by it; weights are then (OC, IC/groups, KH,
                                KW); 0 is taken as 1 */
    bool bias;               /* a bias of OC values is added / its gradient computed */
    /* false: the primitives take NCHW/OIHW directly. true: oneDNN picks its preferred (blocked)
     * layouts and the plan reorders at its edges; faster for wide layers. */
    bool blocked;
    /* true: the primitives compute in bfloat16 (PyTorch's autocast to bf16): the input, weights
     * and output gradient are rounded to bf16 (round to nearest even) by the reorders at the
     * plan's edges, products accumulate in float32, and the output, bias, input gradient and
     * weight gradients stay float32 (the bias gradient sums the bf16-rounded output gradient).
     * Layouts are then always oneDNN's choice. */
    bool bf16;
    /* The caller's input (and input gradient) / output (and output gradient) are oneDNN's
     * nChw16c instead of NCHW (runner/nn/layer.h's blocked layout; that side's channels a multiple
     * of 16, and the plan then blocked). Where the primitive's own layout is the same, which is
     * what it picks for such channels, it reads or writes the caller's buffer with no reorder. */
    bool src_blocked, dst_blocked;
    /* The forward writes max(y, 0) (a ReLU folded in as a oneDNN post-op); backward is
     * unchanged, since it never reads y. */
    bool relu;
    /* The caller passes the output gradient in bf16 (uint16_t, rounded as kernels/amp_elem.h's
     * rn_bf16_from_f32), in the dst layout: with bf16, backward then converts nothing (without,
     * it widens it to float32). */
    bool dy_bf16;
    /* true: oneDNN's direct kernels only. false: a float32 3x3 convolution whose shape Winograd
     * speeds up runs Winograd F(4x4, 3x3) (cpu_conv.c, winograd_shape): a rounding error 3-40x
     * direct's, within 2^-18 of the sum of |terms| (tests/test_conv_winograd.c). */
    bool direct;
    /* true: forward only, for evaluation: no backward primitives (rn_cpu_conv_backward fails),
     * and the input's reorder copy, if any, is not kept past the call. rn_cpu_conv_forward_affine
     * takes such a plan. (The primitive is still oneDNN's forward_training one: for
     * forward_inference oneDNN 2.6 picks brgemm kernels in the nhwc layout here, reorders every
     * activation to it and transforms Winograd weights per call, 1.2-1.4x slower.) */
    bool inference;
} rn_cpu_conv_desc;

typedef struct rn_cpu_conv_plan rn_cpu_conv_plan;

/* Builds the forward and backward-weights primitives (backward-data is built on its first use,
 * since a model's first layer never needs it). Returns 0, or nonzero with one line in err. */
int rn_cpu_conv_plan_create(rn_cpu_conv_plan **out, const rn_cpu_conv_desc *d, char *err,
                            size_t errlen);
void rn_cpu_conv_plan_destroy(rn_cpu_conv_plan *p);
const rn_cpu_conv_desc *rn_cpu_conv_plan_desc(const rn_cpu_conv_plan *p);

/* y (N,OC,OH,OW) = conv(x (N,IC,IH,IW), w (OC,IC/G,KH,KW)) + b (OC); b is ignored without bias. */
int rn_cpu_conv_forward(rn_cpu_conv_plan *p, const float *x, const float *w, const float *b,
                        float *y, char *err, size_t errlen);
/* y = conv(x, w') + b' with w'[o] = w[o] s[o] and b'[o] = b[o] s[o] + t[o] per output channel o
 * (b NULL: no bias), then max(., 0) with relu: a batch norm in eval mode folded into the
 * convolution before it (s = gamma / sqrt(running_var + eps), t = beta - running_mean s), as
 * PyTorch's torch.fx fuser and oneDNN's graph API fold it for inference. w' is made per call, in
 * the arena, rounded once from double. The plan must be an inference plan with bias. */
int rn_cpu_conv_forward_affine(rn_cpu_conv_plan *p, const float *x, const float *w, const float *b,
                               const double *s, const double *t, float *y, char *err,
                               size_t errlen);
/* Gradients from x (N,IC,IH,IW), dy (N,OC,OH,OW; float, or bf16 with dy_bf16) and w
 * (OC,IC/G,KH,KW), all overwritten: dw (OC,IC/G,KH,KW), db (OC; ignored without bias) and, when
 * dx is not NULL, dx (N,IC,IH,IW). Must follow the forward call on the same x and w (a blocked
 * plan reuses forward's reorders of the input and, when the layouts agree, of the weights). */
int rn_cpu_conv_backward(rn_cpu_conv_plan *p, const float *x, const void *dy, const float *w,
                         float *dx, float *dw, float *db, char *err, size_t errlen);
/* Whether rn_cpu_conv_backward reads x itself; false when it reads the copy the forward made in
 * the primitive's layout or type instead (a plain input to a blocked plan, bf16). */
bool rn_cpu_conv_backward_reads_x(const rn_cpu_conv_plan *p);

/* The scratchpad, in bytes, a Winograd primitive may take (default RN_CPU_CONV_WORKSPACE): a
 * convolution whose Winograd primitive would need more runs direct, and 0 keeps every one direct.
 * Process-wide, like the arena its scratchpads live in; a plan follows the value at its creation,
 * in all three directions. */
#define RN_CPU_CONV_WORKSPACE ((size_t)16 << 20)
void rn_cpu_conv_set_workspace(size_t bytes);

/* oneDNN's implementation names ("jit:avx512_core", "gemm:jit", ...), for logs and benchmarks;
 * which: 0 forward, 1 backward data ("" until built), 2 backward weights. */
const char *rn_cpu_conv_impl(const rn_cpu_conv_plan *p, int which);

#endif
