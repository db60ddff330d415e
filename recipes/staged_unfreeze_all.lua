-- Baseline for staged_unfreeze.lua: the same pre-trained backbone, fresh head, data and epochs,
-- but everything trains from the first step, at one lr with a warm-up epoch and cosine
-- (fine-tuning all at once). lr 0.1 was the best of 0.02, 0.05, 0.1 on val.acc (seed 1).
return extend(import "staged_unfreeze", {
  name = "staged_unfreeze_all",
  stages = {
    { name = "all", epochs = 10, lr = 0.1, schedule = { "cosine", warmup_epochs = 1 } },
  },
})
