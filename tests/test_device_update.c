/* Every built-in optimizer's device_update (plugin ABI 1.2) against its own step(): what the host
 * runs on a GPU must be what the CPU plugin does. For each optimizer and setting combination, two
 * instances train the same group of three tensors (1, 4099 and 70001 elements: across LAMB's
 * 4096-element norm chunks and the 65536-element multi-tensor chunks) for 6 steps with changing
 * lr, momentum and gradients. One takes step(); the other's device_update is applied the way
 * kernels/optim_kernels.cu does it: the group's chunk plan (kernels/multi_tensor.h), each chunk's
 * elements through kernels/optim_elem.h with the state blocks u.state names, LAMB in two passes
 * with per-chunk norm sums added in chunk order. Parameters and every state block must be equal
 * bit for bit; for LAMB, whose norms are summed over other chunks than the CPU plugin's (65536
 * against 4096 elements, in double, rounded to float once), to 2 ulps.
 * Also: device_update refuses what step refuses, and the registry refuses an optimizer that
 * declares the cuda device without device_update, or an augmentation without device_plan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/multi_tensor.h"
#include "../kernels/optim_elem.h"
#include "plugin_test_util.h"
#include "update_walk.h"
#include "rn_test.h"

#define NT 3
#define STEPS 6
static const int64_t sizes[NT] = {1, 4099, 70001};

/* One parameter group: values, gradients and state, with the rn_param views. */
typedef struct group_data {
    float *p[NT], *g[NT], *st[NT];
    rn_param prm[NT];
    size_t state_floats;
} group_data;

static void group_init(group_data *d, size_t state_floats)
{
    d->state_floats = state_floats;
    for (int t = 0; t < NT; t++) {
        d->p[t] = malloc(sizes[t] * sizeof(float));
        d->g[t] = malloc(sizes[t] * sizeof(float));
        d->st[t] = calloc((size_t)sizes[t] * (state_floats ? state_floats : 1), sizeof(float));
        for (int64_t i = 0; i < sizes[t]; i++) d->p[t][i] = (float)sin(0.37 * i + t);
        d->prm[t] = (rn_param){"w", d->p[t], d->g[t], state_floats ? d->st[t] : NULL, sizes[t]};
    }
}

static void group_free(group_data *d)
{
    for (int t = 0; t < NT; t++) free(d->p[t]), free(d->g[t]), free(d->st[t]);
}

static void gradients(group_data *d, int step)
{
    for (int t = 0; t < NT; t++)
        for (int64_t i = 0; i < sizes[t]; i++) {
            float g = (float)(cos(0.11 * i * (step + 1) + t) * (1 + 0.3 * step));
            d->g[t][i] = (i % 11 == 3) ? 0.0f : g; /* exact zeros, for sign(0) and sqrt(0) */
        }
}

/* Largest difference in ulps between a and b over n floats (NaN against anything: huge). */
static int64_t ulps(const float *a, const float *b, int64_t n)
{
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] == b[i]) continue;
        int32_t x, y;
        memcpy(&x, &a[i], 4);
        memcpy(&y, &b[i], 4);
        if (isnan(a[i]) || isnan(b[i]) || (x < 0) != (y < 0)) return INT64_MAX;
        int64_t d = llabs((int64_t)x - y);
        if (d > worst) worst = d;
    }
    return worst;
}

typedef struct config {
    const char *id;
    const char *what;
    void (*settings)(rn_value *spec);
    double momentum; /* the group's momentum / beta1 (the host fills it from the settings) */
    double wd;
} config;

