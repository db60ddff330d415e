/* 2-D convolution, square kernel, symmetric zero padding, dilation and groups (PyTorch nn.Conv2d),
 * on oneDNN. */
#include "cpu_conv.h"
#include "net.h"
#include "nn_internal.h"

#include <math.h>
#include <runner/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plans cached per batch size: the full batch, the last partial one, and an eval batch size. */
#define CONV_PLANS 4

typedef struct conv_impl {
    int64_t in_ch, out_ch, k, stride, pad, dil, groups;
    bool bias;
    rn_tensor w, dw;        /* (out_ch, in_ch / groups, k, k) */
    rn_tensor b, db;        /* (out_ch) */
    /* Where the gradient of a frozen weight / bias goes when backward still runs (for dx or the
     * other param): rn_cpu_conv_backward always computes both. Allocated on first use. */
    rn_tensor spare_dw, spare_db;
    rn_cpu_conv_desc geom;  /* set by setup; n varies per plan */
    rn_cpu_conv_plan *plans[CONV_PLANS];
    int next_evict;
    /* Evaluation with the next batch norm folded in (conv_forward_bn): inference plans per
     * batch size, their per-channel scale and shift (2 out_ch, made on first use), and a count. */
    rn_cpu_conv_plan *eval_plans[CONV_PLANS];
    int eval_evict;
    double *fold_st;
    uint64_t folded_calls;
} conv_impl;

static void drop_plans(conv_impl *c)
{
    for (int i = 0; i < CONV_PLANS; i++) {
        rn_cpu_conv_plan_destroy(c->plans[i]);
        rn_cpu_conv_plan_destroy(c->eval_plans[i]);
        c->plans[i] = c->eval_plans[i] = NULL;
    }
    c->next_evict = c->eval_evict = 0;
}

/* The plan built for batch n, or NULL. */
static rn_cpu_conv_plan *plan_built(const conv_impl *c, int64_t n)
{
    for (int i = 0; i < CONV_PLANS; i++)
        if (c->plans[i] && rn_cpu_conv_plan_desc(c->plans[i])->n == n) return c->plans[i];
    return NULL;
}

/* A new plan for d in one of the CONV_PLANS slots of plans: a free one, else the next in turn
 * (*evict), whose plan goes. NULL with l->err set when oneDNN cannot build it. */
static rn_cpu_conv_plan *plan_new(rn_layer *l, rn_cpu_conv_plan **plans, int *evict,
                                  const rn_cpu_conv_desc *d)
{
    int slot = -1;
    for (int i = 0; i < CONV_PLANS && slot < 0; i++)
        if (!plans[i]) slot = i;
    if (slot < 0) {
        slot = *evict;
        *evict = (*evict + 1) % CONV_PLANS;
        rn_cpu_conv_plan_destroy(plans[slot]);
        plans[slot] = NULL;
    }
    char why[200];
    if (rn_cpu_conv_plan_create(&plans[slot], d, why, sizeof why)) {
        rn_nn_err(l->err, sizeof l->err, "%s", why);
        return NULL;
    }
    return plans[slot];
}

/* The plan for batch n, built on first use (allocation happens only then). */
static rn_cpu_conv_plan *plan_for(rn_layer *l, int64_t n)
{
    conv_impl *c = l->impl;
    const bool dy_bf16 = l->dy_bf16; /* paired by the chain (takes_dy_bf16): dy is bf16 */
    if (c->geom.dy_bf16 != dy_bf16) drop_plans(c);
    c->geom.dy_bf16 = dy_bf16;
    rn_cpu_conv_plan *built = plan_built(c, n);
    if (built) return built;
    rn_cpu_conv_desc d = c->geom;
    d.n = n;
    return plan_new(l, c->plans, &c->next_evict, &d);
}

void rn_conv2d_set_bf16(rn_layer *l, bool on)
{
    conv_impl *c = l->impl;
    if (c->geom.bf16 != on) drop_plans(c); /* rebuilt on the next call, for the new type */
    c->geom.bf16 = on;
}

