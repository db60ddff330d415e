/* csv_logger plugin: hooks run with a fake metrics set, the file read back and compared as text:
 * the header fixes the columns at the first row (a later metric is ignored), numbers are %.9g,
 * NaN is an empty cell, step rows come every every_steps steps, nothing is lost before the run
 * ends (rows are flushed), and file names with '/' or '..' are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_test_util.h"
#include "rn_test.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

int main(void)
{
    rn_registry *reg = pt_registry();
    char dir[] = "/tmp/rn_csv_logger_XXXXXX";
    if (!mkdtemp(dir)) return 2;
    rn_metrics m = {0};
    rn_metrics_set(&m, "train.loss", 2.5);
    rn_metrics_set(&m, "lr", 0.1);
    rn_metrics_set(&m, "test.loss", NAN);
    rn_metrics_set(&m, "test,acc", NAN); /* a comma forces quoting */
    rn_run_view run = {.run_dir = dir, .seed = 1, .metrics = &m};

    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK,
              pt_int(pt_str(pt_spec("callbacks[2]", "csv_logger"), "every", "step"), "every_steps", 2),
              &run);
    const rn_callback_api *api = inst.plugin->api;
    rn_event e = {sizeof e, "fit", 0, 1, 0, 6, 0, 2, 3, 0, 0, 0.1, 100, 0};
    for (int s = 1; s <= 3; s++) {
        e.step = e.global_step = s;
        rn_metrics_set(&m, "train.loss", 1.0 / s);
        CHECK(api->on_step_end(inst.self, &e) == RN_CONTINUE);
    }
    rn_metrics_set(&m, "test.loss", 0.75);
    rn_metrics_set(&m, "test,acc", 0.5);
    rn_metrics_set(&m, "late.metric", 1); /* appears after the header: ignored */
    CHECK(api->on_epoch_end(inst.self, &e) == RN_CONTINUE);

    char path[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    /* Flushed already, before the run ends. */
    char *text = slurp(path);
    const char *partial = "stage,epoch,step,train.loss,lr,test.loss,\"test,acc\"\n"
                          "fit,0,2,0.5,0.1,,\n"
                          "fit,0,3,0.333333333,0.1,0.75,0.5\n";
    CHECK(text && strcmp(text, partial) == 0);
    rn_metrics_set(&m, "lr", 0.1f); /* a float's value shows in %.9g */

    e.epoch = 1;
    e.step = e.global_step = 4;
    CHECK(api->on_step_end(inst.self, &e) == RN_CONTINUE);
    CHECK(api->on_run_end(inst.self, &e) == RN_CONTINUE);
    CHECK(api->on_epoch_end(inst.self, &e) == RN_CONTINUE); /* after the end: nothing written */
    text = slurp(path);
    const char *expect = "stage,epoch,step,train.loss,lr,test.loss,\"test,acc\"\n"
                         "fit,0,2,0.5,0.1,,\n"
                         "fit,0,3,0.333333333,0.1,0.75,0.5\n"
                         "fit,1,4,0.333333333,0.100000001,0.75,0.5\n";
    CHECK(text && strcmp(text, expect) == 0);
    if (text && strcmp(text, expect) != 0) fprintf(stderr, "got:\n%s", text);
    rn_instance_destroy(&inst);
    unlink(path);

    /* Default: epoch rows only, to the file named by `file`. */
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_str(pt_spec("callbacks[1]", "csv_logger"), "file", "log.csv"),
              &run);
    for (int s = 1; s <= 4; s++) {
        e.step = s;
        CHECK(api->on_step_end(inst.self, &e) == RN_CONTINUE);
    }
    CHECK(api->on_epoch_end(inst.self, &e) == RN_CONTINUE);
    rn_instance_destroy(&inst); /* destroy without on_run_end closes the file too */
    snprintf(path, sizeof path, "%s/log.csv", dir);
    text = slurp(path);
    CHECK(text && strcmp(text, "stage,epoch,step,train.loss,lr,test.loss,\"test,acc\",late.metric\n"
                               "fit,1,4,0.333333333,0.100000001,0.75,0.5,1\n") == 0);
    unlink(path);
    rmdir(dir);

    char err[512];
    const char *bad[] = {"../escape.csv", "sub/metrics.csv", ""};
    for (int i = 0; i < 3; i++) {
        CHECK(pt_create_fails(reg, RN_KIND_CALLBACK,
                              pt_str(pt_spec("callbacks[1]", "csv_logger"), "file", bad[i]), err,
                              sizeof err));
        CHECK(strstr(err, "callbacks[1]") && strstr(err, "file"));
    }
    printf("  bad file: %s\n", err);
    CHECK(pt_create_fails(reg, RN_KIND_CALLBACK,
                          pt_str(pt_spec("callbacks[1]", "csv_logger"), "every", "hour"), err,
                          sizeof err));
    CHECK(strstr(err, "callbacks[1].every") != NULL);
    rn_metrics_free(&m);
    rn_registry_free(reg);
    return rn_test_report("test_csv_logger");
}
