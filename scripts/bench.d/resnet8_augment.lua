-- scripts/bench --augment: resnet8.lua with timm-style augmentation on the loader's worker
-- thread (reflect-padded crop, flip, random erasing, CutMix or Mixup on soft targets).
return extend(import "resnet8", {
  data = {
    augment = {
      { "random_crop", size = 28, padding = 2, padding_mode = "reflect" },
      { "hflip" },
      { "random_erasing", p = 0.25 },
      { "cutmix_or_mixup", prob = 1.0 },
    },
  },
})