static int conv_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    conv_impl *c = l->impl;
    char label[96], got[64];
    rn_nn_layer_label(l, label, sizeof label);
    rn_nn_sample_str(in, got, sizeof got);
    if (in->ndim != 4 || in->d[1] != c->in_ch)
        return rn_nn_err(err, errlen, "%s: expected input %lldxHxW, got %s", label,
                         (long long)c->in_ch, got);
    int64_t ek = c->dil * (c->k - 1) + 1; /* the dilated kernel's extent */
    int64_t oh = (in->d[2] + 2 * c->pad - ek) / c->stride + 1;
    int64_t ow = (in->d[3] + 2 * c->pad - ek) / c->stride + 1;
    if (in->d[2] + 2 * c->pad < ek || in->d[3] + 2 * c->pad < ek) {
        char dil[96] = "";
        if (c->dil > 1)
            snprintf(dil, sizeof dil, ", dilation %lld: %lldx%lld", (long long)c->dil,
                     (long long)ek, (long long)ek);
        return rn_nn_err(err, errlen,
                         "%s: input %s is smaller than the %lldx%lld kernel (padding %lld%s)",
                         label, got, (long long)c->k, (long long)c->k, (long long)c->pad, dil);
    }
    drop_plans(c);
    c->geom = (rn_cpu_conv_desc){
        .n = in->d[0], .ic = c->in_ch, .ih = in->d[2], .iw = in->d[3], .oc = c->out_ch,
        .kh = c->k, .kw = c->k, .sh = c->stride, .sw = c->stride, .ph = c->pad, .pw = c->pad,
        .oh = oh, .ow = ow, .dh = c->dil, .dw = c->dil, .groups = c->groups, .bias = c->bias,
        /* oneDNN's direct kernels want 16-channel blocks; with 16+ channels on either side they
         * beat its im2col+gemm path on plain NCHW by 2-3x, reorders included (MNIST CNN) */
        .blocked = c->in_ch >= 16 || c->out_ch >= 16,
        .bf16 = c->geom.bf16, /* rn_conv2d_set_bf16's, kept across a new shape */
        .src_blocked = l->in_blocked, .dst_blocked = l->out_blocked, /* the chain's, if set */
        .relu = l->relu_out,
    };
    *out = rn_shape_make(4, (int64_t[]){in->d[0], c->out_ch, oh, ow});
    l->err[0] = '\0';
    if (!plan_for(l, in->d[0])) return rn_nn_err(err, errlen, "%s: %s", label, l->err);
    return 0;
}

/* The chain has set the layouts: plans for the new ones, the max batch's built now. */
static int conv_relayout(rn_layer *l, bool allow, char *err, size_t errlen)
{
    (void)allow;
    conv_impl *c = l->impl;
    if (c->geom.src_blocked == l->in_blocked && c->geom.dst_blocked == l->out_blocked) return 0;
    drop_plans(c);
    c->geom.src_blocked = l->in_blocked;
    c->geom.dst_blocked = l->out_blocked;
    l->err[0] = '\0';
    if (!plan_for(l, c->geom.n)) {
        char label[96];
        rn_nn_layer_label(l, label, sizeof label);
        return rn_nn_err(err, errlen, "%s: %s", label, l->err);
    }
    return 0;
}

static int conv_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    conv_impl *c = l->impl;
    rn_cpu_conv_plan *p = plan_for(l, x->shape.d[0]);
    if (!p) return -1;
    return rn_cpu_conv_forward(p, x->data, c->w.data, c->bias ? c->b.data : NULL, y->data,
                               l->err, sizeof l->err);
}

/* The inference plan for batch n with a bias and, with relu, the ReLU post-op: the training
 * plans' geometry and layouts otherwise. Built on first use, like plan_for's. */
static rn_cpu_conv_plan *eval_plan_for(rn_layer *l, int64_t n, bool relu)
{
    conv_impl *c = l->impl;
    for (int i = 0; i < CONV_PLANS; i++) {
        const rn_cpu_conv_plan *p = c->eval_plans[i];
        if (p && rn_cpu_conv_plan_desc(p)->n == n && rn_cpu_conv_plan_desc(p)->relu == relu)
            return c->eval_plans[i];
    }
    rn_cpu_conv_desc d = c->geom;
    d.n = n;
    d.bias = true;
    d.relu = relu;
    d.dy_bf16 = false;
    d.inference = true;
    return plan_new(l, c->eval_plans, &c->eval_evict, &d);
}

/* rn_layer_ops.forward_bn: one convolution with folded weights and bias
 * (rn_cpu_conv_forward_affine), then bn's folded ReLU if any, into bn's output y, in its layout;
 * the convolution's own output is not written. In bf16 the two run as PyTorch's autocast runs
 * them, the convolution in bf16 and the batch norm in float after it (here in place in y):
 * folded, the scaled weights would be rounded to bf16, which moved ResNet-8's bf16 eval loss
 * 3x further from float32's. */
