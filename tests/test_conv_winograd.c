/* Winograd convolutions (cpu_conv.c, winograd_shape): which shapes take them, and their forward,
 * input gradient, weight and bias gradients against a direct convolution in double, next to
 * oneDNN's direct kernels on the same operands.
 *
 * The bound: errors are measured relative to sum |terms| (conv_ref.h). Direct float32 sums stay
 * within 2^-20 of it for these depths (<= 576 terms; measured 2^-24 to 2^-22); Winograd F(4x4, 3x3)
 * adds the error of its transforms, whose coefficients reach 8 (powers of 2 up to 2^3 in the
 * output transform): measured 2^-24 to 2^-18, 3-40x direct's, and bounded here at 2^-15. */
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

int main(void)
{
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
    /* while it fits a larger workspace (recipes' conv_workspace_mib), */
    rn_cpu_conv_set_workspace((size_t)256 << 20);
    CHECK(rn_cpu_conv_plan_create(&big, &d, err, sizeof err) == 0);
    if (big) {
        CHECK(strstr(rn_cpu_conv_impl(big, 0), "wino") != NULL);
        CHECK(strstr(rn_cpu_conv_impl(big, 2), "wino") != NULL);
    }
    rn_cpu_conv_plan_destroy(big);
    rn_cpu_conv_set_workspace(RN_CPU_CONV_WORKSPACE);
    /* and the default at batch 2 */
    d.n = 2;
    CHECK(rn_cpu_conv_plan_create(&big, &d, err, sizeof err) == 0);
    if (big) CHECK(strstr(rn_cpu_conv_impl(big, 0), "wino") != NULL);
    rn_cpu_conv_plan_destroy(big);
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
