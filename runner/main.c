/* runner: the command line. Only this file decides to exit. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "lua_callback.h"
#include "model_print.h"
#include "plan.h"
#include "plugin_host.h"
#include "resume.h"
#include "run_files.h"
#include "safetensors.h"
#include "sandbox.h"
#include "schedule_plan.h"
#include "train.h"

#ifndef RN_VERSION
#define RN_VERSION "0.0.0"
#endif

#define ERRLEN 1024
#define MAX_DIRS 64

static const char usage[] =
    "usage: runner RECIPE.lua [--out DIR] [--seed N] [--set key.path=value ...]\n"
    "                         [--device cpu|cuda|auto] [--dry-run]\n"
    "       runner RECIPE.lua --evaluate WEIGHTS.safetensors [--device D] [--set ...]\n"
    "       runner --resume DIR [--force]\n"
    "       runner plugins [ID]     list the plugins found, or one plugin's settings\n"
    "       runner --help | --version\n"
    "\n"
    "Trains the model a Lua recipe describes and writes a run directory (default\n"
    "runs/<recipe>-<time>): recipe.lua, provenance.json, metrics.csv, summary.json,\n"
    "model.safetensors.\n"
    "\n"
    "  --out DIR          run directory (must not already hold a run)\n"
    "  --seed N           overrides the recipe's seed\n"
    "  --set k.path=v     overrides one recipe value (repeatable), e.g. --set optimizer.lr=0.1\n"
    "  --device D         cpu, cuda or auto (overrides the recipe's device)\n"
    "  --dry-run          check everything, print the model (layers, shapes, parameters,\n"
    "                     FLOPs, parameter groups) and stop without writing anything\n"
    "  --evaluate W       no training: load the weights W (a run's model.safetensors) into\n"
    "                     the recipe's model and print its loss and accuracy on the\n"
    "                     validation and test sets, with images/s; writes nothing\n"
    "  --resume DIR       continue the run in DIR from its checkpoint.safetensors (written at\n"
    "                     the end and on Ctrl-C), exactly as if it had not stopped; refused\n"
    "                     when the recipe changed since, unless --force\n"
    "\n"
    "Plugins are searched in the built-in plugin dir, then each dir of RUNNER_PLUGIN_PATH\n"
    "(colon-separated), then the recipe's own plugins/ dir. A recipe gets 64 MiB, 50 million\n"
    "Lua instructions and RUNNER_RECIPE_SECONDS (default 30) of wall time to evaluate.\n";

/* Ctrl-C. No compute thread is ever interrupted by a signal (one landing inside oneDNN's AVX-512
 * kernels corrupted the heap now and then on this VM): SIGINT stays blocked in every thread and
 * one thread waits for it with sigwait. During training the first Ctrl-C asks the loop to stop
 * after the step in flight; before training, or a second time, it ends the process. */
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t training;

static void *sigint_thread(void *arg)
{
    const sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0) continue;
        if (training && !stop_requested) {
            stop_requested = 1;
            continue;
        }
        static const char msg[] = "runner: interrupted\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)n;
        _exit(130);
    }
    return NULL;
}

/* The instruction budget cannot see time spent inside one C call (a pathological string pattern
 * in string.find runs for hours inside the C matcher), so evaluation also gets a wall-clock limit.
 * Nothing has been written yet when it fires, so the handler may end the process. */
#define RECIPE_SECONDS 30 /* default; RUNNER_RECIPE_SECONDS overrides */
static char alarm_message[512];

static void on_alarm(int sig)
{
    (void)sig;
    ssize_t n = write(STDERR_FILENO, alarm_message, strlen(alarm_message));
    (void)n;
    _exit(1);
}


