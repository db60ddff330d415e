/* Recipe tree -> plan: defaults, relative paths, stages, and the key path in every refusal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "plan.h"
#include "rn_test.h"
#include "sandbox.h"

static char dir[] = "/tmp/rn-plan-XXXXXX";

/* Loads `body` (a recipe chunk) and builds a plan; returns the plan status, err filled. */
static int plan_of(const char *body, rn_plan *p, rn_value **root, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "%s/r.lua", dir);
    FILE *f = fopen(path, "w");
    fputs(body, f);
    fclose(f);
    rn_sandbox *sb = rn_sandbox_new(RN_RECIPES_DIR, NULL, err, errlen);
    *root = rn_sandbox_run_file(sb, path, err, errlen);
    rn_sandbox_free(sb);
    memset(p, 0, sizeof *p);
    if (!*root) return -2;
    return rn_plan_build(p, *root, path, err, errlen);
}

#define DATA "data = { train = { images = 'img.gz', labels = '/abs/lab.gz' } }, "
#define BASE DATA "model = {}, optimizer = {'sgd'}, "

static void expect(const char *body, const char *needle)
{
    rn_plan p;
    rn_value *root;
    char err[512] = "";
    int rc = plan_of(body, &p, &root, err, sizeof err);
    CHECK(rc != 0);
    if (!strstr(err, needle)) fprintf(stderr, "  wanted \"%s\" in \"%s\"\n", needle, err);
    CHECK(strstr(err, needle) != NULL);
    rn_plan_free(&p);
    rn_value_free(root);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    rn_plan p;
    rn_value *root;
    char err[512] = "";
    CHECK(plan_of("return { " BASE "epochs = 3 }", &p, &root, err, sizeof err) == 0);
    CHECK(p.data.batch_size == 64 && p.data.shuffle == 1 && p.data.drop_last == 0);
    CHECK(p.n_stages == 1 && p.stages[0].epochs == 3 && isnan(p.stages[0].lr));
    CHECK(strcmp(p.device, "auto") == 0 && p.seed == 0);
    CHECK(p.conv_workspace_mib == 16);
    char want[128];
    snprintf(want, sizeof want, "%s/img.gz", dir);
    CHECK(strcmp(p.data.train.images, want) == 0);   /* relative to the recipe */
    CHECK(strcmp(p.data.train.labels, "/abs/lab.gz") == 0);
    rn_plan_free(&p);
    rn_value_free(root);

    CHECK(plan_of("return { " BASE "seed = 5, schedule = {'cosine'}, stages = { {epochs = 1, "
                  "lr = 0.1}, {name = 'tune', epochs = 2, schedule = {'constant'}} } }",
                  &p, &root, err, sizeof err) == 0);
    CHECK(p.n_stages == 2 && p.seed == 5);
    CHECK(strcmp(p.stages[0].name, "stage1") == 0 && p.stages[0].lr == 0.1);
    CHECK(strcmp(p.stages[0].schedule->items[0]->s, "cosine") == 0);
    CHECK(strcmp(p.stages[1].name, "tune") == 0 && p.stages[1].epochs == 2);
    CHECK(strcmp(p.stages[1].schedule->items[0]->s, "constant") == 0);
    rn_plan_free(&p);
    rn_value_free(root);

    expect("return { " BASE "}", "epochs: missing");
    expect("return { " BASE "epochs = 1, stages = {{epochs = 1}} }", "either epochs or stages");
    expect("return { " BASE "stages = { {'lr_fnd'} } }",
           "stages[1][1]: unknown stage kind \"lr_fnd\" (available: lr_find");
    expect("return { " BASE "stages = { {epochs = 1, lr = 'lr_find.valley'} } }",
           "stages[1].lr: \"lr_find.valley\" needs an lr_find stage before this one");
    expect("return { " BASE "stages = { {'lr_find'}, {epochs = 1, lr = 'lr_find.best'} } }",
           "stages[2].lr: expected a number, slice(lo, hi) or one of \"lr_find.valley\"");
    expect("return { " BASE "stages = { {'lr_find', start_lr = 1, end_lr = 0.1} } }",
           "stages[1].end_lr: must be greater than start_lr");
    expect("return { model = {}, optimizer = {'sgd'}, data = { test = { images = 'a', labels = "
           "'b' } }, stages = { {'lr_find'} } }", "stages[1]: an lr_find stage trains on "
           "data.train, and this recipe has no training data");
    expect("return { " BASE "stages = { {'lr_find', 5} } }",
           "stages[1][2]: expected named settings only");
    expect("return { " BASE "stages = { {'lr_find', name = 'a/b'} } }",
           "stages[1].name: \"a/b\" names the sweep's files");
    expect("return { " BASE "stages = { {'lr_find', stepz = 10} } }",
           "stages[1].stepz: unknown lr_find key");
    expect("return { " BASE "stages = { {epochs = 1, train = 3} } }",
           "stages[1].train: expected \"all\", a group name or parameter pattern");
    expect("return { " BASE "stages = { {epochs = 1, lr = {'slice', 1e-3, 1e-5}} } }",
           "stages[1].lr: expected slice(lo, hi) with 0 < lo <= hi");

    /* An LR finder with fastai's defaults, then stages taking its suggestion and a slice. */
    CHECK(plan_of("return { " BASE "stages = { {'lr_find'}, {epochs = 1, lr = 'lr_find.steep', "
                  "train = 'fc.*'}, {epochs = 2, lr = slice(1e-5, 1e-3), train = 'all', "
                  "train_bn = true} } }", &p, &root, err, sizeof err) == 0);
    CHECK(p.n_stages == 3 && p.stages[0].kind == RN_STAGE_LR_FIND);
    CHECK(strcmp(p.stages[0].name, "lr_find") == 0);
    CHECK(p.stages[0].find.start_lr == 1e-7 && p.stages[0].find.end_lr == 10);
    CHECK(p.stages[0].find.steps == 100 && p.stages[0].find.beta == 0.98);
    CHECK(p.stages[0].find.div_factor == 4 && p.stages[0].find.stop_div == 1);
    CHECK(p.stages[0].find.repeats == 1 && p.stages[0].find.linear == 0);
    CHECK(p.stages[1].lr_from == RN_LR_FOUND && strcmp(p.stages[1].lr_found, "steep") == 0);
    CHECK(p.stages[1].train && p.stages[1].train->type == RN_V_STRING);
    CHECK(p.stages[2].lr_from == RN_LR_SLICE && p.stages[2].lr == 1e-5 &&
          p.stages[2].lr_hi == 1e-3);
    CHECK(p.stages[2].train == NULL && p.stages[2].train_bn == 1);
    rn_plan_free(&p);
    rn_value_free(root);
    expect("return { " BASE "stages = { {epochs = 0} } }", "stages[1].epochs");
    expect("return { " BASE "stages = { {epochs = 1, lrr = 1} } }",
           "stages[1].lrr: unknown stage key");
    expect("return { " BASE "epochs = 1, device = 'tpu' }", "device: expected \"cpu\"");
    expect("return { " BASE "epochs = 1, conv_workspace_mib = -1 }", "conv_workspace_mib: ");
    expect("return { " BASE "epochs = 1, conv_workspace_mib = '1G' }", "conv_workspace_mib: ");
    expect("return { " BASE "epochs = 1, loss = {'mse'} }", "unknown loss \"mse\"");
    expect("return { model = {}, optimizer = {'sgd'}, epochs = 1 }", "data: missing");
    expect("return { " DATA "optimizer = {'sgd'}, epochs = 1 }", "model: missing");
    expect("return { " DATA "model = {}, epochs = 1 }", "optimizer: missing");
    expect("return { data = { train = { images = 'a' } }, model = {}, optimizer = {'sgd'}, "
           "epochs = 1 }", "data.train.labels: missing");
    expect("return { " BASE "epochs = 1, data = { train = { images = 'a', labels = 'b', "
           "format = 'csv' } } }", "data.train.format");
    expect("return { model = {}, optimizer = {'sgd'}, epochs = 1, data = { train = { format = "
           "'cifar10' } } }", "data.train.archive: missing");

    /* CIFAR splits name the archive and know which part of it they are. */
    CHECK(plan_of("return { model = {}, optimizer = {'sgd'}, epochs = 1, data = { train = { "
                  "format = 'cifar100', archive = 'c.tar.gz' }, test = { format = 'cifar10', "
                  "archive = '/x/c.tar.gz' } } }", &p, &root, err, sizeof err) == 0);
    snprintf(want, sizeof want, "%s/c.tar.gz", dir);
    CHECK(strcmp(p.data.train.archive, want) == 0 && strcmp(p.data.train.split, "train") == 0);
    CHECK(strcmp(p.data.train.format, "cifar100") == 0);
    CHECK(strcmp(p.data.test.archive, "/x/c.tar.gz") == 0 && strcmp(p.data.test.split, "test") == 0);
    rn_plan_free(&p);
    rn_value_free(root);
    expect("return { data = { train = { images = 'a', labels = 'b' }, normalize = { mean = {0.5}, "
           "std = {0} } }, model = {}, optimizer = {'sgd'}, epochs = 1 }",
           "data.normalize.std[1]: expected a positive number");
    expect("return { data = { train = { images = 'a', labels = 'b' }, normalize = { mean = {0.5, "
           "0.5}, std = {1} } }, model = {}, optimizer = {'sgd'}, epochs = 1 }",
           "mean has 2 values but std has 1");
    expect("return { " BASE "epochs = 1, callbacks = { x = 1 } }", "callbacks: expected a list");

    char path[64];
    snprintf(path, sizeof path, "%s/r.lua", dir);
    unlink(path);
    rmdir(dir);
    return rn_test_report("test_plan");
}
