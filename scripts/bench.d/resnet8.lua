-- scripts/bench: ResNet-8 on the first 6,400 Fashion-MNIST images, batch 128, SGD+momentum,
-- 3 epochs, no evaluation.
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 6400 }
return {
  seed = 1,
  device = "cpu",
  data = { train = fm.train, batch_size = 128, normalize = datasets.fashion_mnist_stats },
  model = models.resnet8{ in_channels = 1, classes = 10 },
  optimizer = { "sgd", lr = 0.05, momentum = 0.9 },
  callbacks = { { "csv_logger" } },
  epochs = 3,
}
