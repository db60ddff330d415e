/* oneDNN convolution plans (see cpu_conv.h). */
#include "cpu_conv.h"
#include "cpu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(what, call)                                                                    \
    do {                                                                                   \
        if (rn_cpu_check((call), "convolution", what, err, errlen)) return -1;             \
    } while (0)

/* One primitive argument: `user` wraps the caller's plain buffer (handle set per call); `prim` is
 * what the primitive reads or writes, the same object unless the layouts differ, in which case a
 * reorder runs before (inputs) or after (outputs) the primitive. */
typedef struct bound {
    dnnl_memory_t user;
    dnnl_memory_t prim;
    dnnl_primitive_t reorder; /* user->prim for inputs, prim->user for outputs; NULL if none */
    int slot;                 /* prim lives in this arena slot for the call (cpu_internal.h),
                                 or -1: its own buffer, kept from call to call */
} bound;

typedef struct step {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch; /* over the arena's scratchpad slot, pointed there per call */
} step;

struct rn_cpu_conv_plan {
    rn_cpu_conv_desc d;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md; /* plain NCHW / OIHW / x */
    dnnl_memory_desc_t ddst_md;                    /* the caller's dy: dst_md, or bf16 */
    dnnl_primitive_attr_t attr;                     /* user-managed scratchpad (the arena's) */
    dnnl_primitive_attr_t fwd_attr;                 /* attr, plus the ReLU post-op with relu */
    step fwd, bwd_data, bwd_w;
    bound f_src, f_w, f_b, f_dst;      /* forward */
    bound d_diff_dst, d_w, d_diff_src; /* backward data */
    bound w_src, w_diff_dst, w_diff_w, w_diff_b; /* backward weights */
    size_t wino_max;                   /* the workspace when the plan was made: every direction,
                                          backward data too (built later), follows it */
    int w_src_shares_fwd;              /* backward weights reads the forward's reordered src */
    int d_diff_dst_shares_w;           /* backward data reads backward weights' reordered dy */
    float *affine_b;                   /* (oc): rn_cpu_conv_forward_affine's bias, inference */
};

static void bound_destroy(bound *b)
{
    if (b->reorder) dnnl_primitive_destroy(b->reorder);
    if (b->prim && b->prim != b->user) dnnl_memory_destroy(b->prim);
    if (b->user) dnnl_memory_destroy(b->user);
    memset(b, 0, sizeof *b);
}

/* is_input: reorder user->prim before the primitive; otherwise prim->user after it. `share` (may
 * be NULL) is an existing prim memory with the same layout to use instead of a new buffer. slot:
 * the arena slot the prim copy lives in during a call, or -1 for a buffer of its own (what must
 * outlive the call: the forward's reordered input, which backward weights reads; the bias). */
static int bound_init(rn_cpu_conv_plan *p, bound *b, const dnnl_memory_desc_t *user_md,
                      const dnnl_memory_desc_t *prim_md, int is_input, dnnl_memory_t share,
                      int slot, char *err, size_t errlen)
{
    b->slot = -1;
    TRY("memory_create", dnnl_memory_create(&b->user, user_md, p->eng, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(user_md, prim_md)) {
        b->prim = b->user;
        return 0;
    }
    if (share) {
        b->prim = share;
        return 0; /* owned by the other bound (see the *_shares_* flags) */
    }
    if (slot >= 0) {
        rn_cpu_arena_reserve(slot, dnnl_memory_desc_get_size(prim_md));
        b->slot = slot;
    }
    TRY("memory_create", dnnl_memory_create(&b->prim, prim_md, p->eng,
                                            slot >= 0 ? DNNL_MEMORY_NONE : DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = is_input ? user_md : prim_md;
    const dnnl_memory_desc_t *to = is_input ? prim_md : user_md;
    TRY("reorder_primitive_desc_create",
        dnnl_reorder_primitive_desc_create(&rpd, from, p->eng, to, p->eng, NULL));
    dnnl_status_t s = dnnl_primitive_create(&b->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    TRY("reorder primitive_create", s);
    return 0;
}

static dnnl_status_t bound_reorder(rn_cpu_conv_plan *p, bound *b)
{
    if (!b->reorder) return dnnl_success;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, b->user}, {DNNL_ARG_TO, b->prim}};
    return dnnl_primitive_execute(b->reorder, p->strm, 2, args);
}

static dnnl_status_t bound_reorder_out(rn_cpu_conv_plan *p, bound *b)
{
    if (!b->reorder) return dnnl_success;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, b->prim}, {DNNL_ARG_TO, b->user}};
    return dnnl_primitive_execute(b->reorder, p->strm, 2, args);
}

