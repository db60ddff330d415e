/* GradScaler's update rule (torch/csrc amp_update_scale kernel) and unscale, on the host. */
#include "grad_scaler.h"

#include <math.h>

#include "../../kernels/amp_elem.h"

void rn_grad_scaler_init(rn_grad_scaler *s)
{
    s->scale = 65536.0f;
    s->growth_factor = 2.0;
    s->backoff_factor = 0.5;
    s->growth_interval = 2000;
    s->growth_tracker = 0;
    s->skipped = 0;
}

float rn_grad_scaler_inv_scale(const rn_grad_scaler *s)
{
    return (float)(1.0 / (double)s->scale);
}

int rn_grad_scaler_unscale(const rn_grad_scaler *s, float *g, size_t n)
{
    float inv = rn_grad_scaler_inv_scale(s);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= rn_unscale_elem(&g[i], inv);
    return bad;
}

int rn_grad_scaler_update(rn_grad_scaler *s, int found_inf)
{
    if (found_inf) {
        s->scale = (float)((double)s->scale * s->backoff_factor);
        s->growth_tracker = 0;
        s->skipped++;
        return 1;
    }
    int64_t successful = s->growth_tracker + 1;
    if (successful == s->growth_interval) {
        float grown = (float)((double)s->scale * s->growth_factor);
        if (isfinite(grown)) s->scale = grown; /* never grow past float's range to inf */
        s->growth_tracker = 0;
    } else {
        s->growth_tracker = successful;
    }
    return 0;
}
