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
    memset(m, 0, sizeof *m);
}