static void step_destroy(step *s)
{
    if (s->scratch) dnnl_memory_destroy(s->scratch);
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->pd) dnnl_primitive_desc_destroy(s->pd);
    memset(s, 0, sizeof *s);
}

/* Creates the primitive and a memory for its scratchpad, reserved in the arena. */
static int step_finish(rn_cpu_conv_plan *p, step *s, char *err, size_t errlen)
{
    TRY("primitive_create", dnnl_primitive_create(&s->prim, s->pd));
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_scratchpad_md, 0);
    size_t need = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (need > 0) {
        rn_cpu_arena_reserve(RN_ARENA_SCRATCH, need);
        TRY("scratchpad memory_create",
            dnnl_memory_create(&s->scratch, smd, p->eng, DNNL_MEMORY_NONE));
    }
    return 0;
}

/* oneDNN counts dilation from 0 (a dense kernel); PyTorch, and the desc, from 1. */
static void conv_dims(const rn_cpu_conv_desc *d, dnnl_dims_t strides, dnnl_dims_t dil,
                      dnnl_dims_t pad)
{
    strides[0] = d->sh;
    strides[1] = d->sw;
    dil[0] = d->dh - 1;
    dil[1] = d->dw - 1;
    pad[0] = d->ph;
    pad[1] = d->pw;
}

/* Weights (OC, IC, KH, KW), or (G, OC/G, IC/G, KH, KW) with groups: the same bytes as PyTorch's
 * (OC, IC/G, KH, KW). tag_any lets the primitive pick its layout. */
static dnnl_status_t weights_md_init(dnnl_memory_desc_t *md, const rn_cpu_conv_desc *d,
                                     int tag_any, dnnl_data_type_t dt)
{
    if (d->groups > 1) {
        dnnl_dims_t wd = {d->groups, d->oc / d->groups, d->ic / d->groups, d->kh, d->kw};
        return dnnl_memory_desc_init_by_tag(md, 5, wd, dt,
                                            tag_any ? dnnl_format_tag_any : dnnl_goihw);
    }
    dnnl_dims_t wd = {d->oc, d->ic, d->kh, d->kw};
    return dnnl_memory_desc_init_by_tag(md, 4, wd, dt, tag_any ? dnnl_format_tag_any : dnnl_oihw);
}

/* oneDNN holds a whole batch's transformed tiles in the scratchpad unless its tiled schedule fits
 * the caches: 54-140 MB for ResNet-18's 128- to 512-channel layers at batch 128, more than their
 * activations. A primitive whose scratchpad exceeds this runs direct instead; the tiled schedule
 * needs 7-10 MB at 1-8 threads, within the default (at 16, the MNIST CNN conv2's backward weights
 * passes it). Each plan keeps the value it was made with (wino_max). */
static size_t winograd_scratch_max = RN_CPU_CONV_WORKSPACE;

void rn_cpu_conv_set_workspace(size_t bytes) { winograd_scratch_max = bytes; }

/* Winograd F(4x4, 3x3) (oneDNN's jit_wino_4x3) computes a 3x3 convolution with a quarter of the
 * multiplications, at the price of transforming the input, weights and output per 6x6 tile and of a
 * rounding error a few times direct's (docs/performance.md, "Winograd for wide 3x3 convolutions").
 * On this machine's avx512_core it beats the direct kernels, which already run near peak, from
 * 32x64 channels on (the MNIST CNN's conv2: 20.2 to 15.4 ms a step; ResNet-18's 64-channel layers
 * 69 to 44 ms); with fewer channels it gains nothing and its backward weights is 1.5x slower; on
 * planes under 4x4 most of each tile is padding and it is 2-10x slower. The rule looks at the
 * shape, and step_pd at the scratchpad oneDNN asks for (which follows the batch, the CPU's caches
 * and the thread count), never at timings: a recipe computes the same on every run on one machine.
 * float32 only: oneDNN has no bf16 Winograd. */
