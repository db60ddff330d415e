/* The run's latest metric values by name ("train.loss", "test.acc", "lr", ...). */
#ifndef RN_METRICS_H
#define RN_METRICS_H

#include <stddef.h>

typedef struct rn_metrics {
    char **names;
    double *values; /* NaN until first set */
    size_t n, cap;
} rn_metrics;

/* Sets (adding when new) a metric; returns 0 or -1 on allocation failure. Order of first set is
 * kept, so CSV columns are stable. */
int rn_metrics_set(rn_metrics *m, const char *name, double value);
/* Returns 1 and the value when present. */
int rn_metrics_get(const rn_metrics *m, const char *name, double *value);
void rn_metrics_free(rn_metrics *m);

#endif
