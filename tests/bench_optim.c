/* Times one optimizer step over ResNet-18's parameters (the 62 weight and bias tensors of
 * torchvision's resnet18, 11,689,512 floats, read from tests/fixtures/resnet/resnet18_keys.txt
 * without the BatchNorm buffers) for each optimizer plugin, loaded through the real loader
 * (rn_registry_scan over the built plugin dir, rn_instance_create from a recipe node). Not a test:
 * timings are never asserted. scripts/bench --optim runs it next to scripts/bench_optim_torch.py.
 *
 *   bench_optim [--plugins DIR] [--shapes FILE] [--steps N] [--warmup W] [--only a,b]
 *
 * Prints one JSON line per optimizer:
 *   {"optimizer": "sgd", "tensors": 62, "numel": 11689512, "steps": 10,
 *    "ms_per_step": <median of the timed steps>, "ms_mean": ..., "ms_min": ...}
 * Params and grads are pseudo-random (fixed seed); the grads stay the same every step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugin_test_util.h"

#ifndef RN_BENCH_PLUGIN_DIR
#define RN_BENCH_PLUGIN_DIR "build/lib/runner/plugins"
#endif
#ifndef RN_BENCH_SHAPES
#define RN_BENCH_SHAPES "tests/fixtures/resnet/resnet18_keys.txt"
#endif

/* The optimizers and their settings (the same as scripts/bench_optim_torch.py uses). */
typedef struct bench_opt {
    const char *id;
    double lr, momentum, weight_decay; /* momentum < 0: not given (beta1 keeps its default) */
} bench_opt;

static const bench_opt OPTS[] = {
    {"sgd", 0.01, 0.9, 0},
    {"adam", 1e-3, -1, 0},
    {"adamw", 1e-3, -1, 1e-2},
    {"rmsprop", 1e-2, 0.9, 0},
    {"lion", 1e-4, -1, 1e-2},
    {"lamb", 1e-3, -1, 1e-2},
};

typedef struct shape_list {
    char **names;
    int64_t *numel;
    size_t n;
    int64_t total;
} shape_list;

static int read_shapes(const char *path, shape_list *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_optim: cannot open %s\n", path);
        return -1;
    }
    memset(out, 0, sizeof *out);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
        if (!key) continue;
        if (strstr(key, "running_mean") || strstr(key, "running_var") ||
            strstr(key, "num_batches_tracked"))
            continue;
        int64_t n = 1;
        for (char *d; (d = strtok_r(NULL, " \t\r\n", &save));) n *= atoll(d);
        out->names = realloc(out->names, (out->n + 1) * sizeof *out->names);
        out->numel = realloc(out->numel, (out->n + 1) * sizeof *out->numel);
        if (!out->names || !out->numel) abort();
        out->names[out->n] = pt_strdup(key);
        out->numel[out->n] = n;
        out->total += n;
        out->n++;
    }
    fclose(f);
    return out->n ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Roughly N(0, scale^2) from the counter-based generator: sum of 4 uniforms, centred. */
static void fill_random(float *x, int64_t n, uint64_t key, float scale)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rn_rand(key, (uint64_t)i);
        double s = (double)(r & 0xffff) + (double)((r >> 16) & 0xffff) +
                   (double)((r >> 32) & 0xffff) + (double)(r >> 48);
        x[i] = (float)((s / 65536.0 - 2.0) * 1.7320508 * scale);
    }
}

