/* Global average pooling, (N, C, H, W) -> (N, C, 1, 1) (PyTorch nn.AdaptiveAvgPool2d((1, 1))). */
#include "nn_internal.h"
#include "net.h"

static int gap_setup(rn_layer *l, const rn_shape *in, rn_shape *out, char *err, size_t errlen)
{
    if (in->ndim != 4) {
        char got[64];
        rn_nn_sample_str(in, got, sizeof got);
        return rn_nn_err(err, errlen, "global_avg_pool2d: expected input CxHxW, got %s", got);
    }
    *out = rn_shape_make(4, (int64_t[]){in->d[0], in->d[1], 1, 1});
    return 0;
}

/* x (n, c, h, w) -> y (n, c, 1, 1): each plane's mean, summed in double */
static int gap_forward(rn_layer *l, const rn_tensor *x, rn_tensor *y, bool train)
{
    const int64_t planes = x->shape.d[0] * x->shape.d[1], hw = x->shape.d[2] * x->shape.d[3];
    const float *xs = x->data;
    float *ys = y->data;
    if (l->in_blocked) { /* nChw16c (layer.h): 16 planes side by side, summed in the same order */
        const int64_t blocks = planes / 16;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
        for (int64_t b = 0; b < blocks; b++) {
            const float *p = xs + b * hw * 16;
            double s[16] = {0};
            for (int64_t j = 0; j < hw; j++)
                for (int k = 0; k < 16; k++) s[k] += p[j * 16 + k];
            for (int k = 0; k < 16; k++) ys[b * 16 + k] = (float)(s[k] / (double)hw);
        }
        return 0;
    }
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *p = xs + pl * hw;
        double s = 0.0;
        for (int64_t j = 0; j < hw; j++) s += p[j];
        ys[pl] = (float)(s / (double)hw);
    }
    return 0;
}

/* dx = dy / (h w) over each plane */
static int gap_backward(rn_layer *l, const rn_tensor *x, const rn_tensor *y, const rn_tensor *dy,
                        rn_tensor *dx)
{
    if (!dx) return 0;
    const int64_t planes = x->shape.d[0] * x->shape.d[1], hw = x->shape.d[2] * x->shape.d[3];
    const float *g = dy->data;
    float *gx = dx->data;
    const float inv = (float)(1.0 / (double)hw);
    if (l->in_blocked) {
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
        for (int64_t b = 0; b < planes / 16; b++)
            for (int64_t j = 0; j < hw; j++)
                for (int k = 0; k < 16; k++) gx[(b * hw + j) * 16 + k] = g[b * 16 + k] * inv;
        return 0;
    }
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float v = g[pl] * inv;
        for (int64_t j = 0; j < hw; j++) gx[pl * hw + j] = v;
    }
    return 0;
}

static void gap_ops_describe(const rn_layer *l, rn_node *node)
{
    (void)l;
    node->kind = RN_NODE_GLOBAL_AVGPOOL2D;
}

static const rn_layer_ops gap_ops = {
    .type = "global_avg_pool2d",
    .setup = gap_setup,
    .forward = gap_forward,
    .backward = gap_backward,
    .describe = gap_ops_describe,
    .layouts = RN_LAYOUT_IN, /* a blocked input; the output is (n, c, 1, 1), plain */
};

rn_layer *rn_global_avgpool2d_create(void) { return rn_nn_layer_new(&gap_ops, "", 0, 0); }
