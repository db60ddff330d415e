-- Fashion-MNIST with the PyTorch MNIST-example CNN: >= 90% test accuracy in 5 epochs.
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
  },
  model = models.mnist_cnn{ classes = 10 },
  loss = { "cross_entropy" },
  optimizer = { "sgd", lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 },
  schedule = { "cosine", warmup_epochs = 0.5 },
  callbacks = { { "progress" }, { "csv_logger" } },
  epochs = 5,
}
