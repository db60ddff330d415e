/* A fake run behind rn_run_ops, for the ABI 1.1 host actions (tests/test_host_actions.c) and the
 * callbacks that use them: the "trainable state" is one double (`weights`) that save_state copies
 * and restore_state puts back; every call is counted; write_checkpoint records the names (and, with
 * `dir` set, creates the file so deletions can be checked); the groups are a small table the test
 * fills. Also: capturing what host->log prints (stdout for info, stderr for warnings). */
#ifndef RN_FAKE_RUN_OPS_H
#define RN_FAKE_RUN_OPS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_host.h"

#define FAKE_MAX_GROUPS 4

typedef struct fake_run {
    double weights;        /* what save_state copies and restore_state puts back */
    int saves, restores, frees, live_copies, checkpoints, scales;
    double lr_scale;       /* product of the scale_lr factors (set to 1 by fake_run_init) */
    int fail_save, fail_restore, fail_checkpoint;
    char written[2048];    /* checkpoint names written, in order, each followed by ' ' */
    const char *dir;       /* when set, write_checkpoint creates dir/name */
    size_t n_groups;
    const char *group_names[FAKE_MAX_GROUPS];
    double lr[FAKE_MAX_GROUPS], momentum[FAKE_MAX_GROUPS];
} fake_run;

typedef struct fake_copy {
    fake_run *run;
    double weights;
} fake_copy;

static int fake_save_state(void *run, void **copy, char *err, size_t errlen)
{
    fake_run *r = run;
    if (r->fail_save) {
        snprintf(err, errlen, "disk full (fake)");
        return -1;
    }
    fake_copy *c = *copy;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) abort();
        c->run = r;
        r->live_copies++;
        *copy = c;
    }
    c->weights = r->weights;
    r->saves++;
    return 0;
}

static int fake_restore_state(void *run, const void *copy, char *err, size_t errlen)
{
    fake_run *r = run;
    if (r->fail_restore) {
        snprintf(err, errlen, "shape mismatch (fake)");
        return -1;
    }
    r->weights = ((const fake_copy *)copy)->weights;
    r->restores++;
    return 0;
}

static void fake_free_state(void *copy)
{
    fake_copy *c = copy;
    c->run->frees++;
    c->run->live_copies--;
    free(c);
}

static int fake_write_checkpoint(void *run, const char *name, char *err, size_t errlen)
{
    fake_run *r = run;
    if (r->fail_checkpoint) {
        snprintf(err, errlen, "no space left on device (fake)");
        return -1;
    }
    r->checkpoints++;
    size_t off = strlen(r->written);
    snprintf(r->written + off, sizeof r->written - off, "%s ", name);
    if (r->dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", r->dir, name);
        FILE *f = fopen(path, "w");
        if (!f) {
            snprintf(err, errlen, "cannot create %s", path);
            return -1;
        }
        fprintf(f, "weights %g\n", r->weights);
        fclose(f);
    }
    return 0;
}

static void fake_scale_lr(void *run, double factor)
{
    fake_run *r = run;
    r->lr_scale *= factor;
    r->scales++;
}

static size_t fake_group_count(void *run) { return ((fake_run *)run)->n_groups; }

static int fake_group_at(void *run, size_t i, const char **name, double *lr, double *momentum)
{
    fake_run *r = run;
    if (i >= r->n_groups) return 0;
    *name = r->group_names[i];
    *lr = r->lr[i];
    *momentum = r->momentum[i];
    return 1;
}

static const rn_run_ops fake_ops = {
    .save_state = fake_save_state,
    .restore_state = fake_restore_state,
    .free_state = fake_free_state,
    .write_checkpoint = fake_write_checkpoint,
    .scale_lr = fake_scale_lr,
    .group_count = fake_group_count,
    .group_at = fake_group_at,
};

static inline void fake_run_init(fake_run *r)
{
    memset(r, 0, sizeof *r);
    r->lr_scale = 1;
}

/* A run view over metrics m and the fake run r, its directory dir. */
static inline rn_run_view fake_view(const char *dir, rn_metrics *m, fake_run *r)
{
    rn_run_view v = {.run_dir = dir, .seed = 1, .metrics = m, .ops = &fake_ops, .run = r};
    return v;
}

/* ---- capturing host->log output ------------------------------------------------------------ */

typedef struct fake_capture {
    int fd, saved;
    char path[64];
    char text[8192];
} fake_capture;

/* Redirects fd (1: stdout, 2: stderr) into a temporary file until capture_end. */
static inline void capture_begin(fake_capture *c, int fd)
{
    fflush(stdout);
    fflush(stderr);
    snprintf(c->path, sizeof c->path, "/tmp/rn_capture_XXXXXX");
    int t = mkstemp(c->path);
    if (t < 0) abort();
    c->fd = fd;
    c->saved = dup(fd);
    dup2(t, fd);
    close(t);
}

/* Restores fd and returns what was written to it meanwhile (also echoed, for the test log). */
static inline const char *capture_end(fake_capture *c)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    size_t n = f ? fread(c->text, 1, sizeof c->text - 1, f) : 0;
    c->text[n] = 0;
    if (f) fclose(f);
    unlink(c->path);
    fputs(c->text, c->fd == 1 ? stdout : stderr);
    return c->text;
}

/* An event at (stage_index, epoch, step) of a stage of `epochs` epochs of `spe` steps each. */
static inline rn_event fake_event(int stage_index, int64_t epoch, int64_t step, int64_t global_step,
                                  int64_t spe, int64_t epochs)
{
    rn_event e = {sizeof e, "fit", stage_index, 2, step, spe * epochs, epoch, epochs, spe,
                  global_step, 0.5, 0.1, 100, 1};
    return e;
}

#endif
