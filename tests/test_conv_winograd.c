/* Winograd convolutions (cpu_conv.c, winograd_shape): which shapes take them, and their forward,
 * input gradient, weight and bias gradients against a direct convolution in double, next to
 * oneDNN's direct kernels on the same operands.
 *
 * The bound: errors are measured relative to sum |terms| (conv_ref.h). Direct float32 sums stay
 * within 2^-20 of it for these depths (<= 576 terms; measured 2^-24 to 2^-22); Winograd F(4x4, 3x3)
 * adds the error of its transforms, whose coefficients reach 8 (powers of 2 up to 2^3 in the
 * output transform): measured 2^-24 to 2^-18, 3-40x direct's, and bounded here at 2^-15. */
#include <stdlib.h>
#include <string.h>

#include "conv_ref.h"
#include "cpu_conv.h"
#include "rn_test.h"

static void fill(float *p, int64_t n, unsigned seed)
{
    srand(seed);
    for (int64_t i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
}

typedef struct errs {
    double y, dx, dw, db;
    bool wino[3]; /* forward, backward data, backward weights ran Winograd */
} errs;

static errs run(rn_cpu_conv_desc d, const char *what)
{
    errs e = {0};
    int64_t nx = d.n * d.ic * d.ih * d.iw, nw = d.oc * d.ic * d.kh * d.kw;
    int64_t ny = d.n * d.oc * d.oh * d.ow;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(d.oc * 4), *y = malloc(ny * 4);
    float *dy = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc(d.oc * 4);
    double *ry = malloc(ny * 8), *my = malloc(ny * 8), *rdx = malloc(nx * 8), *mdx = malloc(nx * 8);
    double *rdw = malloc(nw * 8), *mdw = malloc(nw * 8), *rdb = malloc(d.oc * 8),
           *mdb = malloc(d.oc * 8);
    fill(x, nx, 1);
    fill(w, nw, 2);
    fill(b, d.oc, 3);
    fill(dy, ny, 4);
    rn_cpu_conv_plan *p = NULL;
    char err[256];
    int rc = rn_cpu_conv_plan_create(&p, &d, err, sizeof err);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "%s: %s\n", what, err);
        e.y = e.dx = e.dw = e.db = INFINITY;
        return e;
    }
    CHECK(rn_cpu_conv_forward(p, x, w, b, y, err, sizeof err) == 0);
    CHECK(rn_cpu_conv_backward(p, x, dy, w, dx, dw, db, err, sizeof err) == 0);
    conv_ref(&d, false, x, w, b, ry, my);
    conv_ref_backward(&d, false, x, w, dy, rdx, mdx, rdw, mdw, rdb, mdb);
    e.y = conv_ref_worst(y, ry, my, ny);
    e.dx = conv_ref_worst(dx, rdx, mdx, nx);
    e.dw = conv_ref_worst(dw, rdw, mdw, nw);
    e.db = d.bias ? conv_ref_worst(db, rdb, mdb, d.oc) : 0;
    for (int i = 0; i < 3; i++) e.wino[i] = strstr(rn_cpu_conv_impl(p, i), "wino") != NULL;
    printf("%-34s %-8s %-26s y %.1e dx %.1e dw %.1e db %.1e\n", what,
           d.direct ? "direct" : "default", rn_cpu_conv_impl(p, 0), e.y, e.dx, e.dw, e.db);
    rn_cpu_conv_plan_destroy(p);
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
    free(ry), free(my), free(rdx), free(mdx), free(rdw), free(mdw), free(rdb), free(mdb);
    return e;
}

static rn_cpu_conv_desc conv3(int64_t n, int64_t ic, int64_t oc, int64_t hw, int64_t pad)
{
    return (rn_cpu_conv_desc){.n = n, .ic = ic, .ih = hw, .iw = hw, .oc = oc, .kh = 3, .kw = 3,
                              .sh = 1, .sw = 1, .ph = pad, .pw = pad, .oh = hw + 2 * pad - 2,
                              .ow = hw + 2 * pad - 2, .bias = true, .blocked = true};
}

/* A shape Winograd takes: all three directions run it, within the bound, and direct on the same
 * operands is within direct's. */
static void check_winograd(rn_cpu_conv_desc d, const char *what)
{
    errs w = run(d, what);
    CHECK(w.wino[0] && w.wino[1] && w.wino[2]);
    CHECK(w.y <= 0x1p-15 && w.dx <= 0x1p-15 && w.dw <= 0x1p-15 && w.db <= 0x1p-15);
    d.direct = true;
    errs r = run(d, what);
    CHECK(!r.wino[0] && !r.wino[1] && !r.wino[2]);
    CHECK(r.y <= 0x1p-20 && r.dx <= 0x1p-20 && r.dw <= 0x1p-20 && r.db <= 0x1p-20);
    /* and the first really is another computation: its error is larger */
    CHECK(w.y > r.y && w.dx > r.dx);
}

/* A shape Winograd does not take runs direct, within direct's bound. */
static void check_direct(rn_cpu_conv_desc d, const char *what)
{
    errs r = run(d, what);
    CHECK(!r.wino[0] && !r.wino[1] && !r.wino[2]);
    CHECK(r.y <= 0x1p-20 && r.dx <= 0x1p-20 && r.dw <= 0x1p-20 && r.db <= 0x1p-20);
}

int main(void)
{
    /* the MNIST CNN's conv2 (no padding) and ResNet-8's last stage (7x7: partial tiles) */
    check_winograd(conv3(4, 32, 64, 26, 0), "32->64 26x26 pad 0");
    check_winograd(conv3(2, 64, 64, 7, 1), "64->64 7x7 pad 1");
    rn_cpu_conv_desc d = conv3(2, 64, 32, 9, 1);
    d.bias = false;
    d.blocked = false; /* plain caller layout: the plan reorders */
    check_winograd(d, "64->32 9x9 plain, no bias");

    /* what stays direct: too few channels, a plane under 4x4, a stride, too much scratch, bf16 */
    check_direct(conv3(2, 16, 16, 12, 1), "16->16 (too few channels)");
    check_direct(conv3(2, 64, 64, 3, 1), "64->64 3x3 plane");
    d = conv3(2, 64, 64, 9, 1);
    d.sh = d.sw = 2;
    d.oh = d.ow = 5;
    check_direct(d, "64->64 stride 2");
    /* too much scratch: ResNet-18's 256-channel 8x8 layer at batch 128 would need 54-75 MB
     * (planned only; running it against the double reference would take minutes) */
    d = conv3(128, 256, 256, 8, 1);
    rn_cpu_conv_plan *big = NULL;
    char err[256];
    CHECK(rn_cpu_conv_plan_create(&big, &d, err, sizeof err) == 0);
    if (big) {
        CHECK(strstr(rn_cpu_conv_impl(big, 0), "wino") == NULL);
        CHECK(strstr(rn_cpu_conv_impl(big, 2), "wino") == NULL);
    }
    rn_cpu_conv_plan_destroy(big);
    /* while the same layer at batch 2 fits */
    d.n = 2;
    CHECK(rn_cpu_conv_plan_create(&big, &d, err, sizeof err) == 0);
    if (big) CHECK(strstr(rn_cpu_conv_impl(big, 0), "wino") != NULL);
    rn_cpu_conv_plan_destroy(big);
    d = conv3(2, 64, 64, 9, 1);
    d.bf16 = true;
    errs b = run(d, "64->64 bf16");
    CHECK(!b.wino[0] && !b.wino[1] && !b.wino[2]);
    return rn_test_report("test_conv_winograd");
}
