/* progress — training progress for people.
 *
 * On a terminal (host->is_tty) a bar on stderr, redrawn in place with '\r' at most once per
 * refresh_s seconds and finished with a newline at each epoch's end:
 *   epoch 2/5 [#####.....] 234/469 loss 0.4123 lr 1.00e-02 1234 img/s eta 0:12
 * (eta is the rest of the epoch at the epoch's step rate so far). Otherwise (a log file, CI) one
 * line per epoch on stdout, flushed:
 *   stage fit epoch 2/5 train.loss 0.4123 test.loss 0.3810 test.acc 0.8612 1234 img/s 0:42 elapsed
 * test.loss / test.acc appear when the run has measured them.
 */
#include <runner/plugin.h>

#include <math.h>
#include <stdio.h>
#include <time.h>

#define BAR_WIDTH 20

typedef struct progress {
    const rn_host *host;
    rn_ctx *ctx;
    int tty;
    double refresh_s;
    double last_draw;   /* monotonic seconds of the last redraw; -inf before the first */
    double epoch_t0;    /* monotonic seconds when the current epoch began */
    int64_t epoch_step0; /* stage step at which the current epoch began */
    int open_line;      /* a bar is on screen without its newline */
} progress;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "m:ss" or "h:mm:ss". */
static void format_duration(char *buf, size_t len, double seconds)
{
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, len, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

static const rn_setting progress_settings[] = {
    {"refresh_s", RN_SETTING_NUMBER, 0.1, NULL, 0, 3600, NULL,
     "minimum seconds between redraws of the terminal bar", 0},
};

static int progress_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    progress *p = host->alloc(sizeof *p);
    if (!p) {
        host->set_error(ctx, "out of memory");
        return RN_ERR_NOMEM;
    }
    p->host = host;
    p->ctx = ctx;
    p->tty = host->is_tty(ctx);
    p->refresh_s = host->get_number(ctx, "refresh_s");
    p->last_draw = -INFINITY;
    p->epoch_t0 = now_s();
    *self = p;
    return RN_OK;
}

static void progress_destroy(void *self)
{
    progress *p = self;
    if (p) p->host->free(p);
}

static void start_epoch(progress *p, int64_t step)
{
    p->epoch_t0 = now_s();
    p->epoch_step0 = step;
    p->last_draw = -INFINITY;
}

static int progress_stage_begin(void *self, const rn_event *e)
{
    start_epoch(self, 0);
    return RN_CONTINUE;
}

static void draw_bar(progress *p, const rn_event *e, double t)
{
    int64_t spe = e->steps_per_epoch > 0 ? e->steps_per_epoch : 1;
    int64_t done = e->step - p->epoch_step0;
    if (done > spe) done = spe;
    if (done < 0) done = 0;
    char bar[BAR_WIDTH + 1];
    int filled = (int)(BAR_WIDTH * done / spe);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    double dt = t - p->epoch_t0;
    char eta[32];
    format_duration(eta, sizeof eta, done > 0 ? dt / (double)done * (double)(spe - done) : NAN);
    /* \033[K clears what a longer previous line left behind. */
    fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.4f lr %.2e %.0f img/s eta %s\033[K",
            (long long)e->epoch + 1, (long long)e->epochs, bar, (long long)done, (long long)spe,
            e->loss, e->lr, e->images_per_s, eta);
    fflush(stderr);
    p->open_line = 1;
    p->last_draw = t;
}

static int progress_step_end(void *self, const rn_event *e)
{
    progress *p = self;
    if (!p->tty) return RN_CONTINUE;
    double t = now_s();
    int last = e->steps_per_epoch > 0 && e->step - p->epoch_step0 >= e->steps_per_epoch;
    if (last || t - p->last_draw >= p->refresh_s) draw_bar(p, e, t);
    return RN_CONTINUE;
}

/* " test.loss 0.3810" when the metric exists and has been measured. */
static int append_metric(progress *p, char *buf, size_t len, const char *name)
{
    double v;
    if (!p->host->metric(p->ctx, name, &v) || isnan(v)) return 0;
    return snprintf(buf, len, " %s %.4f", name, v);
}

static int progress_epoch_end(void *self, const rn_event *e)
{
    progress *p = self;
    char tests[128] = "";
    int off = append_metric(p, tests, sizeof tests, "test.loss");
    append_metric(p, tests + off, sizeof tests - (size_t)off, "test.acc");
    char elapsed[32];
    format_duration(elapsed, sizeof elapsed, e->elapsed_s);
    if (p->tty) {
        if (!p->open_line) draw_bar(p, e, now_s()); /* the epoch's last step drew it already */
        fprintf(stderr, "%s %s elapsed\n", tests, elapsed);
        fflush(stderr);
        p->open_line = 0;
    } else {
        fprintf(stdout, "stage %s epoch %lld/%lld train.loss %.4f%s %.0f img/s %s elapsed\n",
                e->stage ? e->stage : "?", (long long)e->epoch + 1, (long long)e->epochs,
                e->loss, tests, e->images_per_s, elapsed);
        fflush(stdout);
    }
    start_epoch(p, e->step);
    return RN_CONTINUE;
}

static int progress_run_end(void *self, const rn_event *e)
{
    progress *p = self;
    if (p->open_line) { /* stopped mid-epoch: leave the terminal on a fresh line */
        fputc('\n', stderr);
        fflush(stderr);
        p->open_line = 0;
    }
    return RN_CONTINUE;
}

static const rn_callback_api progress_api = {
    .struct_size = sizeof(rn_callback_api),
    .on_stage_begin = progress_stage_begin,
    .on_step_end = progress_step_end,
    .on_epoch_end = progress_epoch_end,
    .on_stage_end = progress_run_end,
    .on_run_end = progress_run_end,
};

static const rn_plugin progress_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_CALLBACK,
    .id = "progress",
    .version = "1.0.0",
    .summary = "live progress bar on a terminal, one line per epoch otherwise",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = progress_settings,
    .n_settings = sizeof progress_settings / sizeof progress_settings[0],
    .create = progress_create,
    .destroy = progress_destroy,
    .api = &progress_api,
};

static const rn_plugin *const progress_plugins[] = {&progress_plugin};

static const rn_library progress_library = {
    .struct_size = sizeof(rn_library),
    .abi_major = RN_ABI_MAJOR,
    .abi_minor = RN_ABI_MINOR,
    .build_signature = RN_BUILD_SIGNATURE_CPU,
    .plugins = progress_plugins,
    .n_plugins = 1,
};

RN_EXPORT const rn_library *rn_plugin_entry(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR ? &progress_library : NULL;
}
