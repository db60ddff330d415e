/* Average pooling, square window, symmetric zero padding, floor mode (PyTorch
 * nn.AvgPool2d(k, s, p, ceil_mode=False, count_include_pad)). */
#include "nn_internal.h"
#include "net.h"

#include <string.h>

typedef struct avg_impl {
    int64_t k, stride, pad;
    bool count_pad;
    int64_t c, h, w, oh, ow; /* set by setup */
} avg_impl;

static int avg_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    avg_impl *p = l->impl;
    char got[64];
    rn_nn_sample_str(in, got, sizeof got);
    if (in->ndim != 4)
        return rn_nn_err(err, errlen, "avg_pool2d: expected input CxHxW, got %s", got);
    if (in->d[2] + 2 * p->pad < p->k || in->d[3] + 2 * p->pad < p->k)
        return rn_nn_err(err, errlen,
                         "avg_pool2d: input %s is smaller than the %lldx%lld window (padding "
                         "%lld)",
                         got, (long long)p->k, (long long)p->k, (long long)p->pad);
    p->c = in->d[1];
    p->h = in->d[2];
    p->w = in->d[3];
    p->oh = (p->h + 2 * p->pad - p->k) / p->stride + 1;
    p->ow = (p->w + 2 * p->pad - p->k) / p->stride + 1;
    *out = rn_shape_make(4, (int64_t[]){in->d[0], p->c, p->oh, p->ow});
    return 0;
}

/* Output (i, j)'s window clipped to the input, [*h0, *h1) x [*w0, *w1), and its divisor: the
 * window within the padded input, or only its in-bounds part without count_include_pad. */
static float window(const avg_impl *p, int64_t i, int64_t j, int64_t *h0, int64_t *h1,
                    int64_t *w0, int64_t *w1)
{
    int64_t hs = i * p->stride - p->pad, ws = j * p->stride - p->pad;
    int64_t he = hs + p->k < p->h + p->pad ? hs + p->k : p->h + p->pad;
    int64_t we = ws + p->k < p->w + p->pad ? ws + p->k : p->w + p->pad;
    int64_t padded = (he - hs) * (we - ws);
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
    *h1 = he < p->h ? he : p->h;
    *w1 = we < p->w ? we : p->w;
    int64_t inside = (*h1 - *h0) * (*w1 - *w0);
    return (float)(p->count_pad ? padded : inside);
}

/* x (n, c, h, w) -> y (n, c, oh, ow) */
static int avg_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    const avg_impl *p = l->impl;
    const int64_t planes = x->shape.d[0] * p->c, h = p->h, w = p->w, oh = p->oh, ow = p->ow;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *in = x->data + pl * h * w;
        float *o = y->data + pl * oh * ow;
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                int64_t h0, h1, w0, w1;
                float div = window(p, i, j, &h0, &h1, &w0, &w1);
                float s = 0.0f;
                for (int64_t a = h0; a < h1; a++)
                    for (int64_t b = w0; b < w1; b++) s += in[a * w + b];
                o[i * ow + j] = div > 0.0f ? s / div : 0.0f;
            }
    }
    return 0;
}

/* every input of a window gets its dy / divisor */
static int avg_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                        rn_tensor *dx)
{
    if (!dx) return 0;
    const avg_impl *p = l->impl;
    const int64_t planes = x->shape.d[0] * p->c, h = p->h, w = p->w, oh = p->oh, ow = p->ow;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *gx = dx->data + pl * h * w;
        const float *g = dy->data + pl * oh * ow;
        memset(gx, 0, (size_t)(h * w) * sizeof *gx);
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                int64_t h0, h1, w0, w1;
                float div = window(p, i, j, &h0, &h1, &w0, &w1);
                if (!(div > 0.0f)) continue;
                float v = g[i * ow + j] / div;
                for (int64_t a = h0; a < h1; a++)
                    for (int64_t b = w0; b < w1; b++) gx[a * w + b] += v;
            }
    }
    return 0;
}

static void avg_ops_describe(const rn_layer *l, rn_node *node)
{
    const avg_impl *p = l->impl;
    node->kind = RN_NODE_AVGPOOL2D;
    node->kernel = p->k;
    node->stride = p->stride;
    node->padding = p->pad;
    node->count_include_pad = p->count_pad;
}

static const rn_layer_ops avg_ops = {
    .type = "avg_pool2d",
    .setup = avg_setup,
    .forward = avg_forward,
    .backward = avg_backward,
    .describe = avg_ops_describe,
};

rn_layer *rn_avgpool2d_create(int64_t kernel, int64_t stride, int64_t padding,
                              bool count_include_pad, char *err, size_t errlen)
{
    if (kernel < 1 || stride < 1 || padding < 0 || padding > kernel / 2) {
        rn_nn_err(err, errlen,
                  "avg_pool2d: expected kernel, stride >= 1 and 0 <= padding <= kernel / 2, got "
                  "%lld, %lld, %lld",
                  (long long)kernel, (long long)stride, (long long)padding);
        return NULL;
    }
    rn_layer *l = rn_nn_layer_new(&avg_ops, "", sizeof(avg_impl), 0);
    if (!l) {
        rn_nn_err(err, errlen, "avg_pool2d: out of memory");
        return NULL;
    }
    avg_impl *p = l->impl;
    p->k = kernel;
    p->stride = stride;
    p->pad = padding;
    p->count_pad = count_include_pad;
    return l;
}