static void s_sgd_plain(rn_value *s) { pt_num(s, "lr", 0.1); }
static void s_sgd_nesterov(rn_value *s)
{
    pt_bool(pt_num(pt_num(s, "lr", 0.1), "momentum", 0.9), "nesterov", 1);
}
static void s_sgd_damp(rn_value *s) { pt_num(pt_num(s, "momentum", 0.8), "dampening", 0.3); }
static void s_adam(rn_value *s) { pt_num(s, "lr", 1e-3); }
static void s_adam_ams(rn_value *s) { pt_bool(pt_num(s, "lr", 1e-3), "amsgrad", 1); }
static void s_rms(rn_value *s) { pt_num(s, "lr", 1e-2); }
static void s_rms_full(rn_value *s)
{
    pt_bool(pt_num(pt_num(s, "lr", 1e-2), "momentum", 0.9), "centered", 1);
}
static void s_rms_centered(rn_value *s) { pt_bool(pt_num(s, "lr", 1e-2), "centered", 1); }
static void s_lion(rn_value *s) { pt_num(s, "lr", 1e-4); }
static void s_lamb(rn_value *s) { pt_num(s, "lr", 1e-3); }
static void s_lamb_adapt(rn_value *s) { pt_bool(pt_num(s, "lr", 1e-3), "always_adapt", 1); }
static void s_lamb_nobc(rn_value *s) { pt_bool(pt_num(s, "lr", 1e-3), "bias_correction", 0); }

static const config configs[] = {
    {"sgd", "plain, weight decay", s_sgd_plain, 0, 1e-4},
    {"sgd", "nesterov", s_sgd_nesterov, 0.9, 5e-4},
    {"sgd", "momentum, dampening", s_sgd_damp, 0.8, 0},
    {"adam", "L2", s_adam, 0.9, 1e-2},
    {"adam", "amsgrad", s_adam_ams, 0.9, 0},
    {"adamw", "decoupled", s_adam, 0.9, 1e-2},
    {"adamw", "amsgrad", s_adam_ams, 0.85, 0.05},
    {"rmsprop", "plain", s_rms, 0, 0},
    {"rmsprop", "momentum, centered, L2", s_rms_full, 0.9, 1e-3},
    {"rmsprop", "centered", s_rms_centered, 0, 0},
    {"lion", "decoupled", s_lion, 0.9, 0.1},
    {"lamb", "weight decay (trust ratio)", s_lamb, 0.9, 1e-2},
    {"lamb", "no decay, always_adapt", s_lamb_adapt, 0.9, 0},
    {"lamb", "no decay, no adapt, no bias correction", s_lamb_nobc, 0.9, 0},
};

static void check_config(const rn_registry *reg, const config *c)
{
    rn_instance a, b;
    rn_value *sa = pt_spec("optimizer", c->id), *sb = pt_spec("optimizer", c->id);
    c->settings(sa);
    c->settings(sb);
    pt_create(&a, reg, RN_KIND_OPTIMIZER, sa, NULL);
    pt_create(&b, reg, RN_KIND_OPTIMIZER, sb, NULL);
    const rn_optimizer_api *api = a.plugin->api;
    CHECK(a.plugin->devices & RN_DEVICE_CUDA);
    CHECK(rn_optimizer_device_update(api) != NULL);
    size_t sf = api->state_floats(a.self);
    group_data da, db;
    group_init(&da, sf);
    group_init(&db, sf);
    int64_t worst = 0;
    for (int step = 0; step < STEPS; step++) {
        double lr = 1e-3 * (1 + step), mom = c->momentum ? c->momentum - 0.01 * step : 0;
        gradients(&da, step);
        gradients(&db, step);
        rn_group ga = {sizeof ga, "all", da.prm, NT, lr, mom, c->wd, step};
        rn_group gb = {sizeof gb, "all", db.prm, NT, lr, mom, c->wd, step};
        CHECK(api->step(a.self, &ga) == RN_OK);
        rn_update u = {.struct_size = sizeof u};
        CHECK(api->device_update(b.self, &gb, &u) == RN_OK);
        int blocks_ok = 1; /* each state block named exists, and no two arguments share one */
        for (int k = 0; k < 3; k++) {
            blocks_ok &= u.state[k] >= -1 && u.state[k] < (int)sf;
            for (int j = 0; j < k; j++) blocks_ok &= u.state[k] < 0 || u.state[k] != u.state[j];
        }
        CHECK(blocks_ok);
        if (!blocks_ok) break;
        rn_mt_tensor ts[NT];
        for (int t = 0; t < NT; t++) {
            float *blk[3];
            for (int k = 0; k < 3; k++)
                blk[k] = u.state[k] >= 0 ? db.st[t] + u.state[k] * sizes[t] : NULL;
            ts[t] = (rn_mt_tensor){db.p[t], db.g[t], blk[0], blk[1], blk[2], sizes[t]};
        }
        CHECK(rn_update_walk(&u, ts, NT) == 0);
        for (int t = 0; t < NT; t++) {
            int64_t d = ulps(da.p[t], db.p[t], sizes[t]);
            int64_t ds = ulps(da.st[t], db.st[t], sizes[t] * (int64_t)sf);
            if (d > worst) worst = d;
            if (ds > worst) worst = ds;
        }
    }
    int64_t allowed = strcmp(c->id, "lamb") == 0 ? 2 : 0;
    printf("%-8s %-40s state floats %zu: worst difference %lld ulp (allowed %lld)\n", c->id,
           c->what, sf, (long long)worst, (long long)allowed);
    CHECK(worst <= allowed);
    /* the parameters did move */
    CHECK(db.p[2][5] != (float)sin(0.37 * 5 + 2));
    group_free(&da);
    group_free(&db);
    rn_instance_destroy(&a);
    rn_instance_destroy(&b);
}