static int die(const char *msg, int code)
{
    fprintf(stderr, "runner: %s\n", msg);
    return code;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Directory of the running executable. */
static void exe_dir(char *out, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    if (n <= 0) {
        snprintf(out, len, ".");
        return;
    }
    out[n] = 0;
    char *slash = strrchr(out, '/');
    if (slash) *slash = 0;
}

/* bin/runner -> lib/runner/plugins, in the build tree and once installed alike. */
static void builtin_plugin_dir(char *out, size_t len)
{
    char dir[PATH_MAX - 32];
    exe_dir(dir, sizeof dir);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/../lib/runner/plugins", dir);
    if (!realpath(path, out)) snprintf(out, len, "%s", path);
    (void)len; /* realpath writes at most PATH_MAX bytes; callers pass PATH_MAX */
}

/* bin/runner -> lib/runner/backends (RUNNER_BACKEND_DIR overrides it). */
static void backend_dir(char *out, size_t len)
{
    const char *env = getenv("RUNNER_BACKEND_DIR");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return;
    }
    char dir[PATH_MAX - 32];
    exe_dir(dir, sizeof dir);
    snprintf(out, len, "%s/../lib/runner/backends", dir);
}

static void lib_dir(char *out, size_t len)
{
    const char *env = getenv("RUNNER_LIB_DIR");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return;
    }
#ifdef RN_SOURCE_RECIPES_DIR
    if (is_dir(RN_SOURCE_RECIPES_DIR)) {
        snprintf(out, len, "%s", RN_SOURCE_RECIPES_DIR);
        return;
    }
#endif
    char dir[PATH_MAX - 32];
    exe_dir(dir, sizeof dir);
    snprintf(out, len, "%s/../share/runner/recipes", dir);
}

/* The search path: built-in dir, RUNNER_PLUGIN_PATH entries, the recipe's plugins/ dir. */
static size_t plugin_dirs(char storage[MAX_DIRS][PATH_MAX], const char *dirs[MAX_DIRS],
                          const char *recipe_dir)
{
    size_t n = 0;
    builtin_plugin_dir(storage[n], PATH_MAX);
    dirs[n] = storage[n];
    n++;
    const char *env = getenv("RUNNER_PLUGIN_PATH");
    while (env && *env && n < MAX_DIRS - 1) {
        const char *colon = strchr(env, ':');
        size_t len = colon ? (size_t)(colon - env) : strlen(env);
        if (len && len < PATH_MAX) {
            memcpy(storage[n], env, len);
            storage[n][len] = 0;
            dirs[n] = storage[n];
            n++;
        }
        env = colon ? colon + 1 : NULL;
    }
    if (recipe_dir) {
        snprintf(storage[n], PATH_MAX, "%s/plugins", recipe_dir);
        dirs[n] = storage[n];
        n++;
    }
    return n;
}

static const char *setting_type(rn_setting_type t)
{
    switch (t) {
    case RN_SETTING_NUMBER: return "number";
    case RN_SETTING_INT: return "integer";
    case RN_SETTING_BOOL: return "boolean";
    case RN_SETTING_STRING: return "string";
    case RN_SETTING_NUMBERS: return "numbers";
    }
    return "?";
}

static void print_setting(const rn_setting *s)
{
    char def[64], range[96] = "";
    if (s->type == RN_SETTING_STRING)
        snprintf(def, sizeof def, "%s%s%s", s->default_string ? "\"" : "",
                 s->default_string ? s->default_string : "(required)",
                 s->default_string ? "\"" : "");
    else if (s->type == RN_SETTING_NUMBERS)
        snprintf(def, sizeof def, "%s%s%s", s->default_string ? "{" : "",
                 s->default_string ? s->default_string : "(required)",
                 s->default_string ? "}" : "");
    else if (s->type == RN_SETTING_BOOL)
        snprintf(def, sizeof def, "%s", s->default_number != 0 ? "true" : "false");
    else
        snprintf(def, sizeof def, "%g", s->default_number);
    if (s->flags & RN_SETTING_REQUIRED) snprintf(def, sizeof def, "(required)");
    if (s->type == RN_SETTING_STRING && s->choices)
        snprintf(range, sizeof range, "one of %s", s->choices);
    else if (s->type != RN_SETTING_STRING && s->type != RN_SETTING_BOOL && s->min <= s->max)
        snprintf(range, sizeof range, "%c%g, %g%c", s->flags & RN_SETTING_MIN_EXCLUSIVE ? '(' : '[',
                 s->min, s->max, s->flags & RN_SETTING_MAX_EXCLUSIVE ? ')' : ']');
    printf("  %-20s %-8s default %-12s %-18s %s\n", s->name, setting_type(s->type), def, range,
           s->doc ? s->doc : "");
}

