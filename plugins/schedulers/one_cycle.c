/* one_cycle — OneCycleLR (the 1cycle policy): the lr ramps up from base/div_factor to the group's
 * base lr, then anneals down to base/(div_factor*final_div_factor) at the stage's end; momentum is
 * cycled the other way, between max_momentum and base_momentum.
 *
 * The peak (PyTorch's max_lr) is the group's base lr, so groups keep their ratios. With T the
 * stage's optimizer steps, t the 0-based step, p = pct_start:
 *
 *   initial = base / div_factor,  min = initial / final_div_factor
 *   two phases (default):   steps [0, p*T - 1]          initial -> base,  max_m  -> base_m
 *                           steps [p*T - 1, T - 1]      base    -> min,   base_m -> max_m
 *   three_phase = true:     steps [0, p*T - 1]          initial -> base,  max_m  -> base_m
 *                           steps [p*T - 1, 2p*T - 2]   base    -> initial, base_m -> max_m
 *                           steps [2p*T - 2, T - 1]     initial -> min,   max_m  -> max_m
 *
 * In a phase running from step a to step b (a = 0 or the previous phase's b), x = (t - a) / (b - a)
 * and a value goes from u to w as
 *   anneal_strategy = "cos" (default):  w + (u - w) / 2 * (cos(pi * x) + 1)
 *   anneal_strategy = "linear":         (w - u) * x + u
 *
 * This is torch.optim.lr_scheduler.OneCycleLR(max_lr=base, total_steps=T, ...) stepped once per
 * optimizer step, evaluated with the same expressions in the same order (PyTorch's form is closed
 * already, so the values agree to the last bit or so). The momentum is written to v->momentum, which
 * the host hands the optimizer as momentum or beta1 (PyTorch: group['momentum'] or betas[0]); with
 * cycle_momentum = false it is left as it is.
 *
 * Where PyTorch fails, this is defined instead: steps past the stage's end (t >= T; PyTorch raises
 * after T+1 steps) run at the last step's value, and a phase of zero length (p*T = 1; PyTorch
 * divides by zero) is taken as finished (x = 1). pct_start must be in (0, 1), and at most 0.5 with
 * three_phase (above it, PyTorch's second phase ends after the stage and the lr never reaches min).
 */
#include <runner/plugin.h>

#include <math.h>
#include <string.h>

typedef struct one_cycle {
    const rn_host *host;
    double pct_start, div_factor, final_div_factor;
    double base_momentum, max_momentum;
    int cycle_momentum, three_phase, linear;
} one_cycle;

static const rn_setting one_cycle_settings[] = {
    {"pct_start", RN_SETTING_NUMBER, 0.3, NULL, 0, 1, NULL,
     "fraction of the stage's steps spent raising the lr, in (0, 1) (at most 0.5 with three_phase)",
     RN_SETTING_MIN_EXCLUSIVE | RN_SETTING_MAX_EXCLUSIVE},
    {"div_factor", RN_SETTING_NUMBER, 25, NULL, 0, INFINITY, NULL,
     "the first step's lr is the base lr / div_factor", RN_SETTING_MIN_EXCLUSIVE},
    {"final_div_factor", RN_SETTING_NUMBER, 1e4, NULL, 0, INFINITY, NULL,
     "the last lr is the first lr / final_div_factor", RN_SETTING_MIN_EXCLUSIVE},
    {"anneal_strategy", RN_SETTING_STRING, 0, "cos", 0, -1, "cos|linear",
     "shape of each phase: cosine or linear", 0},
    {"three_phase", RN_SETTING_BOOL, 0, NULL, 0, -1, NULL,
     "ramp back down to the first lr symmetrically, then anneal to the last lr", 0},
    {"cycle_momentum", RN_SETTING_BOOL, 1, NULL, 0, -1, NULL,
     "cycle the momentum (or beta1) inversely to the lr between max_momentum and base_momentum", 0},
    {"base_momentum", RN_SETTING_NUMBER, 0.85, NULL, 0, 1, NULL,
     "momentum at the lr's peak", 0},
    {"max_momentum", RN_SETTING_NUMBER, 0.95, NULL, 0, 1, NULL,
     "momentum at the start and the end of the cycle", 0},
};

