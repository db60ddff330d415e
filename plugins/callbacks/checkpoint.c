/* checkpoint — write resumable checkpoints into the run directory at epoch ends.
 *
 * At the end of every every_epochs-th epoch of the run (counted over all stages: N = epochs done
 * in the run, 1 after the first), through host->write_checkpoint (what `runner --resume`
 * continues from; written atomically), in this order:
 *   best.safetensors     save_best: when the monitored metric improved on the best so far
 *   last.safetensors     save_last: every time
 *   epoch-N.safetensors  keep > 0: every time; only the newest `keep` of these are kept, older
 *                        ones are deleted from the run directory
 *
 * Lightning's ModelCheckpoint, with its terms: save_best is save_top_k = 1 over `monitor` (the
 * best value is strictly better, NaN never is; it spans the whole run, not a stage), save_last is
 * save_last = True, every_epochs is every_n_epochs (gating all three files). Where it differs:
 * the defaults save best and last (Lightning: monitor None, last off), mode "auto" (max for names
 * ending in acc/accuracy/f1, else min; Lightning: "min"), and `keep` keeps the newest per-epoch
 * files (Lightning's save_top_k keeps the best k by the metric).
 * A monitor the run does not have is an error listing the metrics it has (with save_best only).
 *
 * Checkpointed state (state_save): the best value, the run's epoch count and the epoch numbers
 * of the files kept, updated before the files are written, so each file carries the state that
 * goes with it and a resumed run deletes exactly what the uninterrupted one would.
 */
#include "callback_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CK_ID "checkpoint"
#define CK_STATE_VERSION 1
#define CK_MAX_KEEP 10000

/* The fixed part of the checkpointed state; `keep` int64 epoch numbers follow it. */
typedef struct ck_state {
    cb_state_header header;
    double best;         /* best value of the monitor so far; +-inf before the first */
    int64_t best_epoch;  /* N of the epoch that gave it; 0 for none */
    int64_t epochs_done; /* epochs finished in the run */
    int64_t n_kept;      /* epoch-N files kept, at most keep */
} ck_state;

typedef struct checkpoint {
    const rn_host *host;
    rn_ctx *ctx;
    char monitor[128];
    int max_mode, save_best, save_last;
    int64_t keep, every;
    ck_state st;
    int64_t *kept;       /* keep slots: N of the kept epoch files, oldest first */
} checkpoint;

static const rn_setting ck_settings[] = {
    {"monitor", RN_SETTING_STRING, 0, "val.loss", 1, 0, NULL,
     "metric that decides best.safetensors, e.g. val.loss, test.acc", 0},
    {"mode", RN_SETTING_STRING, 0, "auto", 1, 0, "auto|min|max",
     "min: should fall; max: should rise; auto: max for names ending in acc/accuracy/f1, else "
     "min", 0},
    {"save_best", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,
     "write best.safetensors whenever the monitor improves on the run's best", 0},
    {"save_last", RN_SETTING_BOOL, 1, NULL, 1, 0, NULL,
     "write last.safetensors at every checkpointed epoch", 0},
    {"keep", RN_SETTING_INT, 0, NULL, 0, CK_MAX_KEEP, NULL,
     "0: no per-epoch files; k: also epoch-N.safetensors, keeping the newest k", 0},
    {"every_epochs", RN_SETTING_INT, 1, NULL, 1, 1e9, NULL,
     "checkpoint every this many epochs of the run", 0},
};

static int ck_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    const char *monitor = host->get_string(ctx, "monitor");
    if (!monitor[0] || strlen(monitor) >= sizeof ((checkpoint *)0)->monitor) {
        host->set_error(ctx, "monitor: expected a metric name such as \"val.loss\" (at most 127 "
                        "characters), got \"%s\"", monitor);
        return RN_ERR_CONFIG;
    }
    int64_t keep = host->get_int(ctx, "keep");
    checkpoint *c = host->alloc(sizeof *c);
    int64_t *kept = c ? host->alloc((size_t)(keep ? keep : 1) * sizeof *kept) : NULL;
    if (!kept) {
        if (c) host->free(c);
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    c->host = host;
    c->ctx = ctx;
    snprintf(c->monitor, sizeof c->monitor, "%s", monitor);
    c->max_mode = cb_mode_is_max(host->get_string(ctx, "mode"), monitor);
    c->save_best = host->get_bool(ctx, "save_best");
    c->save_last = host->get_bool(ctx, "save_last");
    c->keep = keep;
    c->every = host->get_int(ctx, "every_epochs");
    c->kept = kept;
    cb_header_fill(&c->st.header, CK_ID, CK_STATE_VERSION);
    c->st.best = c->max_mode ? -INFINITY : INFINITY;
    *self = c;
    return RN_OK;
}

static void ck_destroy(void *self)
{
    checkpoint *c = self;
    if (!c) return;
    c->host->free(c->kept);
    c->host->free(c);
}

static void epoch_file(char *buf, size_t len, int64_t n)
{
    snprintf(buf, len, "epoch-%lld.safetensors", (long long)n);
}

