/* The training loop's GPU side: the run's network on the device (the CUDA backend's
 * rn_cuda_net, built from rn_net_describe's graph of the model) and the copies between it and the
 * host model.
 *
 * While a GPU run trains, the device holds the current parameters, buffers, gradients and
 * optimizer state. The host model and the optimizer groups' state are brought up to date
 * (rn_dev_pull) before anything on the host reads them (a state copy for the LR finder or a
 * callback, a checkpoint, the end of the run), and the device (rn_dev_push) after the host wrote
 * them (a restored state copy). Everything else of the loop (schedules, callbacks, metrics, the
 * loader) is the CPU loop's own, so both devices run the same steps in the same order. */
#ifndef RN_TRAIN_DEVICE_H
#define RN_TRAIN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "tensor.h"

struct rn_run;
struct rn_plan;

/* Builds the device network from the host model (after a resume has loaded it) and uploads the
 * parameters and optimizer state. No-op on the CPU. */
int rn_dev_open(struct rn_run *r, char *err, size_t errlen);
void rn_dev_close(struct rn_run *r);

/* The next training batch of ld, already on the device: the one put while the last step ran,
 * or (the first of an epoch, after a sweep) taken and put now. As rn_loader_next: 1, 0 at the
 * end of the epoch, -1. */
int rn_dev_next(struct rn_run *r, rn_loader *ld, rn_loader_batch **b, char *err, size_t errlen);
/* Forward, loss and backward of batch b (from rn_dev_next) on the device; *loss is its mean.
 * After the backward is queued it takes ld's next batch and puts it on the device, so that its
 * copy overlaps this step's backward and update (ld NULL: not). Returns 0, -1, or
 * RN_STEP_NONFINITE (before the backward) for a non-finite loss, as micro_batch. */
int rn_dev_micro_batch(struct rn_run *r, rn_loader *ld, const rn_loader_batch *b, double *loss,
                       char *err, size_t errlen);
/* Drops a batch taken ahead from ld: call before closing a loader the steps used. */
void rn_dev_forget(struct rn_run *r, const rn_loader *ld);
/* The gradient norm over the trainable parameters (as rn_grads_norm), and the scaling of
 * clip_grad.norm. */
int rn_dev_grad_norm(struct rn_run *r, double *norm, char *err, size_t errlen);
int rn_dev_grad_scale(struct rn_run *r, float s, char *err, size_t errlen);
/* fp16's unscale (GradScaler.unscale_): the gradients of the trainable parameters times
 * inv_scale; *found_inf is 1 when one of them was inf or NaN. */
int rn_dev_grad_unscale(struct rn_run *r, float inv_scale, int *found_inf, char *err,
                        size_t errlen);
/* clip_grad.value, and gradient accumulation (rn_grads_accumulate / finish on the device). */
int rn_dev_grad_clamp(struct rn_run *r, float v, char *err, size_t errlen);
int rn_dev_grad_accumulate(struct rn_run *r, int64_t samples, int first, char *err,
                           size_t errlen);
int rn_dev_grad_mean(struct rn_run *r, int64_t total, char *err, size_t errlen);
/* One optimizer step of every group that trains: each plugin's device_update, applied by the
 * backend; then the group's step count advances (as rn_opt_groups_step). */
int rn_dev_optimizer_step(struct rn_run *r, char *err, size_t errlen);
/* An evaluation batch: forward in eval mode, the logits copied into logits (n rows). */
int rn_dev_eval_batch(struct rn_run *r, const rn_loader_batch *b, rn_tensor *logits, char *err,
                      size_t errlen);

/* A loader's batch buffers in the backend's pinned memory (a GPU run; nothing on the CPU). */
void rn_dev_loader_memory(const struct rn_run *r, rn_loader_config *c);

/* A GPU run's augmentation: on a loader worker, each plugin of augment list `list` writes its
 * plan for batch b (device_plan) into b->aux, the loader's per-batch block of
 * rn_dev_plan_bytes(r) bytes; rn_dev_micro_batch applies them on the device after the copy. */
size_t rn_dev_plan_bytes(const struct rn_run *r);
int rn_dev_plan_batch(struct rn_run *r, int list, rn_loader_batch *b, char *err, size_t errlen);

/* Device -> host (parameters, buffers, optimizer state) and host -> device. No-ops on the CPU
 * and when nothing changed on the side copied from. */
int rn_dev_pull(struct rn_run *r, char *err, size_t errlen);
int rn_dev_push(struct rn_run *r, char *err, size_t errlen);

#endif