static int conv_forward_bn(rn_layer *l, rn_layer *bn, const rn_tensor *x, rn_tensor *y)
{
    conv_impl *c = l->impl;
    if (!rn_nn_folds_bn(l, bn) || l->out_blocked != bn->in_blocked)
        return rn_nn_err(l->err, sizeof l->err, "cannot fold the next layer into the "
                                                "convolution");
    if (c->geom.bf16) {
        if (conv_forward(l, x, y, false)) return -1;
        bn->err[0] = '\0';
        if (bn->ops->forward(bn, y, y, false))
            return rn_nn_err(l->err, sizeof l->err, "the batch norm after it: %s", bn->err);
        return 0;
    }
    if (!c->fold_st && !(c->fold_st = malloc(2 * (size_t)c->out_ch * sizeof *c->fold_st)))
        return rn_nn_err(l->err, sizeof l->err, "out of memory for the folded batch norm");
    rn_cpu_conv_plan *p = eval_plan_for(l, x->shape.d[0], bn->relu_out);
    if (!p) return -1;
    double *s = c->fold_st, *t = c->fold_st + c->out_ch;
    rn_batchnorm2d_eval_affine(bn, s, t);
    c->folded_calls++;
    return rn_cpu_conv_forward_affine(p, x->data, c->w.data, c->bias ? c->b.data : NULL, s, t,
                                      y->data, l->err, sizeof l->err);
}

/* The buffer a gradient is written to: the param's own, or a spare when the param is frozen. */
static float *grad_target(rn_layer *l, int slot, rn_tensor *own, rn_tensor *spare)
{
    if (!l->params[slot].frozen) return own->data;
    if (!spare->data && rn_tensor_alloc(spare, own->shape)) {
        rn_nn_err(l->err, sizeof l->err, "out of memory for a frozen parameter's gradient");
        return NULL;
    }
    return spare->data;
}

static int conv_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                         rn_tensor *dx)
{
    conv_impl *c = l->impl;
    if (!dx && !rn_nn_layer_trains(l)) return 0;
    rn_cpu_conv_plan *p = plan_for(l, x->shape.d[0]);
    if (!p) return -1;
    /* A frozen param's gradient is still computed (into a spare) since the plan has no
     * backward-data-only call; what is saved is the layers the chain does not run at all. */
    float *dw = grad_target(l, 0, &c->dw, &c->spare_dw);
    float *db = c->bias ? grad_target(l, 1, &c->db, &c->spare_db) : NULL;
    if (!dw || (c->bias && !db)) return -1;
    return rn_cpu_conv_backward(p, x->data, dy->data, c->w.data, dx ? dx->data : NULL, dw, db,
                                l->err, sizeof l->err);
}

/* The plan this batch's forward ran; without one (no forward yet), say it reads x. */
static bool conv_backward_reads_x(rn_layer *l, int64_t n)
{
    const rn_cpu_conv_plan *p = plan_built(l->impl, n);
    return !p || rn_cpu_conv_backward_reads_x(p);
}

static void conv_destroy(rn_layer *l)
{
    conv_impl *c = l->impl;
    drop_plans(c);
    rn_tensor_free(&c->w);
    rn_tensor_free(&c->dw);
    rn_tensor_free(&c->b);
    rn_tensor_free(&c->db);
    rn_tensor_free(&c->spare_dw);
    rn_tensor_free(&c->spare_db);
    free(c->fold_st);
}

static void conv_ops_describe(const rn_layer *l, rn_node *node)
{
    const conv_impl *c = l->impl;
    node->kind = RN_NODE_CONV2D;
    node->in_ch = c->in_ch;
    node->out_ch = c->out_ch;
    node->kernel = c->k;
    node->stride = c->stride;
    node->padding = c->pad;
    node->dilation = c->dil;
    node->groups = c->groups;
    node->bias = c->bias;
}

static const char *conv_kernel(const rn_layer *l)
{
    const conv_impl *c = l->impl;
    const rn_cpu_conv_plan *p = plan_built(c, c->geom.n);
    if (!p) return "";
    /* backward data is built on the first backward: forward and weights are what is known */
    bool f = strstr(rn_cpu_conv_impl(p, 0), "wino"), w = strstr(rn_cpu_conv_impl(p, 2), "wino");
    return f && w ? "winograd" : f ? "winograd fwd" : w ? "winograd dw" : "";
}

static const rn_layer_ops conv_ops = {
    .type = "conv2d",
    .setup = conv_setup,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
    .describe = conv_ops_describe,
    .layouts = RN_LAYOUT_IN | RN_LAYOUT_OUT,
    .relayout = conv_relayout,
    .folds_relu = true,
    .backward_skips_y = true,
    .dx_may_alias_x = true, /* rn_cpu_conv_backward: weights (reads x), then data (writes dx) */
    .backward_reads_x = conv_backward_reads_x,
    .kernel = conv_kernel,
    .takes_dy_bf16 = true,
    .forward_bn = conv_forward_bn,
};