static bool winograd_shape(const rn_cpu_conv_plan *p)
{
    const rn_cpu_conv_desc *d = &p->d;
    return !d->direct && p->wino_max > 0 && !d->bf16 && d->groups == 1 && d->kh == 3 &&
           d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 &&
           d->ic % 16 == 0 && d->oc % 16 == 0 && d->ic * d->oc >= 32 * 64 && d->oh >= 4 &&
           d->ow >= 4;
}

/* Creates s->pd from cd (a direct convolution): first as Winograd, the same descriptor with its
 * algorithm changed, when the shape takes it and the scratchpad fits, else as given. */
static int step_pd(rn_cpu_conv_plan *p, step *s, const dnnl_convolution_desc_t *cd,
                   dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, const char *what,
                   char *err, size_t errlen)
{
    dnnl_convolution_desc_t wino = *cd;
    wino.alg_kind = dnnl_convolution_winograd;
    if (winograd_shape(p) &&
        dnnl_primitive_desc_create(&s->pd, &wino, attr, p->eng, hint) == dnnl_success) {
        const dnnl_memory_desc_t *smd =
            dnnl_primitive_desc_query_md(s->pd, dnnl_query_scratchpad_md, 0);
        if (!smd || dnnl_memory_desc_get_size(smd) <= p->wino_max) return 0;
        dnnl_primitive_desc_destroy(s->pd);
        s->pd = NULL;
    }
    TRY(what, dnnl_primitive_desc_create(&s->pd, cd, attr, p->eng, hint));
    return 0;
}

/* Which tensors of a primitive are bf16 in a bf16 plan: what it reads (the input, the weights,
 * the output gradient); what it writes (output, gradients) stays f32, as does the bias. */
enum { BF_SRC = 1, BF_W = 2, BF_DST = 4 };

/* The memory descriptors a convolution primitive starts from: source, weights, bias and
 * destination (plain NCHW/OIHW, or "any" to let oneDNN pick a blocked layout); in a bf16 plan,
 * the tensors in `bf` are bf16. */
static int conv_mds(const rn_cpu_conv_plan *p, int bf, dnnl_memory_desc_t *src,
                    dnnl_memory_desc_t *w, dnnl_memory_desc_t *b, dnnl_memory_desc_t *dst,
                    char *err, size_t errlen)
{
    const rn_cpu_conv_desc *d = &p->d;
    dnnl_dims_t sd = {d->n, d->ic, d->ih, d->iw}, bd = {d->oc}, dd = {d->n, d->oc, d->oh, d->ow};
    int any = d->blocked || d->bf16 || d->src_blocked || d->dst_blocked || winograd_shape(p);
    dnnl_format_tag_t act = any ? dnnl_format_tag_any : dnnl_nchw;
    if (!d->bf16) bf = 0;
#define DT(bit) ((bf & (bit)) ? dnnl_bf16 : dnnl_f32)
    TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(src, 4, sd, DT(BF_SRC), act));
    TRY("memory_desc_init", weights_md_init(w, d, any, DT(BF_W)));
    TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x));
    TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(dst, 4, dd, DT(BF_DST), act));
#undef DT
    return 0;
}

static int build_forward(rn_cpu_conv_plan *p, char *err, size_t errlen)
{
    const rn_cpu_conv_desc *d = &p->d;
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t strides, dil, pad;
    if (conv_mds(p, BF_SRC | BF_W, &src, &w, &b, &dst, err, errlen)) return -1;
    conv_dims(d, strides, dil, pad);
    dnnl_convolution_desc_t cd;
    TRY("convolution_forward_desc_init",
        dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training,
                                                   dnnl_convolution_direct, &src, &w,
                                                   d->bias ? &b : NULL, &dst, strides, dil, pad,
                                                   pad));
    if (step_pd(p, &p->fwd, &cd, p->fwd_attr, NULL, "forward primitive_desc_create", err, errlen))
        return -1;
    if (step_finish(p, &p->fwd, err, errlen)) return -1;
    const dnnl_primitive_desc_t pd = p->fwd.pd;
    /* in training, backward weights may read the input's reorder copy: it is kept */
    if (bound_init(p, &p->f_src, &p->src_md, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
                   1, NULL, d->inference ? RN_ARENA_IN : -1, err, errlen) ||
        bound_init(p, &p->f_w, &p->w_md,
                   dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), 1, NULL,
                   RN_ARENA_W, err, errlen) ||
        bound_init(p, &p->f_dst, &p->dst_md,
                   dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), 0, NULL, RN_ARENA_OUT,
                   err, errlen))
        return -1;
    if (d->bias &&
        bound_init(p, &p->f_b, &p->b_md, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1),
                   1, NULL, -1, err, errlen))
        return -1;
    return 0;
}

