/* cosine — linear warm-up, then cosine annealing to min_lr, optionally with warm restarts (SGDR);
 * momentum is untouched.
 *
 * With t the 0-based optimizer step within the stage, T = total_steps, W warm-up steps
 * (warmup_steps, or round(warmup_epochs * steps_per_epoch)) and s = warmup_start_factor:
 *
 *   t <  W:  lr = base * (s + (1 - s) * t / W)
 *
 * Without restart settings (the default) the cosine spans the rest of the stage:
 *
 *   t >= W:  lr = min_lr + (base - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2
 *   t >= T:  lr = min_lr (past the stage's end; PyTorch would start a new half period)
 *
 * This is PyTorch's SequentialLR([LinearLR(start_factor=s, end_factor=1, total_iters=W),
 * CosineAnnealingLR(T_max=T-W, eta_min=min_lr)], milestones=[W]) stepped once per optimizer step:
 * LinearLR in closed form for t < W, and at the milestone SequentialLR restarts the cosine with
 * step(0), so the cosine's own step count is t - W. PyTorch (1.13) evaluates both recursively; the
 * closed form here agrees with it to ~2e-14 relative (tests/test_cosine.c checks 1e-12). The last
 * step's lr is above min_lr (t = T-1 < T), as in PyTorch.
 *
 * warmup_start_factor defaults to 1e-3 (the first step runs at base/1000) and must be in (0, 1],
 * like LinearLR's start_factor; 1 disables the ramp while keeping the cosine's delayed start.
 *
 * Restarts are timm's CosineLRScheduler (timm/scheduler/cosine_lr.py, _get_lr) with
 * warmup_prefix=True, t_in_epochs=False (evaluated every optimizer step), k_decay=1, no noise,
 * lr_min = min_lr and warmup_lr_init = s * base. After the warm-up, with u = t - W, the first cycle
 * C0 steps long (cycle_steps, or max(1, round(cycle_epochs * steps_per_epoch)), or T - W when
 * neither is given), m = cycle_mul, d = cycle_decay:
 *
 *   cycle i starts at S(i) = C0 * i                      (m = 1)
 *                    S(i) = C0 * (1 - m^i) / (1 - m)     (m != 1)
 *   and is C0 * m^i steps long; i is the cycle with S(i) <= u < S(i+1), found as timm does
 *   (i = floor(u / C0), or floor(log(1 - u / C0 * (1 - m)) / log(m))), then moved by one when
 *   floating-point rounding of the logarithm put u on the wrong side of a boundary (timm would
 *   then run one step at t_curr = t_i, i.e. at min_lr, instead of the new cycle's first step);
 *   with t_curr = u - S(i), t_i = C0 * m^i:
 *
 *   i <  cycle_limit:  lr = min_lr + (base * d^i - min_lr) * (1 + cos(pi * t_curr / t_i)) / 2
 *   i >= cycle_limit:  lr = min_lr
 *
 * min_lr is absolute and NOT scaled by d^i: current timm (the cycle_mul / cycle_decay API) uses
 * self.lr_min for every cycle, so a decayed peak below min_lr makes that cycle rise to min_lr.
 * (Older timm, with t_mul / decay_rate, used lr_min * gamma inside the cycles.) With m < 1 the
 * cycles shrink and all of them together last C0 / (1 - m) steps; from there on lr = min_lr (timm
 * raises a math domain error), likewise once a cycle would be shorter than a double can hold.
 * cycle_limit defaults to 1 when no cycle length is given (with the other defaults this gives
 * exactly the schedule above, bit for bit), and to unlimited when cycle_epochs or cycle_steps is
 * given; timm's own default is 1. Give at most one of cycle_epochs and cycle_steps.
 * tests/test_cosine.c checks restarts against scripts/fixtures/make_cosine_fixture.py's timm
 * formula to 1e-12 relative.
 */
#include <runner/plugin.h>

#include <math.h>

typedef struct cosine {
    const rn_host *host;
    double warmup_epochs;
    int64_t warmup_steps;
    double min_lr;
    double start;
    double cycle_epochs;  /* first cycle in epochs when > 0 */
    int64_t cycle_steps;  /* first cycle in steps when > 0; both 0: the stage after the warm-up */
    double cycle_mul;     /* each cycle is cycle_mul times as long as the one before */
    double cycle_decay;   /* each cycle's peak is cycle_decay times the one before */
    int64_t cycle_limit;  /* cycles run; INT64_MAX: unlimited */
} cosine;

