/* The plugin registry: scans the search path, checks each library's ABI, finds plugins by id. */
#include "plugin_ctx.h"

#include <dirent.h>
#include <stddef.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rn_entry {
    const rn_plugin *plugin;
    char *path;
} rn_entry;

struct rn_registry {
    void **handles;
    size_t n_handles;
    rn_entry *entries;
    size_t n_entries;
};

/* ---- scanning ------------------------------------------------------------------------------ */

/* The smallest api a library may hand us: up to the last function ABI 1.0 requires. Fields
 * appended later are read only when the library's struct_size covers them. */
#define RN_API_MIN(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

static size_t api_size_for(rn_plugin_kind kind)
{
    switch (kind) {
    case RN_KIND_OPTIMIZER: return RN_API_MIN(rn_optimizer_api, step);
    case RN_KIND_SCHEDULER: return RN_API_MIN(rn_scheduler_api, values);
    case RN_KIND_AUGMENT: return RN_API_MIN(rn_augment_api, apply);
    case RN_KIND_CALLBACK: return RN_API_MIN(rn_callback_api, on_run_end);
    }
    return 0;
}

/* The first field of every kind's api is its struct_size; a smaller one than this build knows is
 * an older minor version that lacks the functions we call. */
static int check_plugin(const rn_plugin *p, const char *path, char *err, size_t errlen)
{
    if (!p || p->struct_size < sizeof(rn_plugin)) {
        snprintf(err, errlen, "%s: plugin descriptor too small (struct_size %zu, expected %zu)",
                 path, p ? p->struct_size : 0, sizeof(rn_plugin));
        return -1;
    }
    if (!p->id || !p->id[0]) {
        snprintf(err, errlen, "%s: a plugin has no id", path);
        return -1;
    }
    size_t need = api_size_for(p->kind);
    if (!need) {
        snprintf(err, errlen, "%s: plugin \"%s\" has unknown kind %d", path, p->id, (int)p->kind);
        return -1;
    }
    if (!p->create || !p->destroy || !p->api || *(const size_t *)p->api < need) {
        snprintf(err, errlen, "%s: plugin \"%s\" lacks create/destroy or its %s api is incomplete",
                 path, p->id, rn_kind_name(p->kind));
        return -1;
    }
    if (p->kind == RN_KIND_OPTIMIZER && (p->devices & RN_DEVICE_CUDA) &&
        !rn_optimizer_device_update((const rn_optimizer_api *)p->api)) {
        /* On a GPU the host runs the step from device_update; step() cannot reach the tensors. */
        snprintf(err, errlen, "%s: optimizer \"%s\" declares the cuda device but has no "
                 "device_update (plugin ABI 1.2)", path, p->id);
        return -1;
    }
    if (p->kind == RN_KIND_AUGMENT && (p->devices & RN_DEVICE_CUDA)) {
        const rn_augment_api *api = p->api;
        if (api->struct_size < offsetof(rn_augment_api, device_plan) + sizeof api->device_plan ||
            !api->device_plan) {
            /* On a GPU the batch is in device memory: the host runs the plugin's device plan. */
            snprintf(err, errlen, "%s: augment \"%s\" declares the cuda device but has no "
                     "device_plan (plugin ABI 1.2)", path, p->id);
            return -1;
        }
    }
    if (p->kind == RN_KIND_CALLBACK) {
        /* Checkpointed state comes as a set: a size without a loader (or the reverse) would
         * write state that can never be read back, or read state that was never written. */
        const rn_callback_api *api = p->api;
        int has = (rn_callback_hook(api, state_size) != NULL) +
                  (rn_callback_hook(api, state_save) != NULL) +
                  (rn_callback_hook(api, state_load) != NULL);
        if (has != 0 && has != 3) {
            snprintf(err, errlen, "%s: callback \"%s\" has only some of state_size, state_save "
                     "and state_load (expected all three or none)", path, p->id);
            return -1;
        }
    }
    if (p->n_settings && !p->settings) {
        snprintf(err, errlen, "%s: plugin \"%s\" declares %zu settings but no table", path, p->id,
                 p->n_settings);
        return -1;
    }
    for (size_t i = 0; i < p->n_settings; i++) {
        const rn_setting *s = &p->settings[i];
        if (!s->name || s->type < RN_SETTING_NUMBER || s->type > RN_SETTING_NUMBERS) {
            snprintf(err, errlen, "%s: plugin \"%s\" setting %zu is malformed", path, p->id, i);
            return -1;
        }
        double nums[RN_MAX_SETTING_NUMBERS];
        if (s->type == RN_SETTING_NUMBERS && s->default_string &&
            !rn_parse_numbers(s->default_string, nums, RN_MAX_SETTING_NUMBERS)) {
            snprintf(err, errlen, "%s: plugin \"%s\" setting \"%s\" has default \"%s\" (expected "
                     "1 to %d numbers separated by commas, or NULL for a required setting)", path,
                     p->id, s->name, s->default_string, RN_MAX_SETTING_NUMBERS);
            return -1;
        }
    }
    return 0;
}

