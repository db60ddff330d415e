-- Fashion-MNIST with a CIFAR-style ResNet-8 (16-32-64 channels, 78k parameters): random crop
-- and flip, SGD with Nesterov momentum, one warm-up epoch then cosine, 10 epochs.
-- fashion_resnet8_pretrain.lua and staged_unfreeze.lua (a pre-trained backbone fine-tuned on
-- other classes) extend this recipe: a change here changes them.
local models = import "lib.models"
local datasets = import "lib.datasets"

local fm = datasets.fashion_mnist()

return {
  seed = 1,
  device = "auto",
  data = {
    train = fm.train,
    test = fm.test,
    batch_size = 128,
    normalize = datasets.fashion_mnist_stats,
    augment = { { "random_crop", size = 28, padding = 2 }, { "hflip", p = 0.5 } },
  },
  model = models.resnet8{ in_channels = 1, classes = 10 },
  loss = { "cross_entropy" },
  optimizer = { "sgd", lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = { "cosine", warmup_epochs = 1 },
  callbacks = { { "progress" }, { "csv_logger" } },
  epochs = 10,
}