static int build_backward_weights(rn_cpu_conv_plan *p, char *err, size_t errlen)
{
    const rn_cpu_conv_desc *d = &p->d;
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t strides, dil, pad;
    if (conv_mds(p, BF_SRC | BF_DST, &src, &w, &b, &dst, err, errlen)) return -1;
    conv_dims(d, strides, dil, pad);
    dnnl_convolution_desc_t cd;
    TRY("convolution_backward_weights_desc_init",
        dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src,
                                                            &w, d->bias ? &b : NULL, &dst,
                                                            strides, dil, pad, pad));
    if (step_pd(p, &p->bwd_w, &cd, p->attr, p->fwd.pd, "backward-weights primitive_desc_create",
                err, errlen))
        return -1;
    if (step_finish(p, &p->bwd_w, err, errlen)) return -1;
    const dnnl_primitive_desc_t pd = p->bwd_w.pd;
    const dnnl_memory_desc_t *src_prim = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *fwd_src =
        dnnl_primitive_desc_query_md(p->fwd.pd, dnnl_query_src_md, 0);
    /* Same blocked layout as forward's input: read the buffer forward already reordered into. */
    p->w_src_shares_fwd = p->f_src.reorder && dnnl_memory_desc_equal(src_prim, fwd_src);
    if (bound_init(p, &p->w_src, &p->src_md, src_prim, 1,
                   p->w_src_shares_fwd ? p->f_src.prim : NULL, RN_ARENA_IN, err, errlen) ||
        bound_init(p, &p->w_diff_dst, &p->ddst_md,
                   dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0), 1, NULL,
                   RN_ARENA_OUT, err, errlen) ||
        bound_init(p, &p->w_diff_w, &p->w_md,
                   dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0), 0, NULL,
                   RN_ARENA_DW, err, errlen))
        return -1;
    if (d->bias &&
        bound_init(p, &p->w_diff_b, &p->b_md,
                   dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 1), 0, NULL, -1,
                   err, errlen))
        return -1;
    return 0;
}

static int build_backward_data(rn_cpu_conv_plan *p, char *err, size_t errlen)
{
    const rn_cpu_conv_desc *d = &p->d;
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t strides, dil, pad;
    if (conv_mds(p, BF_W | BF_DST, &src, &w, &b, &dst, err, errlen)) return -1;
    conv_dims(d, strides, dil, pad);
    dnnl_convolution_desc_t cd;
    TRY("convolution_backward_data_desc_init",
        dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src,
                                                         &w, &dst, strides, dil, pad, pad));
    if (step_pd(p, &p->bwd_data, &cd, p->attr, p->fwd.pd, "backward-data primitive_desc_create",
                err, errlen))
        return -1;
    if (step_finish(p, &p->bwd_data, err, errlen)) return -1;
    const dnnl_primitive_desc_t pd = p->bwd_data.pd;
    const dnnl_memory_desc_t *dd_prim = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    const dnnl_memory_desc_t *wdd_prim =
        dnnl_primitive_desc_query_md(p->bwd_w.pd, dnnl_query_diff_dst_md, 0);
    /* Same layout as backward weights' output gradient: reuse the reorder made there. */
    p->d_diff_dst_shares_w = p->w_diff_dst.reorder && dnnl_memory_desc_equal(dd_prim, wdd_prim);
    /* The weights are reordered (or converted to bf16) into the arena again: forward's copy
     * there is not kept. */
    const dnnl_memory_desc_t *dw_prim = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    /* A shared output gradient is the arena copy backward weights made in this same call. */
    if (bound_init(p, &p->d_diff_dst, &p->ddst_md, dd_prim, 1,
                   p->d_diff_dst_shares_w ? p->w_diff_dst.prim : NULL, RN_ARENA_OUT, err,
                   errlen) ||
        bound_init(p, &p->d_w, &p->w_md, dw_prim, 1, NULL, RN_ARENA_W, err, errlen) ||
        bound_init(p, &p->d_diff_src, &p->src_md,
                   dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0), 0, NULL,
                   RN_ARENA_IN, err, errlen))
        return -1;
    return 0;
}