/* Deletes an epoch file we no longer keep; a failure is worth a warning, not stopping the run. */
static void delete_epoch_file(checkpoint *c, int64_t n)
{
    char name[64], path[4096];
    epoch_file(name, sizeof name, n);
    snprintf(path, sizeof path, "%s/%s", c->host->run_dir(c->ctx), name);
    if (unlink(path) != 0 && errno != ENOENT)
        c->host->log(c->ctx, RN_LOG_WARN, "cannot delete %s: %s", path, strerror(errno));
}

static int ck_epoch_end(void *self, const rn_event *e)
{
    checkpoint *c = self;
    c->st.epochs_done++;
    int64_t n = c->st.epochs_done;
    if (n % c->every != 0) return RN_CONTINUE;

    int improved = 0;
    if (c->save_best) {
        double value;
        if (!c->host->metric(c->ctx, c->monitor, &value))
            return cb_unknown_monitor(c->host, c->ctx, c->monitor);
        /* Strictly better; NaN never is (Lightning treats it as the worst value). */
        improved = isfinite(value) && (c->max_mode ? value > c->st.best : value < c->st.best);
        if (improved) {
            c->st.best = value;
            c->st.best_epoch = n;
        }
    }
    /* The kept list as it will be once epoch-N is written (the state each file carries). */
    int64_t drop = 0;
    if (c->keep > 0) {
        if (c->st.n_kept == c->keep) {
            drop = c->kept[0];
            memmove(c->kept, c->kept + 1, (size_t)(c->keep - 1) * sizeof *c->kept);
            c->st.n_kept--;
        }
        c->kept[c->st.n_kept++] = n;
    }
    if (improved && c->host->write_checkpoint(c->ctx, "best.safetensors") != RN_OK) return RN_ERR;
    if (c->save_last && c->host->write_checkpoint(c->ctx, "last.safetensors") != RN_OK)
        return RN_ERR;
    if (c->keep > 0) {
        char name[64];
        epoch_file(name, sizeof name, n);
        if (c->host->write_checkpoint(c->ctx, name) != RN_OK) return RN_ERR;
        if (drop > 0 && drop != n) delete_epoch_file(c, drop);
    }
    return RN_CONTINUE;
}

static size_t ck_state_size(void *self)
{
    checkpoint *c = self;
    return sizeof c->st + (size_t)c->keep * sizeof *c->kept;
}

static int ck_state_save(void *self, void *buf, size_t size)
{
    checkpoint *c = self;
    if (size != ck_state_size(c)) {
        c->host->set_error(c->ctx, "state_save: expected a buffer of %zu bytes, got %zu",
                           ck_state_size(c), size);
        return RN_ERR;
    }
    memset(buf, 0, size);
    memcpy(buf, &c->st, sizeof c->st);
    memcpy((char *)buf + sizeof c->st, c->kept, (size_t)c->st.n_kept * sizeof *c->kept);
    return RN_OK;
}

/* A state saved with another `keep` is taken too: the newest files are kept, the older ones
 * deleted now. */
static int ck_state_load(void *self, const void *buf, size_t size)
{
    checkpoint *c = self;
    if (cb_header_check(c->host, c->ctx, buf, size, sizeof c->st, CK_ID, CK_STATE_VERSION))
        return RN_ERR;
    ck_state st;
    memcpy(&st, buf, sizeof st);
    size_t slots = (size - sizeof st) / sizeof(int64_t);
    if ((size - sizeof st) % sizeof(int64_t) != 0 || st.n_kept < 0 ||
        (uint64_t)st.n_kept > slots || st.epochs_done < 0) {
        c->host->set_error(c->ctx, "state_load: expected a state with at most %zu kept files in "
                           "%zu bytes, got %lld kept files", slots, size, (long long)st.n_kept);
        return RN_ERR;
    }
    const char *list = (const char *)buf + sizeof st;
    int64_t skip = st.n_kept > c->keep ? st.n_kept - c->keep : 0;
    for (int64_t i = 0; i < skip; i++) {
        int64_t old;
        memcpy(&old, list + (size_t)i * sizeof old, sizeof old);
        delete_epoch_file(c, old);
    }
    c->st = st;
    c->st.n_kept = st.n_kept - skip;
    memcpy(c->kept, list + (size_t)skip * sizeof *c->kept, (size_t)c->st.n_kept * sizeof *c->kept);
    return RN_OK;
}

static const rn_callback_api ck_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_epoch_end = ck_epoch_end,
    .state_size = ck_state_size,
    .state_save = ck_state_save,
    .state_load = ck_state_load,
};

static const rn_plugin ck_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = CK_ID,
    .version = "1.0.0",
    .summary = "ModelCheckpoint: best.safetensors, last.safetensors and the newest epoch files",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = ck_settings,
    .n_settings = sizeof ck_settings / sizeof ck_settings[0],
    .create = ck_create,
    .destroy = ck_destroy,
    .api = &ck_api,
};

static const rn_plugin *const ck_plugins[] = {&ck_plugin};

static const rn_library ck_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = ck_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return cb_host_ok(host) ? &ck_library : NULL;
}