static int in_list(const char *list, const char *id)
{
    if (!list) return 1;
    size_t n = strlen(id);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, id, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *plugin_dir = getenv("RN_PLUGIN_DIR") ? getenv("RN_PLUGIN_DIR") : RN_BENCH_PLUGIN_DIR;
    const char *shapes_path = RN_BENCH_SHAPES, *only = NULL;
    int steps = 10, warmup = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--plugins") && v) plugin_dir = v, i++;
        else if (!strcmp(a, "--shapes") && v) shapes_path = v, i++;
        else if (!strcmp(a, "--steps") && v) steps = atoi(v), i++;
        else if (!strcmp(a, "--warmup") && v) warmup = atoi(v), i++;
        else if (!strcmp(a, "--only") && v) only = v, i++;
        else {
            fprintf(stderr, "usage: bench_optim [--plugins DIR] [--shapes FILE] [--steps N] "
                            "[--warmup W] [--only sgd,adam,...]\n");
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    if (warmup < 0) warmup = 0;

    shape_list sh;
    if (read_shapes(shapes_path, &sh)) return 1;
    rn_registry *reg = NULL;
    char err[512];
    if (rn_registry_scan(&reg, &plugin_dir, 1, err, sizeof err)) {
        fprintf(stderr, "bench_optim: registry scan failed: %s\n", err);
        return 1;
    }

    /* One contiguous block each for values, grads and (up to 2 floats per element of) state. */
    float *values = malloc((size_t)sh.total * sizeof *values);
    float *grads = malloc((size_t)sh.total * sizeof *grads);
    float *state = NULL;
    size_t state_cap = 0;
    rn_param *params = calloc(sh.n, sizeof *params);
    double *times = malloc((size_t)steps * sizeof *times);
    if (!values || !grads || !params || !times) {
        fprintf(stderr, "bench_optim: out of memory\n");
        return 1;
    }
    fill_random(grads, sh.total, 2, 1e-2f);

    int rc = 0;
    for (size_t o = 0; o < sizeof OPTS / sizeof *OPTS && rc == 0; o++) {
        const bench_opt *b = &OPTS[o];
        if (!in_list(only, b->id)) continue;
        rn_value *spec = pt_spec("optimizer", b->id);
        pt_num(spec, "lr", b->lr);
        if (b->momentum >= 0) pt_num(spec, "momentum", b->momentum);
        pt_num(spec, "weight_decay", b->weight_decay);
        rn_instance inst;
        int crc = rn_instance_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL, 1, err, sizeof err);
        pt_free(spec);
        if (crc) {
            fprintf(stderr, "bench_optim: %s: %s\n", b->id, err);
            rc = 1;
            break;
        }
        const rn_optimizer_api *api = inst.plugin->api;
        size_t per = api->state_floats(inst.self);
        if (per * (size_t)sh.total > state_cap) {
            free(state);
            state_cap = per * (size_t)sh.total;
            state = malloc(state_cap * sizeof *state);
            if (!state) {
                fprintf(stderr, "bench_optim: out of memory for state\n");
                return 1;
            }
        }
        if (per) memset(state, 0, per * (size_t)sh.total * sizeof *state);
        fill_random(values, sh.total, 1, 5e-2f);
        int64_t off = 0;
        for (size_t k = 0; k < sh.n; k++) {
            params[k] = (rn_param){.name = sh.names[k], .value = values + off, .grad = grads + off,
                                   .state = per ? state + per * (size_t)off : NULL,
                                   .numel = sh.numel[k]};
            off += sh.numel[k];
        }
        /* The group as the host fills it (runner/core/opt_groups.c). */
        double lr = 0, mom = 0, wd = 0;
        rn_instance_number(&inst, "lr", &lr);
        if (!rn_instance_number(&inst, "momentum", &mom)) rn_instance_number(&inst, "beta1", &mom);
        rn_instance_number(&inst, "weight_decay", &wd);
        rn_group g = {.struct_size = sizeof(rn_group), .name = "default", .params = params,
                      .n_params = sh.n, .lr = lr, .momentum = mom, .weight_decay = wd};
        for (int s = -warmup; s < steps; s++) {
            double t0 = now_s();
            if (api->step(inst.self, &g) != RN_OK) {
                fprintf(stderr, "bench_optim: %s step: %s\n", b->id, rn_instance_error(&inst));
                rc = 1;
                break;
            }
            double dt = now_s() - t0;
            g.step++;
            if (s >= 0) times[s] = dt;
        }
        rn_instance_destroy(&inst);
        if (rc) break;
        double sum = 0;
        for (int s = 0; s < steps; s++) sum += times[s];
        qsort(times, (size_t)steps, sizeof *times, cmp_double);
        double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
        double check = 0; /* keeps the updates observable */
        for (int64_t i = 0; i < sh.total; i += 4099) check += values[i];
        printf("{\"optimizer\": \"%s\", \"tensors\": %zu, \"numel\": %lld, \"steps\": %d, "
               "\"ms_per_step\": %.3f, \"ms_mean\": %.3f, \"ms_min\": %.3f, \"finite\": %s}\n",
               b->id, sh.n, (long long)sh.total, steps, 1e3 * med, 1e3 * sum / steps,
               1e3 * times[0], isfinite(check) ? "true" : "false");
        fflush(stdout);
    }

    free(times);
    free(params);
    free(state);
    free(grads);
    free(values);
    for (size_t k = 0; k < sh.n; k++) free(sh.names[k]);
    free(sh.names);
    free(sh.numel);
    rn_registry_free(reg);
    return rc;
}
