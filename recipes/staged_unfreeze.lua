-- Staged unfreezing (fastai's fine_tune, ULMFiT's gradual unfreezing) on a new task: ResNet-8
-- pre-trained on Fashion-MNIST classes 0-4 (recipes/fashion_resnet8_pretrain.lua) is fine-tuned
-- on classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with a fresh 5-way head: the head
-- alone, then the last stage (layer3) with it, then everything with discriminative lrs
-- (slice(lo, hi): lo for the stem + layer1 + layer2, hi for the head, the geometric mean for
-- layer3). 10% of the training images are held out (val.* metrics) to choose the lrs and
-- epochs; the test set is only reported.
--
-- It loads ../runs/pretrain/model.safetensors (relative to this file), which
--   runner recipes/fashion_resnet8_pretrain.lua --out runs/pretrain
-- writes when run from the repository's root; elsewhere give the file:
--   runner recipes/staged_unfreeze.lua --set 'weights.file="/path/to/model.safetensors"'
-- scripts/staged_unfreeze_compare runs the pre-training, this recipe and its two baselines
-- (staged_unfreeze_scratch.lua, staged_unfreeze_all.lua; same data, same 10 epochs). With all
-- 27k training images the three tie: test.acc over seeds 1-3 averages 97.93% staged, 97.93% all
-- at once, 97.89% from scratch (std over seeds 0.03-0.07%). With data.train.limit = 3000 the
-- pre-trained start helps: 95.65% staged, 95.31% all at once, 93.57% from scratch (std
-- 0.2-0.7%; the lrs not re-tuned for it).
local models = import "lib.models"
local datasets = import "lib.datasets"

local fm = datasets.fashion_mnist{ classes = { 5, 6, 7, 8, 9 } }

-- The pre-trained fc is 5-way too, so it would load by name and shape: naming the new head
-- "head" keeps it freshly initialised (the file's fc.* is reported as unused).
local model = models.resnet8{ in_channels = 1, classes = 5 }
model.layers[#model.layers].name = "head"

local recipe = extend(import "fashion_resnet8_pretrain", {
  name = "staged_unfreeze",
  data = { train = fm.train, test = fm.test, val_split = 0.1 },
  model = model,
  weights = { file = "../runs/pretrain/model.safetensors", strict = false },
  -- In model order, for slice(lo, hi): body (lo), layer3 (between), head (hi).
  groups = { body = { "conv1.*", "bn1.*", "layer1.*", "layer2.*" }, layer3 = "layer3.*",
             head = "head.*" },
  -- Tuned on val.acc (seed 1): lower lrs for the body (slice(0.002, 0.05), slice(0.01, 0.1))
  -- did worse, slice(0.1, 0.1) (no discrimination) about the same; train_bn = true in the
  -- frozen stages did not help.
  stages = {
    { name = "head", epochs = 1, train = "head", lr = 0.1,
      schedule = { "cosine", warmup_epochs = 0.2 } },
    { name = "layer3", epochs = 2, train = { "layer3", "head" }, lr = slice(0.05, 0.1),
      schedule = { "cosine", warmup_epochs = 0.2 } },
    { name = "all", epochs = 7, train = "all", lr = slice(0.05, 0.1),
      schedule = { "cosine", warmup_epochs = 0.5 } },
  },
})
recipe.epochs = nil -- the pre-training's: this recipe has stages
return recipe
