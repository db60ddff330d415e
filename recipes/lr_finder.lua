-- The LR range test (fastai's lr_find) on Fashion-MNIST with the PyTorch MNIST-example CNN, then
-- one epoch of one-cycle training at the suggested lr. The sweep takes well under 30 s on two
-- cores; its suggestions are printed, kept in summary.json and marked on lr_find.svg.
local models = import "lib.models"
local datasets = import "lib.datasets"

local fm = datasets.fashion_mnist()

return {
  name = "lr_finder",
  seed = 1,
  data = {
    train = fm.train,
    test = fm.test,
    batch_size = 128,
    normalize = datasets.fashion_mnist_stats,
  },
  model = models.mnist_cnn{ classes = 10 },
  loss = { "cross_entropy" },
  -- fastai's defaults: Adam with decoupled weight decay 0.01, betas (0.9, 0.99).
  optimizer = { "adamw", lr = 1e-3, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.01 },
  callbacks = { { "progress" }, { "csv_logger" } },
  stages = {
    -- 100 steps from 1e-7 to 10, three sweeps over different batches: the median curve and
    -- each suggestion's spread show how much the answer depends on the data order.
    { "lr_find", start_lr = 1e-7, end_lr = 10, steps = 100, repeats = 3 },
    -- fit_one_cycle(1, lr_max = valley)
    { name = "fit", epochs = 1, lr = "lr_find.valley",
      schedule = { "one_cycle", pct_start = 0.25, div_factor = 25, final_div_factor = 1e5 } },
  },
}
