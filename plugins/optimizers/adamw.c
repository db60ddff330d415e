/* adamw — Adam with decoupled weight decay (and the AMSGrad variant), with exactly
 * torch.optim.AdamW's update (PyTorch 1.13, its single-tensor CPU path, foreach=False):
 *
 *   p = p * (1 - lr * wd)                          (decoupled, as torch.optim.AdamW; see adam for
 *                                                   L2 added to the gradient)
 *
 * then the moments, AMSGrad and the bias-corrected update of adam_core.h, which documents the
 * update, its rounding (1 - lr*wd cast to float once, the fused moment updates) and the state
 * layout.
 *
 * Optimizer state: state_floats = 2 (3 with amsgrad) floats per element:
 * [exp_avg | exp_avg_sq | max_exp_avg_sq (amsgrad only)] per parameter, as torch.optim.AdamW.
 */
#include "adam_core.h"

static const rn_setting adamw_settings[] = {
    ADAM_CORE_SETTINGS_LR_TO_EPS,
    {"weight_decay", RN_SETTING_NUMBER, 1e-2, NULL, 0, INFINITY, NULL,
     "decoupled weight decay: each step multiplies the parameters by 1 - lr * weight_decay", 0},
    ADAM_CORE_SETTING_AMSGRAD,
};

static int adamw_step(void *self, rn_group *group)
{
    return adam_core_step(self, group, ADAM_WD_DECOUPLED);
}

static int adamw_device_update(void *self, const rn_group *group, rn_update *u)
{
    return adam_core_device_update(self, group, ADAM_WD_DECOUPLED, u);
}

static const rn_optimizer_api adamw_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = adam_core_state_floats,
    .step = adamw_step,
    .device_update = adamw_device_update,
};

static const rn_plugin adamw_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "adamw",
    .version = "1.0.0",
    .summary = "AdamW with decoupled weight decay and optional AMSGrad (torch.optim.AdamW)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = adamw_settings,
    .n_settings = sizeof adamw_settings / sizeof adamw_settings[0],
    .create = adam_core_create,
    .destroy = adam_core_destroy,
    .api = &adamw_api,
};

ADAM_CORE_LIBRARY(adamw_plugin)
