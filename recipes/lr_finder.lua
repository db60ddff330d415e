-- The LR range test (fastai's lr_find) on Fashion-MNIST with the PyTorch MNIST-example CNN, then
-- one epoch of one-cycle training at the suggested lr (fastai's lr_find + fit_one_cycle). The
-- sweep takes well under 30 s on two cores; its suggestions are printed, kept in summary.json
-- and marked on lr_find.svg.
--
-- The data, model and loss are fashion_mnist.lua's: this recipe extends it.
local recipe = extend(import "fashion_mnist", {
  name = "lr_finder",
  -- fastai's defaults: Adam with decoupled weight decay 0.01, betas (0.9, 0.99).
  optimizer = { "adamw", lr = 1e-3, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.01 },
  stages = {
    -- 100 steps from 1e-7 to 10, three sweeps over different batches: the median curve and
    -- each suggestion's spread show how much the answer depends on the data order.
    { "lr_find", start_lr = 1e-7, end_lr = 10, steps = 100, repeats = 3 },
    -- fit_one_cycle(1, lr_max = valley), with fastai's one-cycle shape
    { name = "fit", epochs = 1, lr = "lr_find.valley",
      schedule = { "one_cycle", pct_start = 0.25, div_factor = 25, final_div_factor = 1e5 } },
  },
})
recipe.epochs = nil   -- the stages say how long it trains
recipe.schedule = nil -- and with what schedule
return recipe
