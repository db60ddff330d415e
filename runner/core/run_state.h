/* The run's trainable state in memory: what an LR sweep, a roll-back after a non-finite loss, or
 * early stopping's "restore the best weights" put back. Parameters and buffers, every optimizer
 * state, each group's step count, and each layer's train-mode call count (dropout masks) and batch
 * norm's num_batches_tracked. The global step, the schedule and data positions and the metrics are
 * not part of it. */
#ifndef RN_RUN_STATE_H
#define RN_RUN_STATE_H

#include <stddef.h>
#include "chain.h"

typedef struct rn_run rn_run;
typedef struct rn_run_state rn_run_state;

/* Copies the state into *s, allocating it when *s is NULL (reusing it otherwise). On a GPU run
 * the host model is brought up to date from the device first. */
int rn_run_state_save(rn_run *r, rn_run_state **s, char *err, size_t errlen);
/* Puts a copy made from this run back (on a GPU run, onto the device too). 0, or -1 with err
 * when the device copy fails. */
int rn_run_state_restore(rn_run *r, const rn_run_state *s, char *err, size_t errlen);
void rn_run_state_free(rn_run_state *s);

/* Calls fn on every layer of the chain, depth first (a container before its children). */
void rn_walk_layers(const rn_chain *c, void (*fn)(rn_layer *l, void *arg), void *arg);

#endif
