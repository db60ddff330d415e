/* Checkpoints: after training, every parameter, buffer, optimizer state, group step count, layer
 * counter (dropout, batch norm) and the metric history come back bit for bit into a fresh run
 * of the same recipe; a checkpoint of another model is refused naming the tensor. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint.h"
#include "rn_test.h"
#include "safetensors.h"
#include "sandbox.h"

static char dir[] = "/tmp/rn-ckpt-XXXXXX";

static const char *recipe =
    "local nn = import 'lib.nn'\n"
    "local datasets = import 'lib.datasets'\n"
    "local fm = datasets.fashion_mnist{ limit = 128, test_limit = 32 }\n"
    "local c = %d\n"
    "return {\n"
    "  seed = 3,\n"
    "  data = { train = fm.train, test = fm.test, batch_size = 32 },\n"
    "  model = nn.sequential{ nn.conv2d{ name = 'conv', in_channels = 1, out_channels = c,\n"
    "                                    kernel_size = 3 },\n"
    "                         nn.batch_norm2d{ name = 'bn', num_features = c }, nn.relu(),\n"
    "                         nn.dropout{ p = 0.2 }, nn.flatten(),\n"
    "                         nn.linear{ name = 'fc', in_features = c * 26 * 26, out_features = 10 } },\n"
    "  optimizer = { 'adam', lr = 1e-3, weight_decay = 1e-4 },\n"
    "  groups = { head = { 'fc.*', lr = 1e-2 } },\n"
    "  decay_bias_and_norm = false,\n"
    "  schedule = { { 'constant' }, { 'reduce_on_plateau', multiply = true, patience = 0 } },\n"
    "  callbacks = {},\n"
    "  epochs = 2,\n"
    "}\n";

typedef struct world {
    rn_value *root;
    rn_plan plan;
    rn_registry *reg;
    rn_run run;
} world;

static int make(world *w, int channels, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "%s/r.lua", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, recipe, channels);
    fclose(f);
    memset(w, 0, sizeof *w);
    rn_sandbox *sb = rn_sandbox_new(RN_RECIPES_DIR, NULL, err, errlen);
    w->root = rn_sandbox_run_file(sb, path, err, errlen);
    rn_sandbox_free(sb);
    const char *dirs[] = {getenv("RN_PLUGIN_DIR")};
    if (!w->root || rn_plan_build(&w->plan, w->root, path, err, errlen) ||
        rn_registry_scan(&w->reg, dirs, 1, err, errlen))
        return -1;
    return rn_run_prepare(&w->run, &w->plan, w->reg, dir, 0, err, errlen);
}

static void unmake(world *w)
{
    rn_run_free(&w->run);
    rn_registry_free(w->reg);
    rn_plan_free(&w->plan);
    rn_value_free(w->root);
}

int main(void)
{
    if (access("/usr/share/datasets/fashion-mnist", F_OK) != 0) {
        fprintf(stderr, "Fashion-MNIST missing (scripts/setup installs it)\n");
        return 1;
    }
    CHECK(mkdtemp(dir) != NULL);
    char err[512] = "", path[96];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    world a, b;
    CHECK(make(&a, 4, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "%s\n", err);
    CHECK(a.run.opt.n == 4); /* default, default.no_decay, head, head.no_decay */
    CHECK(rn_run_train(&a.run, NULL, err, sizeof err) == 0);
    CHECK(a.run.global_step == 8 && a.run.epochs_done == 2);
    CHECK(rn_checkpoint_write(path, &a.run, err, sizeof err) == 0);

    CHECK(make(&b, 4, err, sizeof err) == 0);
    CHECK(rn_checkpoint_read(path, &b.run, err, sizeof err) == 0);
    if (err[0]) fprintf(stderr, "%s\n", err);
    /* parameters and buffers (batch norm's running statistics included) */
    for (int i = 0; i < a.run.model.n_params; i++) {
        const rn_tensor *x = a.run.model.params[i].value, *y = b.run.model.params[i].value;
        CHECK(memcmp(x->data, y->data, (size_t)rn_tensor_numel(x) * sizeof(float)) == 0);
    }
    /* optimizer state and step counts, group by group */
    for (int g = 0; g < a.run.opt.n; g++) {
        const rn_opt_group *x = &a.run.opt.v[g], *y = &b.run.opt.v[g];
        CHECK(strcmp(x->name, y->name) == 0 && x->g.step == 8 && y->g.step == 8);
        for (size_t p = 0; p < x->g.n_params; p++)
            CHECK(memcmp(x->params[p].state, y->params[p].state,
                         (size_t)(2 * x->params[p].numel) * sizeof(float)) == 0);
    }
    /* layer counters: dropout's mask counter and batch norm's num_batches_tracked */
    rn_layer *bn_a = a.run.model.layers[1], *bn_b = b.run.model.layers[1];
    CHECK(rn_batchnorm2d_num_batches_tracked(bn_a) == 8 &&
          rn_batchnorm2d_num_batches_tracked(bn_b) == 8);
    CHECK(a.run.model.layers[3]->calls == 8 && b.run.model.layers[3]->calls == 8);
    /* run position and the metric history a plateau schedule reads */
    CHECK(b.run.global_step == 8 && b.run.epochs_done == 2);
    double ha[4], hb[4];
    CHECK(rn_metrics_history(&a.run.metrics, "test.loss", ha, 4) == 2 &&
          rn_metrics_history(&b.run.metrics, "test.loss", hb, 4) == 2);
    CHECK(ha[0] == hb[0] && ha[1] == hb[1]);
    unmake(&b);

    /* a checkpoint of another model (8 channels, not 4): refused, naming the tensor */
    world c;
    CHECK(make(&c, 8, err, sizeof err) == 0);
    CHECK(rn_checkpoint_read(path, &c.run, err, sizeof err) != 0);
    CHECK(strstr(err, "tensor \"conv.weight\" has 36 values, the run has 72") != NULL);
    unmake(&c);
    /* a file that is no checkpoint: refused */
    char plain[96];
    snprintf(plain, sizeof plain, "%s/model.safetensors", dir);
    CHECK(rn_safetensors_write(plain, a.run.model.params, a.run.model.n_params, NULL, 0, err,
                               sizeof err) == 0);
    CHECK(make(&c, 4, err, sizeof err) == 0);
    CHECK(rn_checkpoint_read(plain, &c.run, err, sizeof err) != 0 &&
          strstr(err, "not a runner checkpoint"));
    unmake(&c);
    unmake(&a);
    unlink(plain);
    unlink(path);
    char rl[64];
    snprintf(rl, sizeof rl, "%s/r.lua", dir);
    unlink(rl);
    rmdir(dir);
    return rn_test_report("test_checkpoint");
}
