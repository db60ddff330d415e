/* mixup — timm's Mixup with only mixup_alpha: x_i = lam * x_i + (1 - lam) * x_partner and the
 * same for the targets. The draws, the pairing and the modes are mix_common.h's. */
#include "mix_common.h"

static const rn_setting mixup_settings[] = {
    MIX_SETTING_ALPHA("alpha", "Beta(alpha, alpha) of lam, the sample's own weight; 1 = uniform"),
    MIX_SETTING_PROB,
    MIX_SETTING_MODE,
};

static int mixup_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    mix_config cfg = {
        .prob = host->get_number(ctx, "prob"),
        .switch_prob = 0.0,
        .cutmix_alpha = 1.0, /* unused */
        .mixup_alpha = host->get_number(ctx, "alpha"),
        .correct_lam = 0,
        .elem = strcmp(host->get_string(ctx, "mode"), "elem") == 0,
    };
    return mix_create_with(host, ctx, &cfg, self);
}

RN_MIX_PLUGIN("mixup", "Mixup: blend each sample and its target with a partner's (timm)",
              mixup_settings, mixup_create)
