-- The model zoo: networks built from lib.nn with PyTorch's module names, so weights saved from
-- the PyTorch originals load by name.
local nn = import "lib.nn"

local M = {}

local function describe(v)
  if type(v) == "string" then return ("string %q"):format(v) end
  if type(v) == "number" or type(v) == "boolean" then return type(v) .. " " .. tostring(v) end
  return type(v)
end

local function option(model, args, key, default, min)
  local v = args[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < min then
    error(("models.%s: %s: expected an integer >= %d, got %s"):format(model, key, min,
      describe(v)), 3)
  end
  return v
end

-- The CNN of PyTorch's MNIST example (pytorch/examples mnist/main.py, class Net):
-- conv1 -> relu -> conv2 -> relu -> max_pool2d(2) -> dropout1 -> flatten -> fc1 -> relu
-- -> dropout2 -> fc2 (logits; the loss applies the softmax).
-- args: classes (10), in_channels (1), image_size (28: fc1 then has 64*12*12 = 9216 inputs).
function M.mnist_cnn(args)
  args = args or {}
  if type(args) ~= "table" then
    error(("models.mnist_cnn: expected a table of arguments, got %s"):format(describe(args)), 2)
  end
  for k in next, args do
    if k ~= "classes" and k ~= "in_channels" and k ~= "image_size" and k ~= "name" then
      error(("models.mnist_cnn: unknown argument %s"):format(
        type(k) == "string" and ("'" .. k .. "'") or describe(k)), 2)
    end
  end
  local classes = option("mnist_cnn", args, "classes", 10, 1)
  local in_channels = option("mnist_cnn", args, "in_channels", 1, 1)
  -- Two unpadded 3x3 convolutions take 4 pixels off, the pool halves: at least 6 to leave 1.
  local image_size = option("mnist_cnn", args, "image_size", 28, 6)
  local side = (image_size - 4) // 2
  return nn.sequential{
    name = args.name or "mnist_cnn",
    nn.conv2d{ name = "conv1", in_channels = in_channels, out_channels = 32, kernel_size = 3,
               stride = 1 },
    nn.relu(),
    nn.conv2d{ name = "conv2", in_channels = 32, out_channels = 64, kernel_size = 3, stride = 1 },
    nn.relu(),
    nn.max_pool2d{ kernel_size = 2 },
    nn.dropout{ name = "dropout1", p = 0.25 },
    nn.flatten(),
    nn.linear{ name = "fc1", in_features = 64 * side * side, out_features = 128 },
    nn.relu(),
    nn.dropout{ name = "dropout2", p = 0.5 },
    nn.linear{ name = "fc2", in_features = 128, out_features = classes },
  }
end

return M
