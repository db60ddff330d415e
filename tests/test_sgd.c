/* sgd plugin vs torch.optim.SGD: the same gradients through both, parameters compared after each
 * of 10 steps (tests/fixtures/sgd_steps.txt, from scripts/fixtures/make_sgd_fixture.py), to 1e-6
 * relative (+1e-7 absolute for values near 0); in practice they agree bit for bit (reported, not
 * required: another compiler's rounding choices may differ by an ulp). Also: a tensor large enough for parallel_for gives
 * bit-identical results to a serial reference, and state_floats follows momentum. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "rn_test.h"

#define MAX_N 256

static void expect_word(FILE *f, const char *word)
{
    char w[64];
    if (fscanf(f, "%63s", w) != 1 || strcmp(w, word) != 0) {
        fprintf(stderr, "fixture: expected \"%s\", got \"%s\"\n", word, w);
        exit(2);
    }
}

static void read_floats(FILE *f, const char *word, float *out, int n)
{
    expect_word(f, word);
    for (int i = 0; i < n; i++) {
        if (fscanf(f, "%f", &out[i]) != 1) {
            fprintf(stderr, "fixture: short %s line\n", word);
            exit(2);
        }
    }
}

/* Runs one fixture case through the plugin; returns 0 at the end of the file. */
static int run_case(FILE *f, const rn_registry *reg)
{
    char name[64];
    double lr, momentum, dampening, wd, decay;
    int nesterov, sizes[2];
    if (fscanf(f, " case %63s lr %lf momentum %lf dampening %lf nesterov %d weight_decay %lf "
                  "lr_decay %lf sizes %d %d",
               name, &lr, &momentum, &dampening, &nesterov, &wd, &decay, &sizes[0],
               &sizes[1]) != 9)
        return 0;
    int n = sizes[0] + sizes[1];
    if (n > MAX_N) exit(2);

    rn_value *spec = pt_spec("optimizer", "sgd");
    pt_num(spec, "lr", lr);
    pt_num(spec, "momentum", momentum);
    pt_num(spec, "dampening", dampening);
    pt_bool(spec, "nesterov", nesterov);
    pt_num(spec, "weight_decay", wd);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    const rn_optimizer_api *api = inst.plugin->api;
    size_t sf = api->state_floats(inst.self);
    CHECK(sf == (momentum > 0 ? 1u : 0u));

    float value[MAX_N], grad[MAX_N], expect[MAX_N], state[MAX_N] = {0};
    read_floats(f, "init", value, n);
    rn_param params[2] = {
        {"a.weight", value, grad, sf ? state : NULL, sizes[0]},
        {"b.weight", value + sizes[0], grad + sizes[0], sf ? state + sizes[0] : NULL, sizes[1]},
    };
    /* The host fills lr / momentum / weight_decay from the settings (and the schedule). */
    double set_momentum = 0, set_wd = 0;
    CHECK(rn_instance_number(&inst, "momentum", &set_momentum));
    CHECK(rn_instance_number(&inst, "weight_decay", &set_wd));
    rn_group g = {sizeof g, "all", params, 2, 0, set_momentum, set_wd, 0};
    double worst = 0;
    int mismatches = 0;
    for (int t = 0; t < 10; t++) {
        int step;
        double step_lr;
        if (fscanf(f, " step %d lr %lf", &step, &step_lr) != 2 || step != t) exit(2);
        read_floats(f, "grad", grad, n);
        read_floats(f, "param", expect, n);
        g.lr = step_lr;
        g.step = t;
        CHECK(api->step(inst.self, &g) == RN_OK);
        for (int i = 0; i < n; i++) {
            CHECK_NEAR(value[i], expect[i], 1e-7, 1e-6);
            double rel = fabs(value[i] - expect[i]) / (fabs(expect[i]) + 1e-7);
            if (rel > worst) worst = rel;
            if (value[i] != expect[i]) mismatches++;
        }
    }
    expect_word(f, "end");
    printf("  %-34s max relative difference %.3g, %d values not bit-equal\n", name, worst,
           mismatches);
    rn_instance_destroy(&inst);
    return 1;
}

/* parallel_for chunks must not change a single bit. */
static void check_large(const rn_registry *reg)
{
    enum { N = 200003 };
    rn_value *spec = pt_spec("optimizer", "sgd");
    pt_num(pt_num(pt_num(spec, "lr", 0.1), "momentum", 0.9), "weight_decay", 1e-2);
    pt_bool(spec, "nesterov", 1);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_OPTIMIZER, spec, NULL);
    const rn_optimizer_api *api = inst.plugin->api;
    float *p = malloc(N * sizeof *p), *gr = malloc(N * sizeof *gr), *buf = calloc(N, sizeof *buf);
    float *rp = malloc(N * sizeof *rp), *rbuf = calloc(N, sizeof *rbuf);
    for (int i = 0; i < N; i++) {
        p[i] = rp[i] = (float)sin(i * 0.37);
        gr[i] = (float)cos(i * 0.11);
    }
    rn_param prm = {"big", p, gr, buf, N};
    rn_group g = {sizeof g, "all", &prm, 1, 0.1, 0.9, 1e-2, 0};
    for (int t = 0; t < 3; t++) {
        g.step = t;
        CHECK(api->step(inst.self, &g) == RN_OK);
        for (int i = 0; i < N; i++) {
            float d = (float)((double)gr[i] + (double)1e-2f * rp[i]);
            float b = t == 0 ? d : (float)((double)(0.9f * rbuf[i]) + (double)d);
            rbuf[i] = b;
            float n = (float)((double)d + (double)0.9f * b);
            rp[i] = (float)((double)rp[i] - (double)0.1f * n);
        }
    }
    int same = memcmp(p, rp, N * sizeof *p) == 0 && memcmp(buf, rbuf, N * sizeof *buf) == 0;
    CHECK(same);
    free(p), free(gr), free(buf), free(rp), free(rbuf);
    rn_instance_destroy(&inst);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    FILE *f = pt_fixture("sgd_steps.txt");
    char line[256];
    if (!fgets(line, sizeof line, f)) return 2; /* the "# generated by" line */
    int cases = 0;
    while (run_case(f, reg)) cases++;
    fclose(f);
    CHECK(cases == 6);
    check_large(reg);
    rn_registry_free(reg);
    return rn_test_report("test_sgd");
}
