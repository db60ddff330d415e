/* The run's latest metric values by name ("train.loss", "test.acc", "lr", ...), and each one's
 * values at the end of every epoch of the current stage (for plateau schedules). */
#ifndef RN_METRICS_H
#define RN_METRICS_H

#include <stddef.h>

typedef struct rn_metrics {
    char **names;
    double *values; /* NaN until first set */
    size_t n, cap;
    double *history;  /* epochs x n_at_epoch: row e holds every metric at the end of epoch e */
    size_t *row_n;    /* metrics that existed when row e was taken */
    size_t epochs, epochs_cap;
} rn_metrics;

/* Sets (adding when new) a metric; returns 0 or -1 on allocation failure. Order of first set is
 * kept, so CSV columns are stable. */
int rn_metrics_set(rn_metrics *m, const char *name, double value);
/* Returns 1 and the value when present. */
int rn_metrics_get(const rn_metrics *m, const char *name, double *value);
void rn_metrics_free(rn_metrics *m);

/* Appends every metric's current value as the row of the epoch that just ended. */
int rn_metrics_end_epoch(rn_metrics *m);
/* Forgets the rows (a new stage begins). */
void rn_metrics_clear_history(rn_metrics *m);
/* The metric's value at the end of each epoch of the stage so far, oldest first, into
 * out[0..cap); returns how many epochs there are (0 when the metric is unknown). */
size_t rn_metrics_history(const rn_metrics *m, const char *name, double *out, size_t cap);

#endif
