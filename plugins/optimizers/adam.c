/* adam — Adam with L2 weight decay added to the gradient (and the AMSGrad variant), with exactly
 * torch.optim.Adam's update (PyTorch 1.13, its single-tensor CPU path, foreach=False):
 *
 *   g = grad + wd * p                              (coupled L2, as torch.optim.Adam; see adamw for
 *                                                   decoupled decay)
 *
 * then the moments, AMSGrad and the bias-corrected update of adam_core.h, which documents the
 * update, its rounding (the fused `g + wd*p` included) and the state layout.
 *
 * Optimizer state: state_floats = 2 (3 with amsgrad) floats per element:
 * [exp_avg | exp_avg_sq | max_exp_avg_sq (amsgrad only)] per parameter, as torch.optim.Adam.
 */
#include "adam_core.h"

static const rn_setting adam_settings[] = {
    ADAM_CORE_SETTINGS_LR_TO_EPS,
    {"weight_decay", RN_SETTING_NUMBER, 0, NULL, 0, INFINITY, NULL,
     "L2 penalty added to the gradient (coupled, as in torch.optim.Adam; use adamw for decoupled)",
     0},
    ADAM_CORE_SETTING_AMSGRAD,
};

static int adam_step(void *self, rn_group *group)
{
    return adam_core_step(self, group, ADAM_WD_L2);
}

static int adam_device_update(void *self, const rn_group *group, rn_update *u)
{
    return adam_core_device_update(self, group, ADAM_WD_L2, u);
}

static const rn_optimizer_api adam_api = {
    .struct_size = sizeof(rn_optimizer_api),
    .state_floats = adam_core_state_floats,
    .step = adam_step,
    .device_update = adam_device_update,
};

static const rn_plugin adam_plugin = {
    .struct_size = sizeof(rn_plugin),
    .kind = RN_KIND_OPTIMIZER,
    .id = "adam",
    .version = "1.0.0",
    .summary = "Adam with L2 weight decay and optional AMSGrad (torch.optim.Adam)",
    .devices = RN_DEVICE_CPU | RN_DEVICE_CUDA,
    .settings = adam_settings,
    .n_settings = sizeof adam_settings / sizeof adam_settings[0],
    .create = adam_core_create,
    .destroy = adam_core_destroy,
    .api = &adam_api,
};

ADAM_CORE_LIBRARY(adam_plugin)