static const rn_setting cosine_settings[] = {
    {"warmup_epochs", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "linear warm-up length in epochs (rounded to steps); exclusive with warmup_steps", 0},
    {"warmup_steps", RN_SETTING_INT, 0, NULL, 0, 1e9, NULL,
     "linear warm-up length in optimizer steps; exclusive with warmup_epochs", 0},
    {"min_lr", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "lr the cosine ends at (eta_min); absolute, the same for every cycle", 0},
    {"warmup_start_factor", RN_SETTING_NUMBER, 1e-3, NULL, 0, 1, NULL,
     "lr of the first warm-up step as a fraction of the base lr, in (0, 1]",
     RN_SETTING_MIN_EXCLUSIVE},
    {"cycle_epochs", RN_SETTING_NUMBER, 0, NULL, 0, 1e9, NULL,
     "first cosine cycle in epochs (rounded to steps, at least 1); exclusive with cycle_steps; "
     "default: the stage after the warm-up", RN_SETTING_MIN_EXCLUSIVE},
    {"cycle_steps", RN_SETTING_INT, 0, NULL, 1, 1e9, NULL,
     "first cosine cycle in optimizer steps; exclusive with cycle_epochs; "
     "default: the stage after the warm-up", 0},
    {"cycle_mul", RN_SETTING_NUMBER, 1, NULL, 0, INFINITY, NULL,
     "length of each cycle over the one before (timm cycle_mul)",
     RN_SETTING_MIN_EXCLUSIVE | RN_SETTING_MAX_EXCLUSIVE},
    {"cycle_decay", RN_SETTING_NUMBER, 1, NULL, 0, 1, NULL,
     "peak lr of each cycle over the one before (timm cycle_decay)", RN_SETTING_MIN_EXCLUSIVE},
    {"cycle_limit", RN_SETTING_INT, 1, NULL, 1, 1e9, NULL,
     "cycles before the lr stays at min_lr; default 1 without cycle_epochs/cycle_steps, "
     "else unlimited", 0},
};

static int cosine_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    double warmup_epochs = host->get_number(ctx, "warmup_epochs");
    int64_t warmup_steps = host->get_int(ctx, "warmup_steps");
    double start = host->get_number(ctx, "warmup_start_factor");
    if (host->has_setting(ctx, "warmup_epochs") && host->has_setting(ctx, "warmup_steps")) {
        host->set_error(ctx, "give warmup_epochs or warmup_steps, not both (got warmup_epochs = "
                        "%g and warmup_steps = %lld)", warmup_epochs, (long long)warmup_steps);
        return RN_ERR_CONFIG;
    }
    if (!(start > 0)) {
        host->set_error(ctx, "warmup_start_factor must be in (0, 1], got %g", start);
        return RN_ERR_CONFIG;
    }
    int has_cycle_epochs = host->has_setting(ctx, "cycle_epochs");
    int has_cycle_steps = host->has_setting(ctx, "cycle_steps");
    if (has_cycle_epochs && has_cycle_steps) {
        host->set_error(ctx, "give cycle_epochs or cycle_steps, not both (got cycle_epochs = %g "
                        "and cycle_steps = %lld)", host->get_number(ctx, "cycle_epochs"),
                        (long long)host->get_int(ctx, "cycle_steps"));
        return RN_ERR_CONFIG;
    }
    double cycle_mul = host->get_number(ctx, "cycle_mul");
    double cycle_decay = host->get_number(ctx, "cycle_decay");
    /* The schema refuses these; checked again because the formulas divide by log(cycle_mul). */
    if (!(cycle_mul > 0) || !isfinite(cycle_mul)) {
        host->set_error(ctx, "cycle_mul must be in (0, inf), got %g", cycle_mul);
        return RN_ERR_CONFIG;
    }
    if (!(cycle_decay > 0 && cycle_decay <= 1)) {
        host->set_error(ctx, "cycle_decay must be in (0, 1], got %g", cycle_decay);
        return RN_ERR_CONFIG;
    }
    cosine *c = host->alloc(sizeof *c);
    if (!c) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    c->host = host;
    c->warmup_epochs = warmup_epochs;
    c->warmup_steps = warmup_steps;
    c->min_lr = host->get_number(ctx, "min_lr");
    c->start = start;
    c->cycle_epochs = has_cycle_epochs ? host->get_number(ctx, "cycle_epochs") : 0;
    c->cycle_steps = has_cycle_steps ? host->get_int(ctx, "cycle_steps") : 0;
    c->cycle_mul = cycle_mul;
    c->cycle_decay = cycle_decay;
    if (host->has_setting(ctx, "cycle_limit"))
        c->cycle_limit = host->get_int(ctx, "cycle_limit");
    else
        c->cycle_limit = has_cycle_epochs || has_cycle_steps ? INT64_MAX : 1;
    *self = c;
    return RN_OK;
}

