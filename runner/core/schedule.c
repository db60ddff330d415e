/* Stage schedules: one scheduler or a chain of phases (see schedule.h). */
#include "schedule.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_chain(const rn_value *spec)
{
    return spec && spec->type == RN_V_TABLE && spec->n_items >= 1 &&
           spec->items[0]->type == RN_V_TABLE;
}

/* Takes the chain's own keys off a copy of the phase spec and makes the plugin instance. */
static int make_phase(rn_phase *ph, const rn_value *spec, int last, const rn_registry *reg,
                      const rn_run_view *view, uint64_t slot, char *err, size_t errlen)
{
    ph->path = spec->path;
    ph->epochs = NAN;
    ph->steps = -1;
    if (spec->type != RN_V_TABLE || spec->n_items < 1 || spec->items[0]->type != RN_V_STRING)
        return rn_value_expected(spec, "a scheduler like { \"cosine\", epochs = 2 }", err, errlen);
    if (rn_get_number(spec, "epochs", 0, NAN, 1e-9, 1e9, &ph->epochs, err, errlen) ||
        rn_get_int(spec, "steps", 0, -1, 1, INT64_MAX, &ph->steps, err, errlen) ||
        rn_get_bool(spec, "multiply", 0, 0, &ph->multiply, err, errlen))
        return -1;
    if (!isnan(ph->epochs) && ph->steps >= 0) {
        snprintf(err, errlen, "%s: give the phase epochs or steps, not both", spec->path);
        return -1;
    }
    if (ph->multiply && (!isnan(ph->epochs) || ph->steps >= 0)) {
        snprintf(err, errlen, "%s: a multiply phase runs over the whole stage; it takes no "
                 "epochs or steps", spec->path);
        return -1;
    }
    (void)last;
    rn_value *plugin = rn_value_clone(spec);
    if (!plugin) {
        snprintf(err, errlen, "%s: out of memory", spec->path);
        return -1;
    }
    static const char *const own[] = {"epochs=nil", "steps=nil", "multiply=nil"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) rn_value_set(plugin, own[i], err, errlen);
    int rc = rn_instance_create(&ph->inst, reg, RN_KIND_SCHEDULER, plugin, view, slot, err, errlen);
    rn_value_free(plugin);
    return rc;
}

int rn_schedule_create(rn_schedule *s, const rn_value *spec, const rn_registry *reg,
                       const rn_run_view *view, uint64_t slot, char *err, size_t errlen)
{
    static const rn_value constant = {.type = RN_V_STRING, .path = "schedule", .s = "constant"};
    memset(s, 0, sizeof *s);
    size_t n = is_chain(spec) ? spec->n_items : 1;
    s->phases = calloc(n, sizeof *s->phases);
    if (!s->phases) {
        snprintf(err, errlen, "schedule: out of memory");
        return -1;
    }
    if (!is_chain(spec)) {
        s->n = 1;
        s->phases[0].epochs = NAN;
        s->phases[0].steps = -1;
        s->phases[0].path = spec ? spec->path : "schedule";
        return rn_instance_create(&s->phases[0].inst, reg, RN_KIND_SCHEDULER,
                                  spec ? spec : &constant, view, slot, err, errlen);
    }
    if (spec->n_fields)
        return rn_value_expected(spec->fields[0], "a list of schedulers only", err, errlen);
    int sequential = 0;
    for (size_t i = 0; i < n; i++) {
        s->n = (int)i + 1;
        if (make_phase(&s->phases[i], spec->items[i], i + 1 == n, reg, view, slot * 64 + i, err,
                       errlen))
            return -1;
        sequential += !s->phases[i].multiply;
    }
    if (!sequential) {
        snprintf(err, errlen, "%s: every phase multiplies; one needs to set the lr", spec->path);
        return -1;
    }
    return 0;
}

void rn_schedule_free(rn_schedule *s)
{
    for (int i = 0; s->phases && i < s->n; i++) rn_instance_destroy(&s->phases[i].inst);
    free(s->phases);
    memset(s, 0, sizeof *s);
}

static int call(const rn_phase *ph, const rn_sched_at *at, rn_sched_values *v, char *err,
                size_t errlen)
{
    const rn_scheduler_api *api = ph->inst.plugin->api;
    if (api->values(ph->inst.self, at, v) == RN_OK) return 0;
    snprintf(err, errlen, "%s: %s", ph->path, rn_instance_error(&ph->inst));
    return -1;
}

int rn_schedule_values(const rn_schedule *s, const rn_sched_at *at, rn_sched_values *v,
                       char *err, size_t errlen)
{
    const rn_sched_values base = *v;
    /* The sequential phases tile the stage: each but the last has its length, the last runs to
     * the end. Checked at every call (it is cheap), so a dry run refuses a chain that does not
     * fit before training. */
    int last = -1;
    for (int i = 0; i < s->n; i++)
        if (!s->phases[i].multiply) last = i;
    int64_t start = 0, here = -1, here_start = 0, here_len = 0, last_start = 0;
    for (int i = 0; i <= last; i++) {
        const rn_phase *p = &s->phases[i];
        if (p->multiply) continue;
        int64_t len = i == last ? at->total_steps - start
                    : p->steps >= 0 ? p->steps
                    : !isnan(p->epochs) ? llround(p->epochs * (double)at->steps_per_epoch)
                    : -1;
        if (len < 0) {
            snprintf(err, errlen, "%s: give this phase its length (epochs = n or steps = n); only "
                     "the last phase runs to the end of the stage", p->path);
            return -1;
        }
        if (len < 1 || (i < last && start + len >= at->total_steps)) {
            snprintf(err, errlen, "%s: the phases before the last take %ld of the stage's %ld "
                     "steps, leaving the last none", p->path, (long)(start + len),
                     (long)at->total_steps);
            return -1;
        }
        if (i == last) last_start = start;
        if (here < 0 && at->step < start + len) {
            here = i;
            here_start = start;
            here_len = len;
        }
        start += len;
    }
    if (here < 0) { /* at or past the stage's end: the last phase carries on */
        here = last;
        here_start = last_start;
        here_len = at->total_steps - last_start;
    }
    const rn_phase *ph = &s->phases[here];
    rn_sched_at sub = *at;
    sub.step = at->step - here_start;
    sub.total_steps = here_len;
    sub.epoch = sub.step / (at->steps_per_epoch > 0 ? at->steps_per_epoch : 1);
    if (call(ph, s->n == 1 ? at : &sub, v, err, errlen)) return -1;
    for (int i = 0; i < s->n; i++) {
        if (!s->phases[i].multiply) continue;
        rn_sched_values m = base;
        if (call(&s->phases[i], at, &m, err, errlen)) return -1;
        if (base.base_lr != 0) v->lr *= m.lr / base.base_lr;
    }
    return 0;
}

int rn_schedule_phase_counts(const rn_phase *ph)
{
    const rn_scheduler_api *api = ph->inst.plugin->api;
    if (api->struct_size < offsetof(rn_scheduler_api, counts) + sizeof api->counts || !api->counts)
        return RN_COUNTS_STEPS;
    return api->counts(ph->inst.self) == RN_COUNTS_EPOCHS ? RN_COUNTS_EPOCHS : RN_COUNTS_STEPS;
}

const char *rn_schedule_describe(const rn_schedule *s, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s (per %s)", i == 0 ? ""
                                : s->phases[i].multiply ? " x " : " -> ",
                                s->phases[i].inst.plugin->id,
                                rn_schedule_phase_counts(&s->phases[i]) == RN_COUNTS_EPOCHS
                                    ? "epoch" : "step");
    return buf;
}
