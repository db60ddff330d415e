-- scripts/bench: the MNIST-example CNN on the first 6,400 Fashion-MNIST images, batch 128,
-- SGD+momentum, 3 epochs, no evaluation and no progress output, so only training is timed.
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 6400 }
return {
  seed = 1,
  device = "cpu",
  data = { train = fm.train, batch_size = 128, normalize = datasets.fashion_mnist_stats },
  model = models.mnist_cnn{ classes = 10 },
  optimizer = { "sgd", lr = 0.05, momentum = 0.9 },
  callbacks = { { "csv_logger" } },
  epochs = 3,
}