rn_layer *rn_conv2d_create2(const char *name, const rn_conv2d_args *a, uint64_t seed, char *err,
                            size_t errlen)
{
    const char *nm = name ? name : "";
    if (a->in_ch < 1 || a->out_ch < 1 || a->kernel < 1 || a->stride < 1 || a->padding < 0 ||
        a->dilation < 1 || a->groups < 1) {
        rn_nn_err(err, errlen,
                  "conv2d %s: expected in_ch, out_ch, kernel, stride, dilation, groups >= 1 and "
                  "padding >= 0, got %lld, %lld, %lld, %lld, %lld, %lld, %lld",
                  nm, (long long)a->in_ch, (long long)a->out_ch, (long long)a->kernel,
                  (long long)a->stride, (long long)a->dilation, (long long)a->groups,
                  (long long)a->padding);
        return NULL;
    }
    if (a->in_ch % a->groups || a->out_ch % a->groups) {
        rn_nn_err(err, errlen,
                  "conv2d %s: in_ch %lld and out_ch %lld must both be divisible by groups %lld",
                  nm, (long long)a->in_ch, (long long)a->out_ch, (long long)a->groups);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&conv_ops, name, sizeof(conv_impl), a->bias ? 2 : 1);
    if (!l) {
        rn_nn_err(err, errlen, "conv2d %s: out of memory", nm);
        return NULL;
    }
    conv_impl *c = l->impl;
    c->in_ch = a->in_ch;
    c->out_ch = a->out_ch;
    c->k = a->kernel;
    c->stride = a->stride;
    c->pad = a->padding;
    c->dil = a->dilation;
    c->groups = a->groups;
    c->bias = a->bias;
    l->seed = seed;
    int64_t icg = a->in_ch / a->groups;
    rn_shape ws = rn_shape_make(4, (int64_t[]){a->out_ch, icg, a->kernel, a->kernel});
    rn_shape bs = rn_shape_make(1, (int64_t[]){a->out_ch});
    int bad = rn_tensor_alloc(&c->w, ws) || rn_tensor_alloc(&c->dw, ws) ||
              rn_nn_layer_set_param(l, 0, "weight", &c->w, &c->dw);
    if (!bad && a->bias)
        bad = rn_tensor_alloc(&c->b, bs) || rn_tensor_alloc(&c->db, bs) ||
              rn_nn_layer_set_param(l, 1, "bias", &c->b, &c->db);
    if (bad) {
        rn_layer_destroy(l);
        rn_nn_err(err, errlen, "conv2d %s: out of memory for the weights", nm);
        return NULL;
    }
    /* PyTorch's default: kaiming_uniform(a=sqrt(5)) and the bias both give U(+-1/sqrt(fan_in)),
     * fan_in = in_ch / groups * k * k */
    double bound = 1.0 / sqrt((double)(icg * a->kernel * a->kernel));
    rn_nn_fill_uniform(c->w.data, rn_tensor_numel(&c->w), bound, RN_NN_INIT_KEY(seed, 0));
    if (a->bias) rn_nn_fill_uniform(c->b.data, a->out_ch, bound, RN_NN_INIT_KEY(seed, 1));
    return l;
}

uint64_t rn_conv2d_folded_calls(const rn_layer *l)
{
    return l && l->ops == &conv_ops ? ((const conv_impl *)l->impl)->folded_calls : 0;
}

_Static_assert(((size_t)RN_CONV2D_CPU_WORKSPACE_MIB << 20) == RN_CPU_CONV_WORKSPACE,
               "the recipe's default workspace is the plan's");

void rn_conv2d_set_cpu_workspace(size_t bytes) { rn_cpu_conv_set_workspace(bytes); }

rn_layer *rn_conv2d_create(const char *name, int64_t in_ch, int64_t out_ch, int64_t kernel,
                           int64_t stride, int64_t padding, bool bias, uint64_t seed, char *err,
                           size_t errlen)
{
    if (in_ch < 1 || out_ch < 1 || kernel < 1 || stride < 1 || padding < 0) {
        rn_nn_err(err, errlen,
                  "conv2d %s: expected in_ch, out_ch, kernel, stride >= 1 and padding >= 0, got "
                  "%lld, %lld, %lld, %lld, %lld",
                  name ? name : "", (long long)in_ch, (long long)out_ch, (long long)kernel,
                  (long long)stride, (long long)padding);
        return NULL;
    }
    rn_conv2d_args a = {.in_ch = in_ch, .out_ch = out_ch, .kernel = kernel, .stride = stride,
                        .padding = padding, .dilation = 1, .groups = 1, .bias = bias};
    return rn_conv2d_create2(name, &a, seed, err, errlen);
}