static void cosine_destroy(void *self)
{
    cosine *c = self;
    if (c) c->host->free(c);
}

/* Step (after the warm-up) at which cycle i begins when each cycle is m != 1 times the last. */
static double cycle_begin(double m, double i, double c0)
{
    return (1.0 - pow(m, i)) / (1.0 - m) * c0;
}

/* Cycle i holding step u >= 0 after the warm-up (cycle_mul m != 1, first cycle c0 steps), its
 * length t_i and the step within it t_curr. Returns 0 past the end of all cycles (m < 1, whose
 * lengths sum to c0 / (1 - m), or cycles shorter than a double can hold). */
static int cycle_position(double m, double u, double c0, double *i_out, double *t_i,
                          double *t_curr)
{
    /* timm: i = math.floor(math.log(1 - t / self.t_initial * (1 - self.cycle_mul),
     *                               self.cycle_mul)); Python's log(x, b) is log(x) / log(b). */
    double x = 1.0 - u / c0 * (1.0 - m);
    if (!(x > 0)) return 0;
    double lx = isinf(x) ? log(u / c0) + log(m - 1.0) : log(x); /* m near DBL_MAX */
    double i = floor(lx / log(m));
    if (!(i >= 0)) i = 0;
    /* The logarithm can round u = S(i) down into cycle i - 1 (e.g. m = 0.8, c0 = 60, u = 108):
     * move i so that S(i) <= u < S(i + 1). It is off by one at most; the bounds only guard. */
    for (int k = 0; k < 4 && i > 0 && u < cycle_begin(m, i, c0); k++) i -= 1;
    for (int k = 0; k < 4 && u >= cycle_begin(m, i + 1, c0); k++) i += 1;
    double mi = pow(m, i);
    *i_out = i;
    *t_i = mi * c0;
    *t_curr = u - (1.0 - mi) / (1.0 - m) * c0;
    return *t_i > 0 && isfinite(*t_curr);
}

static int cosine_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const cosine *c = self;
    const double pi = 3.14159265358979323846;
    int64_t t = at->step, total = at->total_steps;
    int64_t w = c->warmup_steps;
    if (c->warmup_epochs > 0)
        w = llround(c->warmup_epochs * (double)at->steps_per_epoch);
    double base = v->base_lr;
    if (t < w) {
        v->lr = base * (c->start + (1.0 - c->start) * (double)t / (double)w);
        return RN_OK;
    }
    int64_t c0;
    if (c->cycle_steps > 0) {
        c0 = c->cycle_steps;
    } else if (c->cycle_epochs > 0) {
        c0 = llround(c->cycle_epochs * (double)at->steps_per_epoch);
        if (c0 < 1) c0 = 1;
    } else {
        c0 = total - w;
        if (c0 <= 0) { /* the warm-up fills the stage: past it, stay at the base lr */
            v->lr = base;
            return RN_OK;
        }
    }
    int64_t u = t - w;
    double i, t_i, t_curr;
    if (c->cycle_mul == 1.0) {
        int64_t n = u / c0;
        i = (double)n;
        t_i = (double)c0;
        t_curr = (double)(u - c0 * n);
    } else if (!cycle_position(c->cycle_mul, (double)u, (double)c0, &i, &t_i, &t_curr)) {
        v->lr = c->min_lr;
        return RN_OK;
    }
    if (!(i < (double)c->cycle_limit)) {
        v->lr = c->min_lr;
        return RN_OK;
    }
    double peak = c->cycle_decay == 1.0 ? base : base * pow(c->cycle_decay, i);
    double phase = t_curr / t_i;
    v->lr = c->min_lr + (peak - c->min_lr) * (1.0 + cos(pi * phase)) / 2.0;
    return RN_OK;
}

static const rn_scheduler_api cosine_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = cosine_values,
};

static const rn_plugin cosine_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "cosine",
    .version = "1.1.0",
    .summary = "linear warm-up then cosine annealing to min_lr, optionally with restarts",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = cosine_settings,
    .n_settings = sizeof cosine_settings / sizeof cosine_settings[0],
    .create = cosine_create,
    .destroy = cosine_destroy,
    .api = &cosine_api,
};

static const rn_plugin *const cosine_plugins[] = {&cosine_plugin};

static const rn_library cosine_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = cosine_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &cosine_library : NULL;
}