int rn_cpu_conv_plan_create(rn_cpu_conv_plan **out, const rn_cpu_conv_desc *d, char *err,
                            size_t errlen)
{
    *out = NULL;
    rn_cpu_conv_desc g = *d;
    if (g.dh == 0) g.dh = 1;
    if (g.dw == 0) g.dw = 1;
    if (g.groups == 0) g.groups = 1;
    d = &g;
    /* the extent of a dilated kernel */
    int64_t ekh = d->dh * (d->kh - 1) + 1, ekw = d->dw * (d->kw - 1) + 1;
    if (d->n < 1 || d->ic < 1 || d->oc < 1 || d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 ||
        d->ph < 0 || d->pw < 0 || d->dh < 1 || d->dw < 1 || d->groups < 1 ||
        d->ic % d->groups || d->oc % d->groups ||
        d->oh != (d->ih + 2 * d->ph - ekh) / d->sh + 1 ||
        d->ow != (d->iw + 2 * d->pw - ekw) / d->sw + 1 || d->oh < 1 || d->ow < 1 ||
        (d->src_blocked && d->ic % 16) || (d->dst_blocked && d->oc % 16)) {
        snprintf(err, errlen, "oneDNN convolution: inconsistent geometry");
        return -1;
    }
    rn_cpu_conv_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "oneDNN convolution: out of memory");
        return -1;
    }
    p->d = *d;
    p->wino_max = winograd_scratch_max;
    if (rn_cpu_engine(&p->eng, &p->strm, err, errlen)) goto fail;
    dnnl_dims_t sd = {d->n, d->ic, d->ih, d->iw}, bd = {d->oc}, dd = {d->n, d->oc, d->oh, d->ow};
    if (dnnl_memory_desc_init_by_tag(&p->src_md, 4, sd, dnnl_f32,
                                     d->src_blocked ? dnnl_nChw16c : dnnl_nchw) ||
        weights_md_init(&p->w_md, d, 0, dnnl_f32) ||
        dnnl_memory_desc_init_by_tag(&p->b_md, 1, bd, dnnl_f32, dnnl_x) ||
        dnnl_memory_desc_init_by_tag(&p->dst_md, 4, dd, dnnl_f32,
                                     d->dst_blocked ? dnnl_nChw16c : dnnl_nchw) ||
        dnnl_memory_desc_init_by_tag(&p->ddst_md, 4, dd, d->dy_bf16 ? dnnl_bf16 : dnnl_f32,
                                     d->dst_blocked ? dnnl_nChw16c : dnnl_nchw) ||
        dnnl_primitive_attr_create(&p->attr) ||
        dnnl_primitive_attr_set_scratchpad_mode(p->attr, dnnl_scratchpad_mode_user) ||
        dnnl_primitive_attr_clone(&p->fwd_attr, p->attr)) {
        snprintf(err, errlen, "oneDNN convolution: cannot describe the memory");
        goto fail;
    }
    if (d->relu) {
        dnnl_post_ops_t po = NULL;
        dnnl_status_t s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0, 0);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(p->fwd_attr, po);
        if (po) dnnl_post_ops_destroy(po);
        if (s != dnnl_success) {
            snprintf(err, errlen, "oneDNN convolution: cannot add the ReLU post-op (%s)",
                     rn_cpu_status_str(s));
            goto fail;
        }
    }
    if (build_forward(p, err, errlen) ||
        (!d->inference && build_backward_weights(p, err, errlen)))
        goto fail;
    if (d->inference) { /* rn_cpu_conv_forward_affine's weights in the arena, its bias here */
        rn_cpu_arena_reserve(RN_ARENA_DW, dnnl_memory_desc_get_size(&p->w_md));
        if (!(p->affine_b = malloc((size_t)d->oc * sizeof *p->affine_b))) {
            snprintf(err, errlen, "oneDNN convolution: out of memory");
            goto fail;
        }
    }
    *out = p;
    return 0;
