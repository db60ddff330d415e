/* GradScaler's semantics (PyTorch 1.13's _amp_update_scale_ and unscale_), against the rule
 * written out by hand: the scale starts at 2^16; a non-finite gradient skips the step, halves
 * the scale and resets the count; 2000 clean steps in a row double it; growth that would
 * overflow float keeps the scale (the count still resets); a custom interval and factors work.
 * Unscaling multiplies by float(1/double(scale)) exactly and flags inf, -inf and NaN but not
 * the largest finite floats or subnormals. */
#include <float.h>
#include <math.h>

#include "grad_scaler.h"
#include "rn_test.h"

int main(void)
{
    rn_grad_scaler s;
    rn_grad_scaler_init(&s);
    CHECK(s.scale == 65536.0f && s.growth_interval == 2000);

    /* 1999 clean steps: no change; the 2000th doubles; an inf at step 2100 halves it. */
    for (int i = 0; i < 1999; i++) CHECK(rn_grad_scaler_update(&s, 0) == 0);
    CHECK(s.scale == 65536.0f && s.growth_tracker == 1999);
    CHECK(rn_grad_scaler_update(&s, 0) == 0);
    CHECK(s.scale == 131072.0f && s.growth_tracker == 0);
    for (int i = 0; i < 99; i++) rn_grad_scaler_update(&s, 0);
    CHECK(rn_grad_scaler_update(&s, 1) == 1);
    CHECK(s.scale == 65536.0f && s.growth_tracker == 0 && s.skipped == 1);
    /* three infs in a row: 2^13; growth needs 2000 clean steps after the last one */
    for (int i = 0; i < 3; i++) rn_grad_scaler_update(&s, 1);
    CHECK(s.scale == 8192.0f && s.skipped == 4);
    for (int i = 0; i < 1999; i++) rn_grad_scaler_update(&s, 0);
    rn_grad_scaler_update(&s, 1);
    CHECK(s.scale == 4096.0f);
    for (int i = 0; i < 2000; i++) rn_grad_scaler_update(&s, 0);
    CHECK(s.scale == 8192.0f);

    /* never to inf: at 2^127 growth would overflow, so the scale stays and the count resets */
    s.scale = ldexpf(1.0f, 127);
    s.growth_tracker = 1999;
    rn_grad_scaler_update(&s, 0);
    CHECK(s.scale == ldexpf(1.0f, 127) && s.growth_tracker == 0);

    /* custom factors, as GradScaler(growth_factor=4, backoff_factor=0.25, growth_interval=3) */
    rn_grad_scaler_init(&s);
    s.growth_factor = 4.0, s.backoff_factor = 0.25, s.growth_interval = 3;
    for (int i = 0; i < 3; i++) rn_grad_scaler_update(&s, 0);
    CHECK(s.scale == 262144.0f);
    rn_grad_scaler_update(&s, 1);
    CHECK(s.scale == 65536.0f);
    /* a factor that is not a power of two rounds through double, then float, as the kernel */
    s.backoff_factor = 0.3;
    rn_grad_scaler_update(&s, 1);
    CHECK(s.scale == (float)(65536.0 * 0.3));

    /* unscale */
    rn_grad_scaler_init(&s);
    float g[6] = {65536.0f, -3.0f, FLT_MAX, 1e-40f, 0.0f, -0.0f};
    CHECK(rn_grad_scaler_unscale(&s, g, 6) == 0);
    CHECK(g[0] == 1.0f && g[1] == -3.0f / 65536.0f && g[2] == FLT_MAX / 65536.0f);
    CHECK(g[3] == 1e-40f * (float)(1.0 / 65536.0) && g[4] == 0.0f && signbit(g[5]));
    s.scale = 3.0f; /* 1/3 is rounded once to float */
    CHECK(rn_grad_scaler_inv_scale(&s) == (float)(1.0 / 3.0));
    float bad[3] = {1.0f, INFINITY, 2.0f};
    CHECK(rn_grad_scaler_unscale(&s, bad, 3) == 1);
    CHECK(bad[0] == (float)(1.0 / 3.0) && isinf(bad[1]) && bad[2] == 2.0f * (float)(1.0 / 3.0));
    float neg[1] = {-INFINITY}, nan1[1] = {NAN};
    CHECK(rn_grad_scaler_unscale(&s, neg, 1) == 1 && rn_grad_scaler_unscale(&s, nan1, 1) == 1);
    return rn_test_report("test_grad_scaler");
}
