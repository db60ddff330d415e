/* cutmix — timm's Mixup with only cutmix_alpha (CutMix: a box of the partner pasted in, the
 * targets mixed by the box's area). The draws, the pairing and the modes are mix_common.h's. */
#include "mix_common.h"

static const rn_setting cutmix_settings[] = {
    MIX_SETTING_ALPHA("alpha", "Beta(alpha, alpha) of lam, the kept area fraction; 1 = uniform"),
    MIX_SETTING_PROB,
    MIX_SETTING_CORRECT_LAM,
    MIX_SETTING_MODE,
};

static int cutmix_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    mix_config cfg = {
        .prob = host->get_number(ctx, "prob"),
        .switch_prob = 1.0,
        .cutmix_alpha = host->get_number(ctx, "alpha"),
        .mixup_alpha = 1.0, /* unused */
        .correct_lam = host->get_bool(ctx, "correct_lam"),
        .elem = strcmp(host->get_string(ctx, "mode"), "elem") == 0,
    };
    return mix_create_with(host, ctx, &cfg, self);
}

RN_MIX_PLUGIN("cutmix", "CutMix: paste a random box of a partner sample, mix targets by area "
              "(timm)", cutmix_settings, cutmix_create)
