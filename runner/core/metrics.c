#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rn_metrics_set(rn_metrics *m, const char *name, double value)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->names[i], name) == 0) {
            m->values[i] = value;
            return 0;
        }
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        char **names = realloc(m->names, cap * sizeof *names);
        if (!names) return -1;
        m->names = names;
        double *values = realloc(m->values, cap * sizeof *values);
        if (!values) return -1;
        m->values = values;
        m->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return -1;
    m->names[m->n] = copy;
    m->values[m->n] = value;
    m->n++;
    return 0;
}

int rn_metrics_get(const rn_metrics *m, const char *name, double *value)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->names[i], name) == 0) {
            *value = m->values[i];
            return 1;
        }
    }
    return 0;
}

void rn_metrics_free(rn_metrics *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->values);
    free(m->history);
    free(m->row_n);
    memset(m, 0, sizeof *m);
}

/* Rows are stored with a stride of the metric count at the time; metrics only ever get added,
 * so a metric's index is the same in every row that has it. */
int rn_metrics_end_epoch(rn_metrics *m)
{
    size_t used = 0;
    for (size_t e = 0; e < m->epochs; e++) used += m->row_n[e];
    if (m->epochs == m->epochs_cap) {
        size_t cap = m->epochs_cap ? 2 * m->epochs_cap : 16;
        size_t *row_n = realloc(m->row_n, cap * sizeof *row_n);
        if (!row_n) return -1;
        m->row_n = row_n;
        m->epochs_cap = cap;
    }
    double *h = realloc(m->history, (used + m->n + 1) * sizeof *h);
    if (!h) return -1;
    m->history = h;
    memcpy(h + used, m->values, m->n * sizeof *h);
    m->row_n[m->epochs++] = m->n;
    return 0;
}

void rn_metrics_clear_history(rn_metrics *m) { m->epochs = 0; }

size_t rn_metrics_history(const rn_metrics *m, const char *name, double *out, size_t cap)
{
    size_t k = 0;
    while (k < m->n && strcmp(m->names[k], name) != 0) k++;
    if (k == m->n) return 0;
    size_t at = 0;
    for (size_t e = 0; e < m->epochs; e++) {
        if (e < cap) out[e] = k < m->row_n[e] ? m->history[at + k] : NAN;
        at += m->row_n[e];
    }
    return m->epochs;
}
