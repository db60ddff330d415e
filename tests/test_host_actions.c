/* The ABI 1.1 host actions (rn_host save_state ... set_metric) over a fake rn_run_ops: each one
 * reaches the run with the right arguments, its refusals (another kind, no run, no ops, a bad
 * checkpoint name, a bad factor, a bad metric name) set the error and leave the run untouched,
 * the state copy is reused by a second save, dropped by a failed one and freed when the instance
 * is destroyed. Also the ABI: the host table says 1.1, an ABI 1.0 callback library (api
 * struct_size up to on_run_end) loads and its 1.1 hooks read as absent, and a library with only
 * some of the state hooks is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fake_run_ops.h"
#include "plugin_ctx.h"
#include "plugin_test_util.h"
#include "rn_test.h"

static void clear_error(rn_instance *inst) { inst->ctx->error[0] = 0; }

static int error_has(const rn_instance *inst, const char *a, const char *b)
{
    const char *msg = rn_instance_error(inst);
    return strstr(msg, a) && (!b || strstr(msg, b));
}

static void test_callback_actions(const rn_registry *reg)
{
    const rn_host *h = rn_host_table();
    rn_metrics m = {0};
    rn_metrics_set(&m, "train.loss", 1);
    fake_run fr;
    fake_run_init(&fr);
    fr.n_groups = 2;
    fr.group_names[0] = "default";
    fr.group_names[1] = "head";
    fr.lr[0] = 0.1, fr.lr[1] = 1;
    fr.momentum[0] = 0.9, fr.momentum[1] = 0.8;
    rn_run_view run = fake_view("/nonexistent", &m, &fr);
    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "progress"), &run);
    rn_ctx *ctx = inst.ctx;

    /* restore before any save */
    CHECK(h->restore_state(ctx) == RN_ERR);
    CHECK(error_has(&inst, "no saved state", NULL));
    CHECK(fr.restores == 0);
    clear_error(&inst);

    /* save, save again (the copy is reused), restore twice (the copy is kept) */
    fr.weights = 1;
    CHECK(h->save_state(ctx) == RN_OK);
    fr.weights = 2;
    CHECK(h->save_state(ctx) == RN_OK);
    CHECK(fr.saves == 2 && fr.live_copies == 1);
    fr.weights = 3;
    CHECK(h->restore_state(ctx) == RN_OK);
    CHECK(fr.weights == 2);
    fr.weights = 4;
    CHECK(h->restore_state(ctx) == RN_OK);
    CHECK(fr.weights == 2 && fr.restores == 2);

    /* a failed restore reports the run's message */
    fr.fail_restore = 1;
    CHECK(h->restore_state(ctx) == RN_ERR);
    CHECK(error_has(&inst, "restore_state", "shape mismatch"));
    fr.fail_restore = 0;
    clear_error(&inst);

    /* a failed save drops the copy: no restore from a half-written one */
    fr.fail_save = 1;
    CHECK(h->save_state(ctx) == RN_ERR);
    CHECK(error_has(&inst, "save_state", "disk full"));
    CHECK(fr.frees == 1 && fr.live_copies == 0);
    clear_error(&inst);
    CHECK(h->restore_state(ctx) == RN_ERR);
    CHECK(error_has(&inst, "no saved state", NULL));
    clear_error(&inst);
    fr.fail_save = 0;
    fr.weights = 5;
    CHECK(h->save_state(ctx) == RN_OK);
    CHECK(fr.live_copies == 1);

    /* write_checkpoint: plain names ending in .safetensors only */
    CHECK(h->write_checkpoint(ctx, "best.safetensors") == RN_OK);
    CHECK(h->write_checkpoint(ctx, "epoch-3.safetensors") == RN_OK);
    CHECK(strcmp(fr.written, "best.safetensors epoch-3.safetensors ") == 0);
    const char *bad[] = {"../x.safetensors", "sub/x.safetensors", ".hidden.safetensors",
                         ".safetensors", "x.pt", "x.safetensors.tmp", "", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(h->write_checkpoint(ctx, bad[i]) == RN_ERR);
        CHECK(error_has(&inst, "write_checkpoint", "plain file name ending in \".safetensors\""));
        clear_error(&inst);
    }
    CHECK(fr.checkpoints == 2);
    fr.fail_checkpoint = 1;
    CHECK(h->write_checkpoint(ctx, "last.safetensors") == RN_ERR);
    CHECK(error_has(&inst, "last.safetensors", "no space left"));
    fr.fail_checkpoint = 0;
    clear_error(&inst);

    /* scale_lr compounds; 0, negatives and non-finite factors are refused */
    CHECK(h->scale_lr(ctx, 0.5) == RN_OK);
    CHECK(h->scale_lr(ctx, 0.5) == RN_OK);
    CHECK(fr.lr_scale == 0.25 && fr.scales == 2);
    const double bad_factor[] = {0, -0.5, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_factor / sizeof bad_factor[0]; i++) {
        CHECK(h->scale_lr(ctx, bad_factor[i]) == RN_ERR);
        CHECK(error_has(&inst, "scale_lr", "finite factor > 0"));
        clear_error(&inst);
    }
    CHECK(fr.lr_scale == 0.25 && fr.scales == 2);

    /* groups */
    CHECK(h->group_count(ctx) == 2);
    const char *name = NULL;
    double lr = 0, mom = 0;
    CHECK(h->group_at(ctx, 1, &name, &lr, &mom) == 1);
    CHECK(name && strcmp(name, "head") == 0 && lr == 1 && mom == 0.8);
    CHECK(h->group_at(ctx, 0, &name, NULL, NULL) == 1); /* outputs are optional */
    CHECK(strcmp(name, "default") == 0);
    CHECK(h->group_at(ctx, 2, &name, &lr, &mom) == 0);

    /* set_metric adds, then updates; names are [A-Za-z0-9_.]+ */
    CHECK(h->set_metric(ctx, "grad_norm.max", 3) == RN_OK);
    CHECK(h->set_metric(ctx, "grad_norm.max", 4) == RN_OK);
    double v = 0;
    CHECK(rn_metrics_get(&m, "grad_norm.max", &v) && v == 4);
    CHECK(m.n == 2);
    const char *bad_name[] = {"", "a b", "a/b", "lr-x", "lr.fc.*", "é", NULL};
    for (size_t i = 0; i < sizeof bad_name / sizeof bad_name[0]; i++) {
        CHECK(h->set_metric(ctx, bad_name[i], 1) == RN_ERR);
        CHECK(error_has(&inst, "set_metric", "letters, digits"));
        clear_error(&inst);
    }
    CHECK(m.n == 2);

    /* the copy is freed with the instance */
    rn_instance_destroy(&inst);
    CHECK(fr.live_copies == 0);
    CHECK(fr.frees == 2);
    rn_metrics_free(&m);
}

