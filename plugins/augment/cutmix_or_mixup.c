/* cutmix_or_mixup — timm's Mixup with both alphas: when mixing, CutMix with probability
 * switch_prob, else Mixup. The draws, the pairing and the modes are mix_common.h's. */
#include "mix_common.h"

static const rn_setting cutmix_or_mixup_settings[] = {
    MIX_SETTING_ALPHA("cutmix_alpha", "Beta(alpha, alpha) of lam when CutMix is chosen"),
    MIX_SETTING_ALPHA("mixup_alpha", "Beta(alpha, alpha) of lam when Mixup is chosen"),
    MIX_SETTING_PROB,
    {"switch_prob", RN_SETTING_NUMBER, 0.5, NULL, 0, 1, NULL,
     "probability of CutMix rather than Mixup when mixing (timm switch_prob)", 0},
    MIX_SETTING_CORRECT_LAM,
    MIX_SETTING_MODE,
};

static int cutmix_or_mixup_create(const rn_host *host, rn_ctx *ctx, void **self)
{
    mix_config cfg = {
        .prob = host->get_number(ctx, "prob"),
        .switch_prob = host->get_number(ctx, "switch_prob"),
        .cutmix_alpha = host->get_number(ctx, "cutmix_alpha"),
        .mixup_alpha = host->get_number(ctx, "mixup_alpha"),
        .correct_lam = host->get_bool(ctx, "correct_lam"),
        .elem = strcmp(host->get_string(ctx, "mode"), "elem") == 0,
    };
    return mix_create_with(host, ctx, &cfg, self);
}

RN_MIX_PLUGIN("cutmix_or_mixup",
              "CutMix with probability switch_prob, else Mixup, per batch or sample (timm Mixup)",
              cutmix_or_mixup_settings, cutmix_or_mixup_create)