/* device_update refuses what step refuses: a momentum the instance has no buffer for, a beta1
 * scheduled out of range. */
static void check_refusals(const rn_registry *reg)
{
    rn_instance inst;
    rn_value *spec = pt_spec("optimizer", "sgd");
    pt_num(spec, "lr", 0.1);
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    const rn_optimizer_api *api = inst.plugin->api;
    float p = 1, g = 1;
    rn_param prm = {"w", &p, &g, NULL, 1};
    rn_group grp = {sizeof grp, "all", &prm, 1, 0.1, 0.5, 0, 0};
    rn_update u = {.struct_size = sizeof u};
    CHECK(api->step(inst.self, &grp) == RN_ERR_CONFIG);
    CHECK(api->device_update(inst.self, &grp, &u) == RN_ERR_CONFIG);
    rn_instance_destroy(&inst);

    const char *ids[] = {"adam", "adamw", "lion", "lamb"};
    for (int k = 0; k < 4; k++) {
        spec = pt_spec("optimizer", ids[k]);
        pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
        api = inst.plugin->api;
        float st[2] = {0, 0};
        prm.state = st;
        grp.momentum = 1.0; /* beta1 = 1 from a schedule */
        CHECK(api->device_update(inst.self, &grp, &u) == RN_ERR_CONFIG);
        rn_instance_destroy(&inst);
    }
}

int main(void)
{
    rn_registry *reg = pt_registry();
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) check_config(reg, &configs[i]);
    check_refusals(reg);
    rn_registry_free(reg);

    /* A library whose optimizer declares cuda without device_update is refused, naming it. */
    const char *bad = getenv("RN_BAD_PLUGINS");
    if (bad) {
        char dir[512], err[512];
        snprintf(dir, sizeof dir, "%s/cuda_no_update", bad);
        const char *dirs[] = {dir};
        rn_registry *r = NULL;
        int rc = rn_registry_scan(&r, dirs, 1, err, sizeof err);
        CHECK(rc != 0);
        CHECK(rc != 0 && strstr(err, "optimizer \"test.cuda_no_update\" declares the cuda device "
                                     "but has no device_update (plugin ABI 1.2)"));
        printf("refused: %s\n", err);
        if (!rc) rn_registry_free(r);
        /* and an augmentation that declares cuda without device_plan */
        snprintf(dir, sizeof dir, "%s/cuda_no_plan", bad);
        rc = rn_registry_scan(&r, dirs, 1, err, sizeof err);
        CHECK(rc != 0 && strstr(err, "augment \"test.cuda_no_plan\" declares the cuda device but "
                                     "has no device_plan (plugin ABI 1.2)"));
        printf("refused: %s\n", err);
        if (!rc) rn_registry_free(r);
    } else {
        CHECK(!"RN_BAD_PLUGINS is set (run through ctest)");
    }
    return rn_test_report("test_device_update");
}