static int cmd_plugins(const char *id)
{
    char storage[MAX_DIRS][PATH_MAX];
    const char *dirs[MAX_DIRS];
    size_t n = plugin_dirs(storage, dirs, NULL);
    char err[ERRLEN];
    rn_registry *reg;
    if (rn_registry_scan(&reg, dirs, n, err, sizeof err)) return die(err, 1);
    int found = 0;
    for (size_t i = 0; i < rn_registry_count(reg); i++) {
        const char *path;
        const rn_plugin *p = rn_registry_at(reg, i, &path);
        if (id && strcmp(id, p->id) != 0) continue;
        found = 1;
        if (!id) {
            printf("%-9s  %-22s %-7s %s\n", rn_kind_name(p->kind), p->id, p->version, p->summary);
            continue;
        }
        printf("%s %s %s: %s\n  file: %s\n  devices:%s%s\n  settings:%s\n", rn_kind_name(p->kind),
               p->id, p->version, p->summary, path, p->devices & RN_DEVICE_CPU ? " cpu" : "",
               p->devices & RN_DEVICE_CUDA ? " cuda" : "", p->n_settings ? "" : " none");
        for (size_t k = 0; k < p->n_settings; k++) print_setting(&p->settings[k]);
    }
    if (id && !found) {
        char msg[ERRLEN];
        int off = snprintf(msg, sizeof msg, "plugins: no plugin \"%s\" (available:", id);
        for (size_t i = 0; i < rn_registry_count(reg) && off < (int)sizeof msg; i++)
            off += snprintf(msg + off, sizeof msg - (size_t)off, " %s",
                            rn_registry_at(reg, i, NULL)->id);
        if (off < (int)sizeof msg) snprintf(msg + off, sizeof msg - (size_t)off, ")");
        rn_registry_free(reg);
        return die(msg, 1);
    }
    if (!id && !rn_registry_count(reg)) printf("no plugins found in %s\n", dirs[0]);
    rn_registry_free(reg);
    return 0;
}

typedef struct options {
    const char *recipe, *out, *seed, *device, *resume, *evaluate;
    int dry_run, force;
    const char **sets;
    int n_sets;
} options;

static int parse_args(int argc, char **argv, options *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->sets = calloc((size_t)argc, sizeof *o->sets);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--out") == 0) slot = &o->out;
        else if (strcmp(a, "--seed") == 0) slot = &o->seed;
        else if (strcmp(a, "--device") == 0) slot = &o->device;
        else if (strcmp(a, "--resume") == 0) slot = &o->resume;
        else if (strcmp(a, "--evaluate") == 0) slot = &o->evaluate;
        else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "--force") == 0) {
            *(a[2] == 'd' ? &o->dry_run : &o->force) = 1;
            continue;
        }
        else if (strcmp(a, "--set") == 0) slot = &o->sets[o->n_sets++];
        else if (a[0] == '-' && a[1]) {
            snprintf(err, errlen, "unknown option %s (see runner --help)", a);
            return -1;
        } else if (o->recipe) {
            snprintf(err, errlen, "one recipe at a time (got %s and %s)", o->recipe, a);
            return -1;
        } else {
            o->recipe = a;
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value (see runner --help)", a);
            return -1;
        }
        *slot = argv[++i];
    }
    if (o->resume) {
        if (o->recipe || o->out || o->seed || o->device || o->n_sets || o->dry_run ||
            o->evaluate) {
            snprintf(err, errlen, "--resume continues a run with its own recipe, overrides and "
                     "directory: give it no recipe, --out, --seed, --device, --set, --dry-run "
                     "or --evaluate");
            return -1;
        }
        return 0;
    }
    if (o->force) {
        snprintf(err, errlen, "--force goes with --resume");
        return -1;
    }
    if (o->evaluate && (o->out || o->dry_run)) {
        snprintf(err, errlen, "--evaluate writes nothing and trains nothing: give it no %s",
                 o->out ? "--out" : "--dry-run");
        return -1;
    }
    if (!o->recipe) {
        snprintf(err, errlen, "no recipe given (see runner --help)");
        return -1;
    }
    if (o->seed) {
        char *end;
        errno = 0;
        long long s = strtoll(o->seed, &end, 10);
        if (errno || *end || s < 0) {
            snprintf(err, errlen, "--seed: expected a non-negative integer, got \"%s\"", o->seed);
            return -1;
        }
    }
    if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda") &&
        strcmp(o->device, "auto")) {
        snprintf(err, errlen, "--device: expected cpu, cuda or auto, got \"%s\"", o->device);
        return -1;
    }
    return 0;
}

