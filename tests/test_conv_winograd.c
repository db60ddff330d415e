/* Winograd convolutions (cpu_conv.c, winograd_shape): which shapes take them, and their forward,
 * input gradient, weight and bias gradients against a direct convolution in double, next to
 * oneDNN's direct kernels on the same operands.
 *
 * The bounds: errors are measured relative to sum |terms| (conv_ref.h). Direct float32 sums
 * (up to 2,304 terms here, oneDNN summing in blocks) measured 2^-24 to 2^-22, checked at 2^-20;
 * Winograd F(4x4, 3x3) adds the error of its transforms, whose coefficients reach 8 (powers of 2
 * up to 2^3 in the output transform): measured 2^-24 to 2^-18, 3-40x direct's, checked at 2^-15.
 * Both are measurements with headroom, not proven bounds.
 *
 * oneDNN has Winograd for avx512_core only, and the scratch sizes below are this machine's
 * (2 threads); elsewhere the test says so and stops. */
#include <stdlib.h>
#include <string.h>

#include "conv_ref.h"

static bool wino(const conv_ref_errs *e, int which) { return strstr(e->impl[which], "wino"); }

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
    conv_ref_errs w = conv_ref_run(&d, false, what);
    CHECK(wino(&w, 0) && wino(&w, 1) && wino(&w, 2));
    CHECK(w.y <= 0x1p-15 && w.dx <= 0x1p-15 && w.dw <= 0x1p-15 && w.db <= 0x1p-15);
    d.direct = true;
    conv_ref_errs r = conv_ref_run(&d, false, "  the same, direct");
    CHECK(!wino(&r, 0) && !wino(&r, 1) && !wino(&r, 2));
    CHECK(r.y <= 0x1p-20 && r.dx <= 0x1p-20 && r.dw <= 0x1p-20 && r.db <= 0x1p-20);
    /* and the first really is another computation: its error is larger */
    CHECK(w.y > r.y && w.dx > r.dx);
}

/* A shape Winograd does not take runs direct, within direct's bound. */
static void check_direct(rn_cpu_conv_desc d, const char *what)
{
    conv_ref_errs r = conv_ref_run(&d, false, what);
    CHECK(!wino(&r, 0) && !wino(&r, 1) && !wino(&r, 2));
    CHECK(r.y <= 0x1p-20 && r.dx <= 0x1p-20 && r.dw <= 0x1p-20 && r.db <= 0x1p-20);
}

/* Makes a plan for d under workspace `ws`, then puts the default back: the plan keeps its own,
 * backward data included (built on the first backward, run here on zeros). `wino`: which
 * directions must run Winograd (1 forward, 2 backward data, 4 backward weights). */
static void check_plan(rn_cpu_conv_desc d, size_t ws, int wino, const char *what)
{
    rn_cpu_conv_set_workspace(ws);
    rn_cpu_conv_plan *p = NULL;
    char err[256];
    int rc = rn_cpu_conv_plan_create(&p, &d, err, sizeof err);
    rn_cpu_conv_set_workspace(RN_CPU_CONV_WORKSPACE);
    CHECK(rc == 0);
    if (rc) return;
    int64_t nx = d.n * d.ic * d.ih * d.iw, nw = d.oc * d.ic * 9, ny = d.n * d.oc * d.oh * d.ow;
    float *x = calloc(nx, 4), *w = calloc(nw, 4), *b = calloc(d.oc, 4), *y = calloc(ny, 4);
    float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(d.oc, 4);
    CHECK(rn_cpu_conv_forward(p, x, w, b, y, err, sizeof err) == 0);
    CHECK(rn_cpu_conv_backward(p, x, y, w, dx, dw, db, err, sizeof err) == 0);
    int got = 0;
    for (int i = 0; i < 3; i++) got |= strstr(rn_cpu_conv_impl(p, i), "wino") ? 1 << i : 0;
    printf("%-30s Winograd in directions %d (1 forward, 2 backward data, 4 weights)\n", what,
           got);
    CHECK(got == wino);
    rn_cpu_conv_plan_destroy(p);
    free(x), free(w), free(b), free(y), free(dx), free(dw), free(db);
}

/* A plan whose forward runs Winograd and backward weights direct (a workspace between their
 * scratchpads), so the two read the input in their own layouts: still within each one's bound. */