static int one_cycle_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double pct = host->get_number(ctx, "pct_start");
    int three = host->get_bool(ctx, "three_phase");
    if (three && pct > 0.5) {
        host->set_error(ctx, "pct_start must be at most 0.5 with three_phase = true (the ramp "
                        "down is as long as the ramp up), got %g", pct);
        return RN_ERR_CONFIG;
    }
    one_cycle *c = host->alloc(sizeof *c);
    if (!c) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    c->host = host;
    c->pct_start = pct;
    c->div_factor = host->get_number(ctx, "div_factor");
    c->final_div_factor = host->get_number(ctx, "final_div_factor");
    c->linear = strcmp(host->get_string(ctx, "anneal_strategy"), "linear") == 0;
    c->three_phase = three;
    c->cycle_momentum = host->get_bool(ctx, "cycle_momentum");
    c->base_momentum = host->get_number(ctx, "base_momentum");
    c->max_momentum = host->get_number(ctx, "max_momentum");
    *self = c;
    return RN_OK;
}

static void one_cycle_destroy(void *self)
{
    one_cycle *c = self;
    if (c) c->host->free(c);
}

static double anneal(int linear, double start, double end, double pct)
{
    const double pi = 3.14159265358979323846;
    if (linear) return (end - start) * pct + start;
    double cos_out = cos(pi * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

static int one_cycle_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const one_cycle *c = self;
    int64_t total = at->total_steps > 0 ? at->total_steps : 1;
    int64_t t = at->step < 0 ? 0 : at->step;
    if (t > total - 1) t = total - 1;

    double max_lr = v->base_lr;
    double initial = max_lr / c->div_factor;
    double min_lr = initial / c->final_div_factor;
    double bm = c->base_momentum, mm = c->max_momentum;
    double pt = c->pct_start * (double)total;
    struct { double end, lr0, lr1, m0, m1; } ph[3];
    int n;
    if (c->three_phase) {
        ph[0].end = pt - 1, ph[0].lr0 = initial, ph[0].lr1 = max_lr, ph[0].m0 = mm, ph[0].m1 = bm;
        ph[1].end = 2.0 * c->pct_start * (double)total - 2, ph[1].lr0 = max_lr,
        ph[1].lr1 = initial, ph[1].m0 = bm, ph[1].m1 = mm;
        ph[2].end = (double)(total - 1), ph[2].lr0 = initial, ph[2].lr1 = min_lr, ph[2].m0 = mm,
        ph[2].m1 = mm;
        n = 3;
    } else {
        ph[0].end = pt - 1, ph[0].lr0 = initial, ph[0].lr1 = max_lr, ph[0].m0 = mm, ph[0].m1 = bm;
        ph[1].end = (double)(total - 1), ph[1].lr0 = max_lr, ph[1].lr1 = min_lr, ph[1].m0 = bm,
        ph[1].m1 = mm;
        n = 2;
    }
    double start = 0;
    for (int i = 0; i < n; i++) {
        double end = ph[i].end;
        if ((double)t <= end || i == n - 1) {
            double len = end - start;
            double pct = len != 0 ? ((double)t - start) / len : 1.0;
            v->lr = anneal(c->linear, ph[i].lr0, ph[i].lr1, pct);
            if (c->cycle_momentum) v->momentum = anneal(c->linear, ph[i].m0, ph[i].m1, pct);
            break;
        }
        start = end;
    }
    return RN_OK;
}

static const rn_scheduler_api one_cycle_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = one_cycle_values,
};

static const rn_plugin one_cycle_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "one_cycle",
    .version = "1.0.0",
    .summary = "OneCycleLR: lr up to the base lr then down, momentum the other way",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = one_cycle_settings,
    .n_settings = sizeof one_cycle_settings / sizeof one_cycle_settings[0],
    .create = one_cycle_create,
    .destroy = one_cycle_destroy,
    .api = &one_cycle_api,
};

static const rn_plugin *const one_cycle_plugins[] = {&one_cycle_plugin};

static const rn_library one_cycle_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = one_cycle_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &one_cycle_library : NULL;
}