/* Another kind, no run, a run without ops: refused, with the error set and the run untouched. */
static void test_refusals(const rn_registry *reg)
{
    const rn_host *h = rn_host_table();
    rn_metrics m = {0};
    fake_run fr;
    fake_run_init(&fr);
    fr.n_groups = 1;
    fr.group_names[0] = "default";
    rn_run_view run = fake_view("/nonexistent", &m, &fr);

    rn_instance opt;
    pt_create(&opt, reg, RN_KIND_OPTIMIZER, pt_num(pt_spec("optimizer", "sgd"), "lr", 0.1), &run);
    const char *name;
    double lr, mom;
    struct {
        int rc;
        const char *fn;
    } calls[7];
    calls[0].rc = h->save_state(opt.ctx), calls[0].fn = "save_state";
    calls[1].rc = h->restore_state(opt.ctx), calls[1].fn = "restore_state";
    calls[2].rc = h->write_checkpoint(opt.ctx, "a.safetensors"), calls[2].fn = "write_checkpoint";
    calls[3].rc = h->scale_lr(opt.ctx, 0.5), calls[3].fn = "scale_lr";
    calls[4].rc = (int)h->group_count(opt.ctx), calls[4].fn = "group_count";
    calls[5].rc = h->group_at(opt.ctx, 0, &name, &lr, &mom), calls[5].fn = "group_at";
    calls[6].rc = h->set_metric(opt.ctx, "x", 1), calls[6].fn = "set_metric";
    for (int i = 0; i < 7; i++) {
        /* the functions returning a count or a found flag refuse with 0, the others RN_ERR */
        CHECK(calls[i].rc == (i == 4 || i == 5 ? 0 : RN_ERR));
        clear_error(&opt);
    }
    CHECK(h->scale_lr(opt.ctx, 0.5) == RN_ERR);
    CHECK(error_has(&opt, "host->scale_lr is for callbacks only", "optimizer"));
    clear_error(&opt);
    CHECK(h->set_metric(opt.ctx, "x", 1) == RN_ERR);
    CHECK(error_has(&opt, "host->set_metric is for callbacks only", "optimizer"));
    CHECK(fr.saves + fr.restores + fr.checkpoints + fr.scales == 0 && fr.lr_scale == 1);
    CHECK(m.n == 0);
    rn_instance_destroy(&opt);

    /* a callback without a run */
    rn_instance cb;
    pt_create(&cb, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "progress"), NULL);
    CHECK(h->save_state(cb.ctx) == RN_ERR);
    CHECK(error_has(&cb, "host->save_state", "no run"));
    clear_error(&cb);
    CHECK(h->group_count(cb.ctx) == 0);
    CHECK(error_has(&cb, "host->group_count", "no run"));
    clear_error(&cb);
    CHECK(h->set_metric(cb.ctx, "x", 1) == RN_ERR);
    CHECK(error_has(&cb, "host->set_metric", "no run"));
    rn_instance_destroy(&cb);

    /* a run without ops: no actions, but metrics can still be set (they need no ops) */
    rn_run_view no_ops = {.run_dir = "/nonexistent", .seed = 1, .metrics = &m};
    pt_create(&cb, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "progress"), &no_ops);
    CHECK(h->write_checkpoint(cb.ctx, "a.safetensors") == RN_ERR);
    CHECK(error_has(&cb, "host->write_checkpoint", "no run"));
    clear_error(&cb);
    CHECK(h->scale_lr(cb.ctx, 0.5) == RN_ERR);
    clear_error(&cb);
    CHECK(h->group_at(cb.ctx, 0, &name, &lr, &mom) == 0);
    clear_error(&cb);
    CHECK(h->set_metric(cb.ctx, "lr.default", 0.1) == RN_OK);
    CHECK(m.n == 1);
    rn_instance_destroy(&cb);
    rn_metrics_free(&m);
}

