-- Pre-training for recipes/staged_unfreeze.lua: ResNet-8 on Fashion-MNIST classes 0-4 (T-shirt,
-- trouser, pullover, dress, coat; 30k training images) with a 5-way head, otherwise exactly
-- recipes/fashion_resnet8.lua (crop and flip, SGD with Nesterov momentum, cosine).
--   runner recipes/fashion_resnet8_pretrain.lua --out runs/pretrain
-- leaves the backbone in runs/pretrain/model.safetensors, where staged_unfreeze.lua looks for it.
local models = import "lib.models"
local datasets = import "lib.datasets"

local fm = datasets.fashion_mnist{ classes = { 0, 1, 2, 3, 4 } }

return extend(import "fashion_resnet8", {
  name = "fashion_resnet8_pretrain",
  data = { train = fm.train, test = fm.test },
  model = models.resnet8{ in_channels = 1, classes = 5 },
  epochs = 8,
})
