-- scripts/bench --lr-find: the LR finder alone (one fastai-default sweep, 100 steps from 1e-7 to
-- 10 with AdamW) on the PyTorch MNIST-example CNN over the first 12,800 Fashion-MNIST images.
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 12800 }
return {
  seed = 1,
  device = "cpu",
  data = { train = fm.train, batch_size = 128, normalize = datasets.fashion_mnist_stats },
  model = models.mnist_cnn{ classes = 10 },
  optimizer = { "adamw", lr = 1e-3, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.01 },
  callbacks = { { "csv_logger" } },
  stages = { { "lr_find", start_lr = 1e-7, end_lr = 10, steps = 100, stop_div = false } },
}