static void check_mixed(void)
{
    rn_cpu_conv_desc d = conv3(4, 32, 64, 26, 0);
    for (size_t ws = (size_t)1 << 20; ws <= RN_CPU_CONV_WORKSPACE; ws += (size_t)1 << 18) {
        rn_cpu_conv_set_workspace(ws);
        rn_cpu_conv_plan *p = NULL;
        char err[256];
        if (rn_cpu_conv_plan_create(&p, &d, err, sizeof err)) break;
        bool mixed =
            strstr(rn_cpu_conv_impl(p, 0), "wino") && !strstr(rn_cpu_conv_impl(p, 2), "wino");
        rn_cpu_conv_plan_destroy(p);
        if (!mixed) continue;
        printf("workspace %.2f MiB:\n", ws / 1048576.0);
        conv_ref_errs e = conv_ref_run(&d, false, "32->64 26x26 mixed");
        rn_cpu_conv_set_workspace(RN_CPU_CONV_WORKSPACE);
        CHECK(wino(&e, 0) && !wino(&e, 2));
        CHECK(e.y <= 0x1p-15 && e.dx <= 0x1p-15 && e.dw <= 0x1p-20 && e.db <= 0x1p-20);
        return;
    }
    rn_cpu_conv_set_workspace(RN_CPU_CONV_WORKSPACE);
    CHECK(!"a workspace between forward's and backward weights' scratchpads");
}

int main(void)
{
    if (!__builtin_cpu_supports("avx512f")) {
        printf("test_conv_winograd: this CPU has no AVX-512, for which oneDNN has no Winograd; "
               "nothing to test\n");
        return 0;
    }
    /* the MNIST CNN's conv2 (no padding) and ResNet-8's last stage (7x7: partial tiles) */
    check_winograd(conv3(4, 32, 64, 26, 0), "32->64 26x26 pad 0");
    check_winograd(conv3(2, 64, 64, 7, 1), "64->64 7x7 pad 1");
    rn_cpu_conv_desc d = conv3(2, 64, 32, 9, 1);
    d.bias = false;
    d.blocked = false; /* plain caller layout: the plan reorders */
    check_winograd(d, "64->32 9x9 plain, no bias");

    /* what stays direct: too few channels, a plane under 4x4, a stride, too much scratch, no
     * workspace, bf16 */
    check_direct(conv3(2, 16, 16, 12, 1), "16->16 (too few channels)");
    check_direct(conv3(2, 64, 64, 3, 1), "64->64 3x3 plane");
    d = conv3(2, 64, 64, 9, 1);
    d.sh = d.sw = 2;
    d.oh = d.ow = 5;
    check_direct(d, "64->64 stride 2");
    /* too much scratch: ResNet-18's 256-channel 8x8 layer at batch 128 would need 54-75 MB
     * (run on zeros: against the double reference it would take minutes); it fits a larger
     * workspace (recipes' conv_workspace_mib), and at batch 2 forward and backward data fit the
     * default (backward weights holds its transformed weights once per thread: 28 MB) */
    d = conv3(128, 256, 256, 8, 1);
    check_plan(d, RN_CPU_CONV_WORKSPACE, 0, "256->256 8x8, batch 128");
    check_plan(d, (size_t)256 << 20, 7, "  the same, 256 MiB workspace");
    d.n = 2;
    check_plan(d, RN_CPU_CONV_WORKSPACE, 3, "  the same, batch 2");
    check_mixed();

    /* no workspace: direct only */
    rn_cpu_conv_set_workspace(0);
    check_direct(conv3(4, 32, 64, 26, 0), "32->64 26x26, workspace 0");
    rn_cpu_conv_set_workspace(RN_CPU_CONV_WORKSPACE);
    d = conv3(2, 64, 64, 9, 1);
    d.bf16 = true;
    conv_ref_errs b = conv_ref_run(&d, true, "64->64 bf16");
    CHECK(!wino(&b, 0) && !wino(&b, 1) && !wino(&b, 2));
    CHECK(b.y <= 0x1p-20 && b.dx <= 0x1p-20 && b.dw <= 0x1p-20 && b.db <= 0x1p-20);
    return rn_test_report("test_conv_winograd");
}
