-- fashion_resnet8.lua with CutMix on top of its crop and flip (timm's recipe: Beta(1, 1) box
-- area, corrected by the clipped box, pairs by a random permutation of the batch), same epochs,
-- schedule and seed, so the two runs compare CutMix alone. CutMix trains on soft targets, which
-- the cross-entropy loss takes; label smoothing would apply to the mixed targets as in timm.
--   runner recipes/fashion_resnet8.lua; runner recipes/fashion_resnet8_cutmix.lua
return extend(import "fashion_resnet8", {
  name = "fashion_resnet8_cutmix",
  data = {
    augment = {
      { "random_crop", size = 28, padding = 2 },
      { "hflip", p = 0.5 },
      { "cutmix", alpha = 1.0, prob = 0.5 },
    },
  },
})