/* fp16 trains with loss scaling on a GPU only: one line, and nonzero, when the run trains on
 * the CPU, whether the recipe chose it, device auto found no GPU, or auto fell back to it
 * (checked after the fallback too, so fp16 never trains as fp32 unannounced). why: how the
 * CPU was reached, or "". */
static int fp16_on_cpu(const rn_plan *plan, const rn_device *dev, const char *why, char *err,
                       size_t errlen)
{
    if (plan->precision != RN_PRECISION_FP16 || dev->kind != RN_DEVICE_KIND_CPU) return 0;
    snprintf(err, errlen, "precision: \"fp16\" (with loss scaling) trains on a GPU only, and "
             "this run trains on the CPU%s; use precision = \"bf16\" on the CPU", why);
    return -1;
}

static char *default_out(const char *recipe)
{
    const char *base = strrchr(recipe, '/');
    base = base ? base + 1 : recipe;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".lua") == 0) len -= 4;
    char stamp[32];
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&t));
    size_t n = len + 48;
    char *s = malloc(n);
    snprintf(s, n, "runs/%.*s-%s", (int)len, base, stamp);
    return s;
}

static char *argv_line(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = calloc(1, n);
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* Evaluates a recipe in a fresh sandbox under the wall-clock limit and applies the overrides. */
static rn_value *eval_recipe(const char *path, const char *const *sets, int n_sets,
                             rn_sandbox **sb, char *err, size_t errlen)
{
    char libdir[PATH_MAX];
    lib_dir(libdir, sizeof libdir);
    *sb = rn_sandbox_new(libdir, NULL, err, errlen);
    const char *limit_env = getenv("RUNNER_RECIPE_SECONDS");
    int limit = limit_env && atoi(limit_env) > 0 ? atoi(limit_env) : RECIPE_SECONDS;
    snprintf(alarm_message, sizeof alarm_message, "runner: %s: evaluating the recipe took longer "
             "than %d s (a runaway string pattern?)\n", path, limit);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)limit);
    rn_value *root = *sb ? rn_sandbox_run_file(*sb, path, err, errlen) : NULL;
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    for (int i = 0; root && i < n_sets; i++) {
        if (rn_value_set(root, sets[i], err, errlen)) {
            rn_value_free(root);
            root = NULL;
        }
    }
    return root;
}

/* --resume DIR: the recipe the run started from, with its overrides, unless it changed since
 * (then only with --force) or is gone (then DIR/recipe.lua, as the run resolved it). */
