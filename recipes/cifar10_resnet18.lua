-- CIFAR-10 with torchvision's ResNet-18 (3x3 stem, no max pool): random crop 32 with padding 4,
-- horizontal flip, CIFAR's mean and std, AdamW with a 10x learning rate for the head, one
-- warm-up epoch then cosine.
--
-- Download cifar-10-binary.tar.gz (the binary version) from the CIFAR site and put it next to
-- this recipe, or point both splits at it:
--   runner recipes/cifar10_resnet18.lua --set 'data.train.archive="/data/cifar-10-binary.tar.gz"' \
--                                       --set 'data.test.archive="/data/cifar-10-binary.tar.gz"'
-- To fine-tune torchvision's ImageNet weights (saved as safetensors), add
--   weights = { file = "resnet18.safetensors", strict = false },
-- which loads every tensor but the 1000-class fc, whose shape differs.
local models = import "lib.models"

local archive = "cifar-10-binary.tar.gz"

return {
  seed = 1,
  device = "auto",
  data = {
    train = { format = "cifar10", archive = archive },
    test = { format = "cifar10", archive = archive },
    batch_size = 128,
    normalize = { mean = { 0.4914, 0.4822, 0.4465 }, std = { 0.2470, 0.2435, 0.2616 } },
    augment = { { "random_crop", size = 32, padding = 4 }, { "hflip", p = 0.5 } },
  },
  model = models.resnet18{ cifar_stem = true, classes = 10 },
  loss = { "cross_entropy" },
  optimizer = { "adamw", lr = 1e-3, weight_decay = 0.05 },
  groups = { head = { "fc.*", lr = 1e-2 } },
  schedule = { "cosine", warmup_epochs = 1 },
  callbacks = { { "progress" }, { "csv_logger" } },
  epochs = 30,
}
