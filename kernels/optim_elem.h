/* The optimizers' per-element updates, shared by the CPU plugins (plugins/optimizers/<id>.c, whose
 * header comments give each formula and its PyTorch rounding) and the CUDA multi-tensor kernels
 * (kernels/optim_kernels.cu). The coefficients are float, as PyTorch casts its Python scalars;
 * each plugin computes them once per tensor on the host. */
#ifndef RN_OPTIM_ELEM_H
#define RN_OPTIM_ELEM_H

#include "rn_hd.h"

/* The coefficient structs (rn_sgd_coef, ...) are public: an optimizer plugin hands them to the
 * host for a device step (rn_optimizer_api.device_update in <runner/plugin.h>). */
#include "../include/runner/plugin.h"

/* ---- SGD (torch.optim.SGD) -------------------------------------------------------------- */

/* buf is NULL without a momentum buffer. */
RN_HD void rn_sgd_elem(const rn_sgd_coef *c, float *p, float grad, float *buf)
{
    float g = grad;
    if (c->wd != 0.0f) g = rn_fma_d(c->wd, *p, g);                   /* grad.add(p, alpha=wd) */
    if (buf) {
        float b = c->first ? g : rn_fma_d(c->keep, g, c->momentum * *buf); /* mul_(m).add_ */
        *buf = b;
        g = c->nesterov ? rn_fma_d(c->momentum, b, g) : b;          /* g.add(buf, alpha=m) */
    }
    *p = rn_fma_d(-c->lr, g, *p);                                    /* p.add_(g, alpha=-lr) */
}

/* ---- Adam / AdamW (torch.optim.Adam, AdamW; plugins/optimizers/adam_core.h) ---------------- */

/* vmax is NULL without AMSGrad. */
RN_HD void rn_adam_elem(const rn_adam_coef *c, float *pp, float grad, float *mp, float *vp,
                        float *vmax)
{
    float g = grad, p = *pp;
    if (c->decay != 1.0f) p = p * c->decay;                         /* param.mul_(1 - lr*wd) */
    if (c->wd != 0.0f) g = rn_fma_d(c->wd, p, g);                   /* grad.add(p, alpha=wd) */
    float m = rn_fma_d(c->keep1, g, *mp * c->beta1);                /* exp_avg.mul_(b1).add_ */
    float v = rn_fma_d(c->keep2 * g, g, *vp * c->beta2);            /* exp_avg_sq...addcmul_ */
    *mp = m;
    *vp = v;
    if (vmax) {
        float vm = *vmax;
        if (v > vm || v != v) vm = v;                               /* torch.maximum keeps NaN */
        *vmax = vm;
        v = vm;
    }
    float denom = sqrtf(v) / c->bc2_sqrt + c->eps;                  /* (v.sqrt()/bc2).add_(eps) */
    *pp = p + (c->neg_step * m) / denom;                            /* addcdiv_(m, denom, -step) */
}

/* ---- RMSprop (torch.optim.RMSprop) ------------------------------------------------------ */

/* buf is NULL without momentum, ga without centered. */
RN_HD void rn_rmsprop_elem(const rn_rmsprop_coef *c, float *pp, float grad, float *sqp,
                           float *buf, float *ga)
{
    float g = grad, p = *pp;
    if (c->wd != 0.0f) g = rn_fma_d(c->wd, p, g);                   /* grad.add(p, alpha=wd) */
    float sq = rn_fma_d(c->keep * g, g, *sqp * c->alpha);           /* sq.mul_(a).addcmul_ */
    *sqp = sq;
    float avg;
    if (ga) {
        float a = rn_fma_d(c->keep, g, *ga * c->alpha);             /* ga.mul_(a).add_(g, 1-a) */
        *ga = a;
        avg = sqrtf(rn_fma_d(-a, a, sq));                           /* sq.addcmul(ga,ga,-1).sqrt_ */
    } else {
        avg = sqrtf(sq);                                            /* sq.sqrt() */
    }
    avg = avg + c->eps;                                             /* avg.add_(eps) */
    if (buf) {
        float b = *buf * c->momentum + g / avg;                     /* buf.mul_(m).addcdiv_ */
        *buf = b;
        *pp = rn_fma_d(c->neg_lr, b, p);                            /* p.add_(buf, alpha=-lr) */
    } else {
        *pp = p + (c->neg_lr * g) / avg;                            /* p.addcdiv_(g, avg, -lr) */
    }
}

/* ---- Lion (the paper's reference; plugins/optimizers/lion.c) ------------------------------ */

RN_HD void rn_lion_elem(const rn_lion_coef *c, float *pp, float g, float *mp)
{
    float p = *pp, m = *mp;
    if (c->decay != 1.0f) p = p * c->decay;                         /* p.mul_(1 - lr*wd) */
    float u = rn_fma_d(c->keep1, g, m * c->beta1);                  /* m*b1 + g*(1-b1) */
    float s = (float)((u > 0.0f) - (u < 0.0f));                     /* .sign_() */
    *pp = rn_fma_d(c->neg_lr, s, p);                                /* p.add_(sign, alpha=-lr) */
    *mp = rn_fma_d(c->keep2, g, m * c->beta2);                      /* m.mul_(b2).add_(g, 1-b2) */
}

/* ---- LAMB (timm's Lamb; plugins/optimizers/lamb.c) ---------------------------------------- */

/* The moments' update; returns nothing, the new m and v are in *mp, *vp. */
RN_HD void rn_lamb_moments(const rn_lamb_coef *c, float g, float *mp, float *vp)
{
    *mp = rn_fma_d(c->keep1, g, *mp * c->beta1);                    /* m.mul_(b1).add_(g, 1-b1) */
    *vp = rn_fma_d(c->keep2 * g, g, *vp * c->beta2);                /* v.mul_(b2).addcmul_ */
}

/* The update before the trust ratio, from the new m and v and the old p. */
RN_HD float rn_lamb_update(const rn_lamb_coef *c, float m, float v, float p)
{
    float denom = sqrtf(v) / c->bc2_sqrt + c->eps;                  /* (v.sqrt()/bc2).add_(eps) */
    float u = (m / c->bc1) / denom;                                 /* (m / bc1).div_(denom) */
    if (c->has_wd) u = rn_fma_d(c->wd, p, u);                       /* u.add_(p, alpha=wd) */
    return u;
}

#endif
