/* multistep — MultiStepLR: the lr decays by gamma at each milestone; momentum is untouched.
 *
 * The settings schema has no list type, so the milestones are a string of increasing whole numbers
 * separated by commas, e.g. milestones_epochs = "30,60,90" (spaces around a number are allowed).
 * With e the 0-based epoch within the stage, t the 0-based optimizer step and m_1 < m_2 < ... :
 *
 *   milestones_epochs:  lr = base * gamma ^ #{i : m_i <= e}
 *   milestones_steps:   lr = base * gamma ^ #{i : m_i <= t}
 *
 * Give exactly one of the two. This is torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)
 * stepped once per epoch (milestones_epochs) or once per optimizer step (milestones_steps), in its
 * closed form (_get_closed_form_lr: gamma ^ bisect_right(milestones, n)); PyTorch 1.13 multiplies
 * recursively, which agrees to an ulp or two. PyTorch also accepts repeated or unsorted milestones
 * (a Counter: a milestone given twice decays by gamma^2); here they must be strictly increasing and
 * create() refuses anything else, naming the setting and the token.
 */
#include <runner/plugin.h>

#include <math.h>
#include <string.h>

#define MAX_MILESTONES 1000
#define MAX_MILESTONE 1000000000LL

typedef struct multistep {
    const rn_host *host;
    int per_epoch;
    double gamma;
    size_t n;
    int64_t *m; /* n strictly increasing milestones */
} multistep;

static const rn_setting multistep_settings[] = {
    {"milestones_epochs", RN_SETTING_STRING, 0, "", 0, -1, NULL,
     "increasing 0-based epochs at which the lr is multiplied by gamma, e.g. \"30,60,90\"; "
     "exclusive with milestones_steps", 0},
    {"milestones_steps", RN_SETTING_STRING, 0, "", 0, -1, NULL,
     "increasing 0-based optimizer steps at which the lr is multiplied by gamma, e.g. "
     "\"1000,2000\"; exclusive with milestones_epochs", 0},
    {"gamma", RN_SETTING_NUMBER, 0.1, NULL, 0, 1, NULL,
     "factor the lr is multiplied by at every milestone", 0},
};

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Parses "30, 60,90" into out (capacity cap); returns the count, or -1 after set_error. */
static long parse_milestones(const rn_host *host, rn_ctx *ctx, const char *key, const char *s,
                             int64_t *out, size_t cap)
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        const char *tok = p;
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = tok, *b = end;
        while (a < b && is_space(*a)) a++;
        while (b > a && is_space(b[-1])) b--;
        int tok_len = (int)(b - a); /* the token without its spaces */
        if (a == b) {
            if (!*s)
                host->set_error(ctx, "%s: expected increasing whole numbers separated by commas "
                                "like \"30,60,90\", got an empty string", key);
            else
                host->set_error(ctx, "%s: empty milestone at character %d of \"%s\" (expected "
                                "increasing whole numbers separated by commas like \"30,60,90\")",
                                key, (int)(tok - s) + 1, s);
            return -1;
        }
        int64_t val = 0;
        for (const char *c = a; c < b; c++) {
            if (*c < '0' || *c > '9') {
                host->set_error(ctx, "%s: bad milestone \"%.*s\" in \"%s\" (expected increasing "
                                "whole numbers separated by commas like \"30,60,90\")",
                                key, tok_len, a, s);
                return -1;
            }
            val = val * 10 + (*c - '0');
            if (val > MAX_MILESTONE) {
                host->set_error(ctx, "%s: milestone \"%.*s\" in \"%s\" is above %lld", key,
                                tok_len, a, s, (long long)MAX_MILESTONE);
                return -1;
            }
        }
        if (n > 0 && val <= out[n - 1]) {
            host->set_error(ctx, "%s: milestone \"%.*s\" in \"%s\" is not above the one before "
                            "(%lld); milestones must be strictly increasing", key, tok_len, a,
                            s, (long long)out[n - 1]);
            return -1;
        }
        if (n == cap) {
            host->set_error(ctx, "%s: more than %zu milestones in \"%.40s...\"", key, cap, s);
            return -1;
        }
        out[n++] = val;
        if (!*end) break;
        p = end + 1;
    }
    return (long)n;
}

static int multistep_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    int has_epochs = host->has_setting(ctx, "milestones_epochs");
    int has_steps = host->has_setting(ctx, "milestones_steps");
    if (has_epochs && has_steps) {
        host->set_error(ctx, "give milestones_epochs or milestones_steps, not both (got "
                        "milestones_epochs = \"%s\" and milestones_steps = \"%s\")",
                        host->get_string(ctx, "milestones_epochs"),
                        host->get_string(ctx, "milestones_steps"));
        return RN_ERR_CONFIG;
    }
    if (!has_epochs && !has_steps) {
        host->set_error(ctx, "give milestones_epochs (e.g. \"30,60,90\") or milestones_steps; "
                        "got neither");
        return RN_ERR_CONFIG;
    }
    const char *key = has_epochs ? "milestones_epochs" : "milestones_steps";
    const char *str = host->get_string(ctx, key);
    int64_t tmp[MAX_MILESTONES];
    long n = parse_milestones(host, ctx, key, str ? str : "", tmp, MAX_MILESTONES);
    if (n < 0) return RN_ERR_CONFIG;

    multistep *m = host->alloc(sizeof *m);
    int64_t *ms = host->alloc((size_t)n * sizeof *ms);
    if (!m || !ms) {
        if (m) host->free(m);
        if (ms) host->free(ms);
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    memcpy(ms, tmp, (size_t)n * sizeof *ms);
    m->host = host;
    m->per_epoch = has_epochs;
    m->gamma = host->get_number(ctx, "gamma");
    m->n = (size_t)n;
    m->m = ms;
    *self = m;
    return RN_OK;
}

static void multistep_destroy(void *self)
{
    multistep *m = self;
    if (!m) return;
    m->host->free(m->m);
    m->host->free(m);
}

static int multistep_values(void *self, const rn_sched_at *at, rn_sched_values *v)
{
    const multistep *m = self;
    int64_t x = m->per_epoch ? at->epoch : at->step;
    /* bisect_right: the number of milestones <= x */
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->m[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    v->lr = v->base_lr * pow(m->gamma, (double)lo);
    return RN_OK;
}

static int multistep_counts(void *self)
{
    const multistep *s = self;
    return s->per_epoch ? RN_COUNTS_EPOCHS : RN_COUNTS_STEPS;
}

static const rn_scheduler_api multistep_api = {
    .struct_size = sizeof(rn_scheduler_api),
    .values = multistep_values,
    .counts = multistep_counts,
};

static const rn_plugin multistep_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_SCHEDULER,
    .id = "multistep",
    .version = "1.0.0",
    .summary = "MultiStepLR: lr times gamma at each milestone epoch or step",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = multistep_settings,
    .n_settings = sizeof multistep_settings / sizeof multistep_settings[0],
    .create = multistep_create,
    .destroy = multistep_destroy,
    .api = &multistep_api,
};

static const rn_plugin *const multistep_plugins[] = {&multistep_plugin};

static const rn_library multistep_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = multistep_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &multistep_library : NULL;
}
