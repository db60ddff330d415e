/* Dynamic loss scaling for fp16 training, with torch.cuda.amp.GradScaler's semantics (PyTorch
 * 1.13: GradScaler.scale / unscale_ / step / update and the _amp_update_scale_ kernel). The
 * logic is device-independent: the CPU tests check what the GPU path runs.
 *
 *   the loss is multiplied by scale before backward (gradients come out scaled);
 *   unscale: g *= inv_scale (float(1 / double(scale))), noting any non-finite g;
 *   a step with a non-finite gradient is skipped: scale *= backoff_factor, tracker = 0;
 *   a clean step counts: after growth_interval clean steps in a row, scale *= growth_factor
 *   (kept when that overflows float) and tracker = 0.
 *
 * scale is a float, as PyTorch's scale tensor; the factors are doubles, as its Python floats. */
#ifndef RN_GRAD_SCALER_H
#define RN_GRAD_SCALER_H

#include <stddef.h>
#include <stdint.h>

typedef struct rn_grad_scaler {
    float scale;              /* init_scale: 2^16 */
    double growth_factor;     /* 2.0 */
    double backoff_factor;    /* 0.5 */
    int64_t growth_interval;  /* 2000 clean steps */
    int64_t growth_tracker;   /* clean steps since the scale last changed */
    int64_t skipped;          /* steps skipped so far (for the run's metrics) */
} rn_grad_scaler;

/* GradScaler() with PyTorch's defaults. */
void rn_grad_scaler_init(rn_grad_scaler *s);
/* What to multiply the gradients by before the step: float(1 / double(scale)). */
float rn_grad_scaler_inv_scale(const rn_grad_scaler *s);
/* Unscales n gradients in place; returns 1 when any was inf or NaN. */
int rn_grad_scaler_unscale(const rn_grad_scaler *s, float *g, size_t n);
/* After the step: the scale update. Returns 1 when the step must be skipped (found_inf). */
int rn_grad_scaler_update(rn_grad_scaler *s, int found_inf);

#endif
