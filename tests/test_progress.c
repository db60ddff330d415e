/* progress plugin: not on a terminal, one line per epoch on stdout with the train loss, the test
 * metrics when measured, images/s and elapsed time, and nothing per step; on a terminal, a bar on
 * stderr redrawn with '\r' at most once per refresh_s (1000 steps in well under a second with
 * refresh_s = 10 give 2 draws: the first step and the epoch's last), ended by a newline. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_test_util.h"
#include "rn_test.h"

/* Runs fn with the stream fd redirected to a temp file; returns the captured text. */
static char *capture(int fd, void (*fn)(void *), void *arg)
{
    static char buf[16384];
    char path[] = "/tmp/rn_progress_XXXXXX";
    int tmp = mkstemp(path);
    if (tmp < 0) exit(2);
    fflush(NULL);
    int saved = dup(fd);
    dup2(tmp, fd);
    fn(arg);
    fflush(NULL);
    dup2(saved, fd);
    close(saved);
    lseek(tmp, 0, SEEK_SET);
    ssize_t n = read(tmp, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    close(tmp);
    unlink(path);
    return buf;
}

typedef struct job {
    rn_instance *inst;
    rn_metrics *m;
    int64_t steps;
} job;

static void run_epoch(void *arg)
{
    job *j = arg;
    const rn_callback_api *api = j->inst->plugin->api;
    rn_event e = {sizeof e, "fit", 0, 1, 0, 2 * j->steps, 0, 2, j->steps, 0, 0.5, 0.01, 1234, 75};
    CHECK(api->on_stage_begin(j->inst->self, &e) == RN_CONTINUE);
    for (int64_t s = 1; s <= j->steps; s++) {
        e.step = e.global_step = s;
        e.loss = 0.4123;
        CHECK(api->on_step_end(j->inst->self, &e) == RN_CONTINUE);
    }
    rn_metrics_set(j->m, "test.acc", 0.8612);
    CHECK(api->on_epoch_end(j->inst->self, &e) == RN_CONTINUE);
    CHECK(api->on_run_end(j->inst->self, &e) == RN_CONTINUE);
}

int main(void)
{
    rn_registry *reg = pt_registry();
    rn_metrics m = {0};
    rn_metrics_set(&m, "train.loss", 0.4123);
    rn_metrics_set(&m, "test.loss", NAN);
    rn_metrics_set(&m, "test.acc", NAN);
    rn_run_view run = {.run_dir = ".", .seed = 1, .metrics = &m};

    rn_instance inst;
    pt_create(&inst, reg, RN_KIND_CALLBACK, pt_spec("callbacks[1]", "progress"), &run);
    job j = {&inst, &m, 469};
    char *out = capture(STDOUT_FILENO, run_epoch, &j);
    printf("  log line: %s", out);
    CHECK(strcmp(out, "stage fit epoch 1/2 train.loss 0.4123 test.acc 0.8612 1234 img/s "
                      "1:15 elapsed\n") == 0);
    rn_instance_destroy(&inst);

    run.is_tty = 1;
    rn_metrics_set(&m, "test.acc", NAN);
    pt_create(&inst, reg, RN_KIND_CALLBACK,
              pt_num(pt_spec("callbacks[1]", "progress"), "refresh_s", 10), &run);
    j.steps = 1000;
    char *err = capture(STDERR_FILENO, run_epoch, &j);
    int redraws = 0;
    for (char *c = err; *c; c++) redraws += *c == '\r';
    CHECK(redraws == 2); /* the first step and the epoch's last */
    CHECK(strstr(err, "\repoch 1/2 [....................] 1/1000 loss 0.4123 lr 1.00e-02 1234 "
                      "img/s eta ") != NULL);
    CHECK(strstr(err, "[####################] 1000/1000") != NULL);
    CHECK(strstr(err, " test.acc 0.8612 1:15 elapsed\n") != NULL);
    CHECK(err[strlen(err) - 1] == '\n');
    fprintf(stdout, "  bar (%d draws): %s", redraws, strrchr(err, '\r') + 1);
    rn_instance_destroy(&inst);
    rn_metrics_free(&m);
    rn_registry_free(reg);
    return rn_test_report("test_progress");
}