static rn_value *resume_recipe(const options *o, rn_resume_info *info, rn_sandbox **sb,
                               char *changes, size_t clen, char *err, size_t errlen)
{
    changes[0] = 0;
    if (rn_resume_read(o->resume, info, err, errlen)) return NULL;
    char resolved[PATH_MAX + 16];
    snprintf(resolved, sizeof resolved, "%s/recipe.lua", o->resume);
    rn_sandbox *old_sb = NULL;
    rn_value *old = eval_recipe(resolved, NULL, 0, &old_sb, err, errlen);
    if (!old) {
        rn_sandbox_free(old_sb);
        return NULL;
    }
    if (access(info->recipe, R_OK) != 0) {
        printf("runner: %s is gone; continuing with %s\n", info->recipe, resolved);
        *sb = old_sb;
        return old;
    }
    rn_value *now = eval_recipe(info->recipe, (const char *const *)info->overrides,
                                info->n_overrides, sb, err, errlen);
    int n = now ? rn_value_diff(old, now, changes, clen, 4) : 0;
    rn_value_free(old);
    rn_sandbox_free(old_sb);
    if (now && n && !o->force) {
        snprintf(err, errlen, "%s: the recipe changed since the run began (%s); --force resumes "
                 "under the new recipe", o->resume, changes);
        rn_value_free(now);
        return NULL;
    }
    if (n) printf("runner: resuming under the changed recipe (--force): %s\n", changes);
    else changes[0] = 0;
    return now;
}

/* Everything that can be refused is checked before the run directory exists (or, resuming,
 * before anything in it is touched). */
