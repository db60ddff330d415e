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

-- Refuses keys of args outside `allowed` (a set), naming the model.
local function check(model, args, allowed)
  if args == nil then return {} end
  if type(args) ~= "table" then
    error(("models.%s: expected a table of arguments, got %s"):format(model, describe(args)), 3)
  end
  for k in next, args do
    if not allowed[k] then
      error(("models.%s: unknown argument %s"):format(model,
        type(k) == "string" and ("'" .. k .. "'") or describe(k)), 3)
    end
  end
  return args
end

-- torchvision's BasicBlock: conv3x3(stride) bn relu conv3x3 bn, plus the input (through a 1x1
-- conv + bn "downsample" when the shape changes), then relu. Names as torchvision's.
local function basic_block(name, inplanes, planes, stride)
  local shortcut
  if stride ~= 1 or inplanes ~= planes then
    shortcut = { nn.sequential{ name = "downsample",
      nn.conv2d{ name = "0", in_channels = inplanes, out_channels = planes, kernel_size = 1,
                 stride = stride, bias = false },
      nn.batch_norm2d{ name = "1", num_features = planes } } }
  end
  return nn.residual{
    name = name,
    body = {
      nn.conv2d{ name = "conv1", in_channels = inplanes, out_channels = planes, kernel_size = 3,
                 stride = stride, padding = 1, bias = false },
      nn.batch_norm2d{ name = "bn1", num_features = planes },
      nn.relu{ name = "relu" },
      nn.conv2d{ name = "conv2", in_channels = planes, out_channels = planes, kernel_size = 3,
                 padding = 1, bias = false },
      nn.batch_norm2d{ name = "bn2", num_features = planes },
    },
    shortcut = shortcut,
  }
end

-- "layerN": `blocks` basic blocks named "0", "1", ...; the first one may stride.
local function stage(name, inplanes, planes, blocks, stride)
  local list = { name = name, basic_block("0", inplanes, planes, stride) }
  for i = 2, blocks do list[i] = basic_block(tostring(i - 1), planes, planes, 1) end
  return nn.sequential(list)
end

-- The head every ResNet ends with: global average pool, flatten, fc.
local function head(features, classes)
  return nn.global_avg_pool2d{ name = "avgpool" }, nn.flatten(),
         nn.linear{ name = "fc", in_features = features, out_features = classes }
end

-- CIFAR-style ResNet (He et al. 2016, section 4.2): a 3x3 stem with 16 channels, three stages
-- of n blocks with 16, 32, 64 channels (stride 2 into the last two), depth 6n + 2. Shortcuts
-- that change shape are 1x1 convolutions + batch norm (option B), named like torchvision's.
local function cifar_resnet(model, n, args)
  args = check(model, args, { classes = true, in_channels = true, name = true })
  local classes = option(model, args, "classes", 10, 1)
  local in_channels = option(model, args, "in_channels", 3, 1)
  local avgpool, flatten, fc = head(64, classes)
  return nn.sequential{
    name = args.name or model,
    nn.conv2d{ name = "conv1", in_channels = in_channels, out_channels = 16, kernel_size = 3,
               padding = 1, bias = false },
    nn.batch_norm2d{ name = "bn1", num_features = 16 },
    nn.relu{ name = "relu" },
    stage("layer1", 16, 16, n, 1),
    stage("layer2", 16, 32, n, 2),
    stage("layer3", 32, 64, n, 2),
    avgpool, flatten, fc,
  }
end

-- ResNet-8 and ResNet-20 for 32x32 (or 28x28) images. args: classes (10), in_channels (3).
function M.resnet8(args) return cifar_resnet("resnet8", 1, args) end
function M.resnet20(args) return cifar_resnet("resnet20", 3, args) end

-- torchvision's resnet18: 7x7/2 stem + 3x3/2 max pool, layer1..layer4 of two BasicBlocks with
-- 64, 128, 256, 512 channels, global average pool, fc; parameter names equal torchvision's, so
-- its state dict loads by name. args: classes (1000), in_channels (3), cifar_stem (false: with
-- true, a 3x3/1 stem and no max pool, the usual change for 32x32 images).
function M.resnet18(args)
  args = check("resnet18", args, { classes = true, in_channels = true, cifar_stem = true,
                                   name = true })
  local classes = option("resnet18", args, "classes", 1000, 1)
  local in_channels = option("resnet18", args, "in_channels", 3, 1)
  if args.cifar_stem ~= nil and type(args.cifar_stem) ~= "boolean" then
    error(("models.resnet18: cifar_stem: expected a boolean, got %s")
      :format(describe(args.cifar_stem)), 2)
  end
  local layers = { name = args.name or "resnet18" }
  local function add(l) layers[#layers + 1] = l end
  if args.cifar_stem then
    add(nn.conv2d{ name = "conv1", in_channels = in_channels, out_channels = 64, kernel_size = 3,
                   padding = 1, bias = false })
  else
    add(nn.conv2d{ name = "conv1", in_channels = in_channels, out_channels = 64, kernel_size = 7,
                   stride = 2, padding = 3, bias = false })
  end
  add(nn.batch_norm2d{ name = "bn1", num_features = 64 })
  add(nn.relu{ name = "relu" })
  if not args.cifar_stem then
    add(nn.max_pool2d{ name = "maxpool", kernel_size = 3, stride = 2, padding = 1 })
  end
  add(stage("layer1", 64, 64, 2, 1))
  add(stage("layer2", 64, 128, 2, 2))
  add(stage("layer3", 128, 256, 2, 2))
  add(stage("layer4", 256, 512, 2, 2))
  local avgpool, flatten, fc = head(512, classes)
  add(avgpool); add(flatten); add(fc)
  return nn.sequential(layers)
end

return M
