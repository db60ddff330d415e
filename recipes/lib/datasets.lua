-- Data sets runner knows where to find. Each returns the `train` and `test` tables of a recipe's
-- `data` section; paths are absolute, so a recipe that uses them runs from any directory.
local M = {}

local FASHION = "/usr/share/datasets/fashion-mnist/"  -- Debian's dataset-fashion-mnist

-- Fashion-MNIST (60k train / 10k test, 1x28x28, 10 classes). opts.limit / opts.test_limit keep
-- the first n samples of each split, for quick runs. opts.classes (e.g. { 5, 6, 7, 8, 9 }) keeps
-- only those classes in both splits, relabeled 0..k-1 in the order given (before the limits).
function M.fashion_mnist(opts)
  opts = opts or {}
  return {
    train = { format = "idx", images = FASHION .. "train-images-idx3-ubyte.gz",
              labels = FASHION .. "train-labels-idx1-ubyte.gz", limit = opts.limit,
              classes = opts.classes },
    test = { format = "idx", images = FASHION .. "t10k-images-idx3-ubyte.gz",
             labels = FASHION .. "t10k-labels-idx1-ubyte.gz", limit = opts.test_limit,
             classes = opts.classes },
  }
end

-- Per-channel mean and std of the Fashion-MNIST training images (pixels scaled to [0, 1]).
M.fashion_mnist_stats = { mean = { 0.2860 }, std = { 0.3530 } }

return M
