/* What the callbacks that act on the run (ABI 1.1) share: the host check in rn_plugin_entry, the
 * "mode" rule of a monitored metric, the unknown-monitor error, and the header of their
 * checkpointed state. Header-only (each plugin is its own .so against include/runner/plugin.h). */
#ifndef RN_CALLBACK_UTIL_H
#define RN_CALLBACK_UTIL_H

#include <runner/plugin.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Whether the host table has `field` (a host older than the header lacks the 1.1 functions). */
#define CB_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(rn_host, field) + sizeof((host)->field))

/* The entry's test: this ABI major, and a host with the 1.1 run actions. */
static inline int cb_host_ok(const rn_host *host)
{
    return host->abi_major == RN_ABI_MAJOR && CB_HOST_HAS(host, set_metric);
}

static inline int cb_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* mode "max" or "min"; "auto" is max for a name ending in "acc", "accuracy" or "f1" (an accuracy
 * or a score should rise), min for anything else (a loss should fall). */
static inline int cb_mode_is_max(const char *mode, const char *monitor)
{
    if (strcmp(mode, "max") == 0) return 1;
    if (strcmp(mode, "min") == 0) return 0;
    return cb_ends_with(monitor, "acc") || cb_ends_with(monitor, "accuracy") ||
           cb_ends_with(monitor, "f1");
}

/* Sets "monitor \"x\" is not a metric of this run (metrics: a, b, c)" and returns
 * RN_ERR_CONFIG. */
static inline int cb_unknown_monitor(const rn_host *host, rn_ctx *ctx, const char *monitor)
{
    char list[400];
    size_t off = 0, n = host->metric_count(ctx);
    snprintf(list, sizeof list, "none yet");
    for (size_t i = 0; i < n; i++) {
        const char *name;
        double value;
        if (!host->metric_at(ctx, i, &name, &value)) break;
        size_t need = strlen(name) + 2;
        if (off + need + 5 > sizeof list) {
            snprintf(list + off, sizeof list - off, "%s...", i ? ", " : "");
            break;
        }
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", name);
    }
    host->set_error(ctx, "monitor \"%s\" is not a metric of this run (metrics: %s)", monitor,
                    list);
    return RN_ERR_CONFIG;
}

/* The first bytes of every callback's checkpointed state: which plugin wrote it and in which
 * layout, so a state from another plugin or version is refused instead of misread. */
typedef struct cb_state_header {
    char tag[16];      /* the plugin id, NUL-padded */
    uint32_t version;  /* the layout's version */
    uint32_t reserved;
} cb_state_header;

static inline void cb_header_fill(cb_state_header *h, const char *id, uint32_t version)
{
    size_t n = strlen(id);
    memset(h, 0, sizeof *h);
    memcpy(h->tag, id, n < sizeof h->tag - 1 ? n : sizeof h->tag - 1);
    h->version = version;
}

/* Checks a state handed to state_load: at least `min_size` bytes starting with our header. */
static inline int cb_header_check(const rn_host *host, rn_ctx *ctx, const void *buf, size_t size,
                                  size_t min_size, const char *id, uint32_t version)
{
    cb_state_header h;
    if (size < min_size || size < sizeof h) {
        host->set_error(ctx, "state_load: expected a saved state of at least %zu bytes, got %zu",
                        min_size, size);
        return RN_ERR;
    }
    memcpy(&h, buf, sizeof h);
    h.tag[sizeof h.tag - 1] = 0;
    if (strncmp(h.tag, id, sizeof h.tag - 1) != 0 || h.version != version) {
        host->set_error(ctx, "state_load: expected the state of %s version %u, got \"%s\" "
                        "version %u", id, (unsigned)version, h.tag, (unsigned)h.version);
        return RN_ERR;
    }
    return RN_OK;
}

/* state_save of a state that is one plain struct of n bytes at st (its header filled). */
static inline int cb_state_save(const rn_host *host, rn_ctx *ctx, void *buf, size_t size,
                                const void *st, size_t n)
{
    if (size != n) {
        host->set_error(ctx, "state_save: expected a buffer of %zu bytes, got %zu", n, size);
        return RN_ERR;
    }
    memcpy(buf, st, n);
    return RN_OK;
}

/* state_load of such a state: our header, exactly n bytes, copied into st. */
static inline int cb_state_load(const rn_host *host, rn_ctx *ctx, const void *buf, size_t size,
                                void *st, size_t n, const char *id, uint32_t version)
{
    if (cb_header_check(host, ctx, buf, size, n, id, version)) return RN_ERR;
    if (size != n) {
        host->set_error(ctx, "state_load: expected %zu bytes, got %zu", n, size);
        return RN_ERR;
    }
    memcpy(st, buf, n);
    return RN_OK;
}

#endif
