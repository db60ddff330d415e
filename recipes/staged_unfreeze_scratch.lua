-- Baseline for staged_unfreeze.lua: the same network, data and epochs trained from scratch (no
-- pre-trained weights) with the pre-training's schedule (one warm-up epoch, cosine). lr 0.2 was
-- the best of 0.05, 0.1 (the pre-training's), 0.2 on val.acc (seed 1), all within 0.1%.
local recipe = extend(import "staged_unfreeze", {
  name = "staged_unfreeze_scratch",
  stages = {
    { name = "scratch", epochs = 10, lr = 0.2, schedule = { "cosine", warmup_epochs = 1 } },
  },
})
recipe.weights = nil -- from scratch
return recipe
