/* What callbacks may do to the run (rn_run_ops behind rn_host ABI 1.1). */
#include "run_actions.h"

#include <math.h>
#include <stdio.h>

#include "checkpoint.h"
#include "run_state.h"
#include "train_device.h"

static int save_state(void *run, void **copy, char *err, size_t errlen)
{
    return rn_run_state_save(run, (rn_run_state **)copy, err, errlen);
}

static int restore_state(void *run, const void *copy, char *err, size_t errlen)
{
    return rn_run_state_restore(run, copy, err, errlen);
}

static void free_state(void *copy) { rn_run_state_free(copy); }

static int write_checkpoint(void *run, const char *name, char *err, size_t errlen)
{
    rn_run *r = run;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", r->view.run_dir, name);
    if (rn_dev_pull(r, err, errlen)) return -1; /* a GPU run: the device's weights and state */
    return rn_checkpoint_write(path, r, err, errlen);
}

static void scale_lr(void *run, double factor) { ((rn_run *)run)->lr_scale *= factor; }

static size_t group_count(void *run) { return (size_t)((rn_run *)run)->opt.n; }

static int group_at(void *run, size_t i, const char **name, double *lr, double *momentum)
{
    rn_run *r = run;
    if (i >= (size_t)r->opt.n) return 0;
    const rn_opt_group *g = &r->opt.v[i];
    *name = g->name;
    *lr = g->g.n_params ? g->g.lr : 0;
    *momentum = g->g.momentum;
    return 1;
}

static const rn_run_ops ops = {
    .save_state = save_state,
    .restore_state = restore_state,
    .free_state = free_state,
    .write_checkpoint = write_checkpoint,
    .scale_lr = scale_lr,
    .group_count = group_count,
    .group_at = group_at,
};

const rn_run_ops *rn_run_actions(void) { return &ops; }