static int cmd_train(int argc, char **argv)
{
    char err[ERRLEN] = "";
    options o;
    if (parse_args(argc, argv, &o, err, sizeof err)) {
        free(o.sets);
        return die(err, 2);
    }
    int code = 1;
    rn_sandbox *sb = NULL;
    rn_value *root = NULL;
    rn_resume_info info = {0};
    char changes[1024] = "";
    /* The overrides, as assignments, in the order they apply (provenance.json keeps them). */
    char seed_set[128], device_set[128];
    const char **overrides = calloc((size_t)o.n_sets + 3, sizeof *overrides);
    int n_overrides = 0;
    for (int i = 0; i < o.n_sets; i++) overrides[n_overrides++] = o.sets[i];
    if (o.seed) {
        snprintf(seed_set, sizeof seed_set, "seed=%s", o.seed);
        overrides[n_overrides++] = seed_set;
    }
    if (o.device) {
        snprintf(device_set, sizeof device_set, "device=\"%s\"", o.device);
        overrides[n_overrides++] = device_set;
    }
    if (o.resume) {
        root = resume_recipe(&o, &info, &sb, changes, sizeof changes, err, sizeof err);
        if (root) { /* relative paths in the recipe resolve against its own directory */
            o.recipe = info.recipe;
            o.out = o.resume;
        }
    } else {
        root = eval_recipe(o.recipe, overrides, n_overrides, &sb, err, sizeof err);
    }
    rn_plan plan = {0};
    rn_registry *reg = NULL;
    rn_run run = {0};
    char *out = NULL, *cmdline = NULL;
    int prepared = 0;
    if (!root) goto done;
    if (rn_lua_callback_check_tree(root, err, sizeof err) ||
        rn_plan_build(&plan, root, o.recipe, err, sizeof err))
        goto done;
    plan.sandbox = sb;

    char storage[MAX_DIRS][PATH_MAX];
    const char *dirs[MAX_DIRS];
    size_t nd = plugin_dirs(storage, dirs, plan.recipe_dir);
    if (rn_registry_scan(&reg, dirs, nd, err, sizeof err)) goto done;

    rn_device dev;
    char backends[PATH_MAX];
    backend_dir(backends, sizeof backends);
    if (rn_device_resolve(plan.device, backends, &dev, err, sizeof err)) {
        if (!o.dry_run || strcmp(plan.device, "cuda") != 0) goto done;
        /* A dry run checks a recipe meant for a GPU machine anywhere: its plugins must have
         * cuda variants, fp16 is allowed. */
        printf("%s; the dry run checks the recipe for cuda all the same\n", err);
        err[0] = 0;
        memset(&dev, 0, sizeof dev);
        dev.kind = RN_DEVICE_KIND_CUDA;
        snprintf(dev.name, sizeof dev.name, "cuda (not usable here)");
    }
    plan.train_device = dev.kind == RN_DEVICE_KIND_CUDA ? RN_DEVICE_CUDA : RN_DEVICE_CPU;
    if (fp16_on_cpu(&plan, &dev, dev.note[0] ? " (device auto found no GPU)" : "", err,
                    sizeof err))
        goto done;
    if (o.evaluate) { /* the recipe's own starting weights give way to the ones evaluated */
        free(plan.weights);
        plan.weights = strdup(o.evaluate);
        plan.weights_strict = 1;
        plan.weights_key = "--evaluate";
    }
    out = o.out ? strdup(o.out) : default_out(o.recipe);
    int prep = rn_run_prepare(&run, &plan, reg, out, isatty(STDERR_FILENO), err, sizeof err);
    if (prep && dev.kind == RN_DEVICE_KIND_CUDA && strcmp(plan.device, "auto") == 0) {
        /* auto on a GPU whose loop cannot serve this recipe (a plugin without a cuda variant,
         * a feature not wired yet): the CPU, saying why. A recipe that is wrong anyway fails
         * again below with its own error. */
        char why[sizeof dev.note - 96];
        snprintf(why, sizeof why, "%s", err);
        rn_run_free(&run);
        err[0] = 0;
        snprintf(dev.note, sizeof dev.note, "device auto: found %.60s, but %.380s; training on "
                 "the CPU", dev.name, why);
        dev.kind = RN_DEVICE_KIND_CPU;
        snprintf(dev.name, sizeof dev.name, "cpu");
        plan.train_device = RN_DEVICE_CPU;
        prep = fp16_on_cpu(&plan, &dev, " (device auto fell back to it)", err, sizeof err)
                   ? -1
                   : rn_run_prepare(&run, &plan, reg, out, isatty(STDERR_FILENO), err, sizeof err);
    }
    if (prep) goto done;
    prepared = 1;
    run.device = dev;
    if (dev.note[0]) printf("%s\n", dev.note);
    if (o.dry_run) {
        const char *name = "";
        rn_get_string(plan.model, "name", 0, "", &name, err, sizeof err);
        rn_model_print(stdout, &run.model, name, plan.groups, dev.kind == RN_DEVICE_KIND_CPU);
        char svg[PATH_MAX + 32];
        snprintf(svg, sizeof svg, "%s/schedule.svg", out);
        /* Only an explicit --out gets schedule.svg; otherwise a dry run writes nothing. */
        if ((o.out && rn_run_dir_create(out, err, sizeof err)) ||
            rn_schedule_plan(&run, stdout, o.out ? svg : NULL, err, sizeof err))
            goto done;
        printf("dry run: the recipe, its plugins, the data (%ld train / %ld test images) and the "
               "model check out; %s\n", (long)run.train.n, (long)run.test.n,
               o.out ? "the schedule is drawn in the --out directory" :
               "nothing was written (give --out DIR for schedule.svg)");
        code = 0;
        err[0] = 0;
        goto done;
    }

    if (o.evaluate) {
        printf("runner %s: evaluating %s with %s\n", RN_VERSION, o.evaluate, o.recipe);
        fflush(stdout);
        if (rn_run_evaluate_sets(&run, stdout, err, sizeof err)) goto done;
        code = 0;
        goto done;
    }

    cmdline = argv_line(argc, argv);
    char svg[PATH_MAX + 32];
    snprintf(svg, sizeof svg, "%s/schedule.svg", out);
    if (o.resume) {
        /* Everything is checked before the directory is touched: the checkpoint, then the
         * records of this resume. */
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
        if (rn_checkpoint_read(path, &run, err, sizeof err)) goto done;
        if (run.pos.stage >= plan.n_stages) {
            snprintf(err, sizeof err, "%s: the run finished (%ld epochs, %ld steps); there is "
                     "nothing to resume", out, (long)run.epochs_done, (long)run.global_step);
            goto done;
        }
        run.resuming = 1;
        run.view.resumed = 1;
        run.view.resumed_step = run.global_step;
        if ((changes[0] && rn_write_resolved_recipe(out, root, err, sizeof err)) ||
            rn_resume_record(out, cmdline, run.global_step, changes[0] ? changes : NULL, err,
                             sizeof err))
            goto done;
        printf("runner %s: resuming %s at stage %s, epoch %ld, step %ld of the run\n",
               RN_VERSION, out, plan.stages[run.pos.stage].name, (long)run.pos.epoch,
               (long)run.global_step);
    } else {
        if (rn_run_dir_create(out, err, sizeof err) ||
            rn_write_resolved_recipe(out, root, err, sizeof err) ||
            rn_write_provenance(out, &run, o.recipe, cmdline, overrides, n_overrides, err,
                                sizeof err) ||
            rn_schedule_plan(&run, NULL, svg, err, sizeof err))
            goto done;
        printf("runner %s: %s -> %s (%ld train / %ld test images, %ld parameters, %s)\n",
               RN_VERSION, o.recipe, out, (long)run.train.n, (long)run.test.n,
               (long)rn_model_param_count(&run.model), run.device.name);
    }
    fflush(stdout);

    training = 1;
    char train_err[ERRLEN] = "";
    int trc = rn_run_train(&run, &stop_requested, train_err, sizeof train_err);
    training = 0;
    const char *status = trc ? "failed" : run.interrupted ? "interrupted" : "completed";
    if (trc == 0) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        const char *meta[] = {"format", "pt", "runner_version", RN_VERSION};
        if (rn_safetensors_write(path, run.model.params, run.model.n_params, meta, 2, err,
                                 sizeof err))
            goto done;
        /* Everything needed to continue: weights, optimizer state, counters, metric history. */
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
        if (rn_checkpoint_write(path, &run, err, sizeof err)) goto done;
    }
    if (rn_write_summary(out, &run, status, trc ? train_err : NULL, err, sizeof err)) goto done;
    if (trc) {
        snprintf(err, sizeof err, "%s", train_err);
        goto done;
    }
    int fits = 0;
    for (int i = 0; i < plan.n_stages; i++) fits |= plan.stages[i].kind == RN_STAGE_FIT;
    if (!fits && run.lr_find) {
        printf("%s: LR finder in %.1f s (weights left as they were); run dir %s\n", status,
               run.wall_seconds, out);
    } else {
        double acc = NAN, loss = NAN, vacc = NAN;
        rn_metrics_get(&run.metrics, "test.acc", &acc);
        rn_metrics_get(&run.metrics, "test.loss", &loss);
        rn_metrics_get(&run.metrics, "val.acc", &vacc);
        printf("%s: %ld epochs in %.1f s, %.0f train images/s;", status, (long)run.epochs_done,
               run.wall_seconds,
               run.train_seconds > 0 ? run.train_images / run.train_seconds : 0.0);
        if (run.val.n) printf(" val.acc %.4f", vacc);
        if (plan.data.has_test) printf(" test.acc %.4f test.loss %.4f", acc, loss);
        printf("; run dir %s\n", out);
    }
    code = run.interrupted ? 130 : 0;
    err[0] = 0;
done:
    if (err[0]) die(err, 1);
    if (prepared || run.plan) rn_run_free(&run);
    rn_registry_free(reg);
    rn_plan_free(&plan);
    rn_value_free(root);
    rn_sandbox_free(sb);
    free(out);
    free(cmdline);
    free(o.sets);
    free(overrides);
    rn_resume_info_free(&info);
    return code;
}

int main(int argc, char **argv)
{
    /* Block SIGINT before any thread exists, so every thread inherits the mask (see sigint_thread). */
    static sigset_t intr;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    pthread_sigmask(SIG_BLOCK, &intr, NULL);
    pthread_t waiter;
    if (pthread_create(&waiter, NULL, sigint_thread, &intr) == 0) pthread_detach(waiter);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("runner %s (plugin ABI %d.%d, %s)\n", RN_VERSION, RN_ABI_MAJOR, RN_ABI_MINOR,
               RN_BUILD_SIGNATURE_CPU);
        return 0;
    }
    if (strcmp(argv[1], "plugins") == 0) {
        if (argc > 3) return die("usage: runner plugins [ID]", 2);
        return cmd_plugins(argc == 3 ? argv[2] : NULL);
    }
    return cmd_train(argc, argv);
}