static void test_abi(void)
{
    const rn_host *h = rn_host_table();
    CHECK(h->abi_major == 1 && h->abi_minor == 3);
    CHECK(h->struct_size == sizeof(rn_host));
    CHECK(h->save_state && h->restore_state && h->write_checkpoint && h->scale_lr &&
          h->group_count && h->group_at && h->set_metric);

    const char *dir = getenv("RN_ABI_PLUGIN_DIR");
    if (!dir) {
        fprintf(stderr, "RN_ABI_PLUGIN_DIR is not set (run the test through ctest)\n");
        exit(2);
    }
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/abi10_callback", dir);
    const char *dirs[] = {path};
    rn_registry *reg = NULL;
    CHECK(rn_registry_scan(&reg, dirs, 1, err, sizeof err) == 0);
    if (!reg) {
        fprintf(stderr, "abi10 scan: %s\n", err);
        return;
    }
    const rn_plugin *p10 = rn_registry_find(reg, RN_KIND_CALLBACK, "test.abi10_callback", "t",
                                            NULL, err, sizeof err);
    const rn_plugin *p11 = rn_registry_find(reg, RN_KIND_CALLBACK, "test.abi11_callback", "t",
                                            NULL, err, sizeof err);
    CHECK(p10 && p11);
    if (p10 && p11) {
        const rn_callback_api *a10 = p10->api, *a11 = p11->api;
        /* the 1.0 api's fields past struct_size are set, yet must read as absent */
        CHECK(a10->on_nonfinite != NULL);
        CHECK(!rn_callback_hook_present(a10, on_nonfinite));
        CHECK(!rn_callback_hook_present(a10, state_size));
        CHECK(rn_callback_hook(a10, state_load) == NULL);
        CHECK(rn_callback_hook_present(a10, on_run_end));
        CHECK(!rn_callback_hook_present(a10, on_epoch_end)); /* covered but NULL */
        CHECK(rn_callback_hook_present(a11, on_nonfinite));
        CHECK(rn_callback_hook(a11, on_nonfinite) == a11->on_nonfinite);
        CHECK(!rn_callback_hook_present(a11, state_save));
        /* and an instance of it works like any other */
        rn_instance inst;
        pt_create(&inst, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "test.abi10_callback"),
                  NULL);
        rn_instance_destroy(&inst);
    }
    rn_registry_free(reg);

    snprintf(path, sizeof path, "%s/partial_state", dir);
    reg = NULL;
    CHECK(rn_registry_scan(&reg, dirs, 1, err, sizeof err) != 0);
    CHECK(strstr(err, "partial_state.so") && strstr(err, "test.partial_state") &&
          strstr(err, "all three or none"));
    printf("  partial state hooks: %s\n", err);
    if (reg) rn_registry_free(reg);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    test_callback_actions(reg);
    test_refusals(reg);
    test_abi();
    rn_registry_free(reg);
    return rn_test_report("test_host_actions");
}