static int add_library(rn_registry *r, const char *path, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "%s: cannot load plugin: %s", path, dlerror());
        return -1;
    }
    void **handles = realloc(r->handles, (r->n_handles + 1) * sizeof *handles);
    if (!handles) {
        dlclose(h);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    r->handles = handles;
    r->handles[r->n_handles++] = h;

    rn_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, "rn_plugin_entry");
    if (!entry) {
        snprintf(err, errlen, "%s: no rn_plugin_entry symbol (not a runner plugin?)", path);
        return -1;
    }
    const rn_library *lib = entry(rn_host_table());
    if (!lib) {
        snprintf(err, errlen, "%s: the plugin refused this runner's ABI %d.%d", path,
                 RN_ABI_MAJOR, RN_ABI_MINOR);
        return -1;
    }
    if (lib->abi_major != RN_ABI_MAJOR) {
        snprintf(err, errlen, "%s: plugin ABI major %u, this runner speaks %d (rebuild it against "
                 "this runner's include/runner/plugin.h)", path, lib->abi_major, RN_ABI_MAJOR);
        return -1;
    }
    if (lib->struct_size < sizeof(rn_library)) {
        snprintf(err, errlen, "%s: library descriptor too small (struct_size %zu, expected %zu)",
                 path, lib->struct_size, sizeof(rn_library));
        return -1;
    }
    if (!lib->build_signature || strcmp(lib->build_signature, RN_BUILD_SIGNATURE_CPU) != 0) {
        snprintf(err, errlen, "%s: built for \"%s\", this runner is \"%s\"", path,
                 lib->build_signature ? lib->build_signature : "(none)", RN_BUILD_SIGNATURE_CPU);
        return -1;
    }
    for (size_t i = 0; i < lib->n_plugins; i++) {
        const rn_plugin *p = lib->plugins[i];
        if (check_plugin(p, path, err, errlen)) return -1;
        for (size_t j = 0; j < r->n_entries; j++) {
            if (strcmp(r->entries[j].plugin->id, p->id) == 0) {
                snprintf(err, errlen, "%s: duplicate plugin id \"%s\" (already in %s)", path,
                         p->id, r->entries[j].path);
                return -1;
            }
        }
        rn_entry *entries = realloc(r->entries, (r->n_entries + 1) * sizeof *entries);
        if (!entries) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        r->entries = entries;
        r->entries[r->n_entries].plugin = p;
        r->entries[r->n_entries].path = strdup(path);
        r->n_entries++;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const rn_entry *x = a, *y = b;
    if (x->plugin->kind != y->plugin->kind) return (int)x->plugin->kind - (int)y->plugin->kind;
    return strcmp(x->plugin->id, y->plugin->id);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Scans one directory, in name order so errors and ids are reported deterministically. */
static int scan_dir(rn_registry *r, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return 0; /* a missing directory on the search path is not an error */
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".so")) continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown) { rc = -1; snprintf(err, errlen, "%s: out of memory", dir); break; }
        names = grown;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = add_library(r, path, err, errlen);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int rn_registry_scan(rn_registry **out, const char *const *dirs, size_t n_dirs, char *err,
                     size_t errlen)
{
    rn_registry *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n_dirs; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        if (scan_dir(r, dirs[i], err, errlen)) {
            rn_registry_free(r);
            return -1;
        }
    }
    if (r->n_entries) qsort(r->entries, r->n_entries, sizeof *r->entries, cmp_entry);
    *out = r;
    return 0;
}

void rn_registry_free(rn_registry *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_entries; i++) free(r->entries[i].path);
    free(r->entries);
    /* Unload in reverse order of loading. */
    for (size_t i = r->n_handles; i-- > 0;) dlclose(r->handles[i]);
    free(r->handles);
    free(r);
}

size_t rn_registry_count(const rn_registry *r) { return r->n_entries; }

const rn_plugin *rn_registry_at(const rn_registry *r, size_t i, const char **path)
{
    if (i >= r->n_entries) return NULL;
    if (path) *path = r->entries[i].path;
    return r->entries[i].plugin;
}

const rn_plugin *rn_registry_find(const rn_registry *r, rn_plugin_kind kind, const char *id,
                                  const char *where, const char **path, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->n_entries; i++) {
        const rn_plugin *p = r->entries[i].plugin;
        if (p->kind == kind && strcmp(p->id, id) == 0) {
            if (path) *path = r->entries[i].path;
            return p;
        }
    }
    int off = snprintf(err, errlen, "%s: unknown %s \"%s\" (available:", where, rn_kind_name(kind),
                       id);
    int any = 0;
    for (size_t i = 0; i < r->n_entries && off > 0 && (size_t)off < errlen; i++) {
        if (r->entries[i].plugin->kind != kind) continue;
        off += snprintf(err + off, errlen - (size_t)off, "%s %s", any ? "," : "",
                        r->entries[i].plugin->id);
        any = 1;
    }
    if (off > 0 && (size_t)off < errlen)
        snprintf(err + off, errlen - (size_t)off, "%s)", any ? "" : " none");
    return NULL;
}