fail:
    rn_cpu_conv_plan_destroy(p);
    return -1;
}

void rn_cpu_conv_plan_destroy(rn_cpu_conv_plan *p)
{
    if (!p) return;
    /* the first bound owns a shared buffer */
    if (p->w_src_shares_fwd) p->w_src.prim = p->w_src.user;
    if (p->d_diff_dst_shares_w) p->d_diff_dst.prim = p->d_diff_dst.user;
    bound *all[] = {&p->f_src,      &p->f_w,    &p->f_b,        &p->f_dst,
                    &p->d_diff_dst, &p->d_w,    &p->d_diff_src, &p->w_src,
                    &p->w_diff_dst, &p->w_diff_w, &p->w_diff_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bound_destroy(all[i]);
    step_destroy(&p->fwd);
    step_destroy(&p->bwd_data);
    step_destroy(&p->bwd_w);
    if (p->attr) dnnl_primitive_attr_destroy(p->attr);
    if (p->fwd_attr) dnnl_primitive_attr_destroy(p->fwd_attr);
    free(p->affine_b);
    free(p);
}

const rn_cpu_conv_desc *rn_cpu_conv_plan_desc(const rn_cpu_conv_plan *p) { return &p->d; }

/* Sets the user handle of an argument, points an arena copy at its slot, and returns the memory
 * the primitive should see (NULL: the arena is out of memory). */
static dnnl_memory_t bind(bound *b, const void *ptr)
{
    dnnl_memory_set_data_handle(b->user, (void *)ptr);
    if (b->slot >= 0) {
        void *buf = rn_cpu_arena(b->slot);
        if (!buf) return NULL;
        dnnl_memory_set_data_handle(b->prim, buf);
    }
    return b->prim;
}

/* args[0..n) all bound, or one line in err. */
static int bound_all(const dnnl_exec_arg_t *args, int n, const char *what, char *err,
                     size_t errlen)
{
    for (int i = 0; i < n; i++)
        if (!args[i].memory) {
            snprintf(err, errlen, "oneDNN convolution %s: out of memory for a blocked copy", what);
            return -1;
        }
    return 0;
}

static int exec(rn_cpu_conv_plan *p, step *s, dnnl_exec_arg_t *args, int nargs, const char *what,
                char *err, size_t errlen)
{
    if (s->scratch) {
        void *buf = rn_cpu_arena(RN_ARENA_SCRATCH);
        if (!buf) {
            snprintf(err, errlen, "oneDNN convolution %s: out of memory for its scratchpad",
                     what);
            return -1;
        }
        dnnl_memory_set_data_handle(s->scratch, buf);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = s->scratch;
        nargs++;
    }
    TRY(what, dnnl_primitive_execute(s->prim, p->strm, nargs, args));
    return 0;
}

int rn_cpu_conv_forward(rn_cpu_conv_plan *p, const float *x, const float *w, const float *b,
                        float *y, char *err, size_t errlen)
{
    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, bind(&p->f_src, x)};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, bind(&p->f_w, w)};
    if (p->d.bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bind(&p->f_b, b)};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, bind(&p->f_dst, y)};
    if (bound_all(args, n, "forward", err, errlen)) return -1;
    TRY("forward input reorder", bound_reorder(p, &p->f_src));
    TRY("forward weights reorder", bound_reorder(p, &p->f_w));
    if (p->d.bias) TRY("forward bias reorder", bound_reorder(p, &p->f_b));
    if (exec(p, &p->fwd, args, n, "forward", err, errlen)) return -1;
    TRY("forward output reorder", bound_reorder_out(p, &p->f_dst));
    return 0;
}

