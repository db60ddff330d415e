-- scripts/bench: ResNet-18 (CIFAR stem) on a CIFAR-layout archive the bench writes (512 random
-- 3x32x32 images; the path comes with --set data.train.archive=...), batch 128, 3 epochs.
local models = import "lib.models"
return {
  seed = 1,
  device = "cpu",
  data = { train = { format = "cifar10", archive = "cifar-10-binary.tar.gz" }, batch_size = 128 },
  model = models.resnet18{ cifar_stem = true, classes = 10 },
  optimizer = { "sgd", lr = 0.05, momentum = 0.9 },
  callbacks = { { "csv_logger" } },
  epochs = 3,
}