int rn_cpu_conv_forward_affine(rn_cpu_conv_plan *p, const float *x, const float *w, const float *b,
                               const double *s, const double *t, float *y, char *err,
                               size_t errlen)
{
    const rn_cpu_conv_desc *d = &p->d;
    if (!d->inference || !d->bias) {
        snprintf(err, errlen, "oneDNN convolution: an affine forward needs an inference plan "
                              "with bias");
        return -1;
    }
    float *wf = rn_cpu_arena(RN_ARENA_DW);
    if (!wf) {
        snprintf(err, errlen, "oneDNN convolution affine forward: out of memory for the weights");
        return -1;
    }
    const int64_t per = d->ic / d->groups * d->kh * d->kw; /* weights of one output channel */
#pragma omp parallel for schedule(static) if (d->oc * per > 65536)
    for (int64_t o = 0; o < d->oc; o++) {
        const float *src = w + o * per;
        float *dst = wf + o * per;
        for (int64_t k = 0; k < per; k++) dst[k] = (float)(src[k] * s[o]);
    }
    for (int64_t o = 0; o < d->oc; o++)
        p->affine_b[o] = (float)((b ? b[o] : 0.0) * s[o] + t[o]);
    return rn_cpu_conv_forward(p, x, wf, p->affine_b, y, err, errlen);
}

static int backward_weights(rn_cpu_conv_plan *p, const float *x, const void *dy, float *dw,
                            float *db, char *err, size_t errlen)
{
    dnnl_exec_arg_t args[6];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, bind(&p->w_src, x)};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, bind(&p->w_diff_dst, dy)};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, bind(&p->w_diff_w, dw)};
    if (p->d.bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, bind(&p->w_diff_b, db)};
    if (bound_all(args, n, "backward weights", err, errlen)) return -1;
    if (!p->w_src_shares_fwd) TRY("backward-weights input reorder", bound_reorder(p, &p->w_src));
    TRY("backward-weights output-gradient reorder", bound_reorder(p, &p->w_diff_dst));
    if (exec(p, &p->bwd_w, args, n, "backward weights", err, errlen)) return -1;
    TRY("backward-weights weights-gradient reorder", bound_reorder_out(p, &p->w_diff_w));
    if (p->d.bias)
        TRY("backward-weights bias-gradient reorder", bound_reorder_out(p, &p->w_diff_b));
    return 0;
}

static int backward_data(rn_cpu_conv_plan *p, const void *dy, const float *w, float *dx,
                         char *err, size_t errlen)
{
    if (!p->bwd_data.prim && build_backward_data(p, err, errlen)) {
        if (p->d_diff_dst_shares_w) p->d_diff_dst.prim = p->d_diff_dst.user;
        p->d_diff_dst_shares_w = 0;
        bound_destroy(&p->d_diff_dst);
        bound_destroy(&p->d_w);
        bound_destroy(&p->d_diff_src);
        step_destroy(&p->bwd_data);
        return -1;
    }
    dnnl_exec_arg_t args[4];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, bind(&p->d_diff_dst, dy)};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, bind(&p->d_w, w)};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, bind(&p->d_diff_src, dx)};
    if (bound_all(args, n, "backward data", err, errlen)) return -1;
    if (!p->d_diff_dst_shares_w)
        TRY("backward-data output-gradient reorder", bound_reorder(p, &p->d_diff_dst));
    TRY("backward-data weights reorder", bound_reorder(p, &p->d_w));
    if (exec(p, &p->bwd_data, args, n, "backward data", err, errlen)) return -1;
    TRY("backward-data input-gradient reorder", bound_reorder_out(p, &p->d_diff_src));
    return 0;
}

int rn_cpu_conv_backward(rn_cpu_conv_plan *p, const float *x, const void *dy, const float *w,
                         float *dx, float *dw, float *db, char *err, size_t errlen)
{
    if (p->d.inference) {
        snprintf(err, errlen, "oneDNN convolution: backward on an inference plan");
        return -1;
    }
    /* weights first: backward data may read the output-gradient reorder made here */
    if (backward_weights(p, x, dy, dw, db, err, errlen)) return -1;
    if (dx && backward_data(p, dy, w, dx, err, errlen)) return -1;
    return 0;
}

bool rn_cpu_conv_backward_reads_x(const rn_cpu_conv_plan *p) { return !p->w_src_shares_fwd; }

const char *rn_cpu_conv_impl(const rn_cpu_conv_plan *p, int which)
{
    const step *s = which == 0 ? &p->fwd : which == 1 ? &p->bwd_data : &p->bwd_w;
    const char *name = NULL;
    if (!s->pd ||
        dnnl_primitive_desc_query(s->pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success)
        return "";
    return name ? name : "";
}
