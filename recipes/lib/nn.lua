-- Layer constructors. Each returns a plain table the C core builds a layer from:
--   nn.conv2d{ name = "conv1", in_channels = 1, out_channels = 32, kernel_size = 3 }
--     --> { "conv2d", name = "conv1", in_channels = 1, out_channels = 32, kernel_size = 3,
--           stride = 1, padding = 0, bias = true }
-- Defaults are filled in, so the resolved recipe.lua of a run shows every setting. Names are
-- PyTorch's module names (parameters become "conv1.weight", "fc1.bias"). Bad arguments raise an
-- error that points at the recipe line calling the constructor.
local M = {}

local function describe(v)
  if type(v) == "string" then return ("string %q"):format(v) end
  if type(v) == "number" or type(v) == "boolean" then return type(v) .. " " .. tostring(v) end
  return type(v)
end

-- Checks that args is a table (nil counts as {}) holding only the allowed keys.
-- Levels: 1 here, 2 the constructor, 3 the recipe.
local function check_args(ctor, args, allowed)
  if args == nil then return {} end
  if type(args) ~= "table" then
    error(("nn.%s: expected a table of arguments, got %s"):format(ctor, describe(args)), 3)
  end
  for k in next, args do
    if type(k) ~= "string" or not allowed[k] then
      local key = type(k) == "string" and ("'" .. k .. "'") or describe(k)
      error(("nn.%s: unknown argument %s"):format(ctor, key), 3)
    end
  end
  return args
end

local function set(...)
  local s = {}
  for _, k in ipairs({ ... }) do s[k] = true end
  return s
end

local function integer(ctor, key, v, min, what)
  if math.type(v) ~= "integer" or v < min then
    error(("nn.%s: %s: expected %s, got %s"):format(ctor, key, what, describe(v)), 3)
  end
  return v
end

local function positive(ctor, key, v)
  return integer(ctor, key, v, 1, "a positive integer")
end

local function boolean(ctor, key, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then
    error(("nn.%s: %s: expected a boolean, got %s"):format(ctor, key, describe(v)), 3)
  end
  return v
end

local function name(ctor, v)
  if v == nil then return nil end
  if type(v) ~= "string" or v == "" or v:find(".", 1, true) then
    error(("nn.%s: name: expected a non-empty string without '.', got %s"):format(ctor, describe(v)), 3)
  end
  return v
end

-- 2D convolution over (N, C, H, W); square kernel, stride, padding, dilation and groups.
function M.conv2d(args)
  args = check_args("conv2d", args, set("name", "in_channels", "out_channels", "kernel_size",
    "stride", "padding", "dilation", "groups", "bias"))
  local groups = positive("conv2d", "groups", args.groups == nil and 1 or args.groups)
  local layer = {
    "conv2d",
    name = name("conv2d", args.name),
    in_channels = positive("conv2d", "in_channels", args.in_channels),
    out_channels = positive("conv2d", "out_channels", args.out_channels),
    kernel_size = positive("conv2d", "kernel_size", args.kernel_size),
    stride = positive("conv2d", "stride", args.stride == nil and 1 or args.stride),
    padding = integer("conv2d", "padding", args.padding == nil and 0 or args.padding, 0,
      "a non-negative integer"),
    dilation = positive("conv2d", "dilation", args.dilation == nil and 1 or args.dilation),
    groups = groups,
    bias = boolean("conv2d", "bias", args.bias, true),
  }
  if layer.in_channels % groups ~= 0 or layer.out_channels % groups ~= 0 then
    error(("nn.conv2d: groups: in_channels (%d) and out_channels (%d) must be divisible by %d")
      :format(layer.in_channels, layer.out_channels, groups), 2)
  end
  return layer
end

-- Batch normalization over (N, C, H, W): running statistics, eps and momentum as PyTorch's.
function M.batch_norm2d(args)
  args = check_args("batch_norm2d", args, set("name", "num_features", "eps", "momentum"))
  local eps = args.eps == nil and 1e-5 or args.eps
  local momentum = args.momentum == nil and 0.1 or args.momentum
  if type(eps) ~= "number" or not (eps > 0) then
    error(("nn.batch_norm2d: eps: expected a positive number, got %s"):format(describe(eps)), 2)
  end
  if type(momentum) ~= "number" or not (momentum >= 0 and momentum <= 1) then
    error(("nn.batch_norm2d: momentum: expected a number in [0, 1], got %s")
      :format(describe(momentum)), 2)
  end
  return {
    "batch_norm2d",
    name = name("batch_norm2d", args.name),
    num_features = positive("batch_norm2d", "num_features", args.num_features),
    eps = eps,
    momentum = momentum,
  }
end

-- Fully connected layer over (N, F).
function M.linear(args)
  args = check_args("linear", args, set("name", "in_features", "out_features", "bias"))
  return {
    "linear",
    name = name("linear", args.name),
    in_features = positive("linear", "in_features", args.in_features),
    out_features = positive("linear", "out_features", args.out_features),
    bias = boolean("linear", "bias", args.bias, true),
  }
end

function M.relu(args)
  args = check_args("relu", args, set("name"))
  return { "relu", name = name("relu", args.name) }
end

function M.leaky_relu(args)
  args = check_args("leaky_relu", args, set("name", "negative_slope"))
  local slope = args.negative_slope == nil and 0.01 or args.negative_slope
  if type(slope) ~= "number" then
    error(("nn.leaky_relu: negative_slope: expected a number, got %s"):format(describe(slope)), 2)
  end
  return { "leaky_relu", name = name("leaky_relu", args.name), negative_slope = slope }
end

-- GELU, the exact (erf) form: PyTorch's approximate = "none".
function M.gelu(args)
  args = check_args("gelu", args, set("name"))
  return { "gelu", name = name("gelu", args.name) }
end

function M.identity(args)
  args = check_args("identity", args, set("name"))
  return { "identity", name = name("identity", args.name) }
end

-- Pooling with a square window; stride defaults to the window (non-overlapping).
local function pool(ctor, args, extra)
  args = check_args(ctor, args, set("name", "kernel_size", "stride", "padding"))
  local k = positive(ctor, "kernel_size", args.kernel_size)
  local layer = {
    ctor,
    name = name(ctor, args.name),
    kernel_size = k,
    stride = positive(ctor, "stride", args.stride == nil and k or args.stride),
    padding = integer(ctor, "padding", args.padding == nil and 0 or args.padding, 0,
      "a non-negative integer"),
  }
  if 2 * layer.padding > k then
    error(("nn.%s: padding: expected at most half the kernel_size (%d), got %d")
      :format(ctor, k, layer.padding), 3)
  end
  return layer
end

function M.max_pool2d(args) return pool("max_pool2d", args) end

-- Average pooling; the padding counts in the average (PyTorch's count_include_pad = true).
function M.avg_pool2d(args) return pool("avg_pool2d", args) end

-- (N, C, H, W) -> (N, C, 1, 1), the mean of each plane: nn.AdaptiveAvgPool2d((1, 1)).
function M.global_avg_pool2d(args)
  args = check_args("global_avg_pool2d", args, set("name"))
  return { "global_avg_pool2d", name = name("global_avg_pool2d", args.name) }
end

function M.adaptive_avg_pool2d(args)
  args = check_args("adaptive_avg_pool2d", args, set("name", "output_size"))
  if args.output_size ~= nil and args.output_size ~= 1 then
    error(("nn.adaptive_avg_pool2d: output_size: only 1 is supported, got %s")
      :format(describe(args.output_size)), 2)
  end
  return { "global_avg_pool2d", name = name("adaptive_avg_pool2d", args.name) }
end

-- Zeroes each activation with probability p in training (scaling the rest by 1/(1-p)).
function M.dropout(args)
  args = check_args("dropout", args, set("name", "p"))
  local p = args.p == nil and 0.5 or args.p
  if type(p) ~= "number" or not (p >= 0 and p < 1) then
    error(("nn.dropout: p: expected a number in [0, 1), got %s"):format(describe(p)), 2)
  end
  return { "dropout", name = name("dropout", args.name), p = p }
end

-- (N, C, H, W) -> (N, C*H*W).
function M.flatten(args)
  args = check_args("flatten", args, set("name"))
  return { "flatten", name = name("flatten", args.name) }
end

local function is_layer(v)
  return type(v) == "table" and type(v[1]) == "string"
end

-- A list of layers (the array part of args), checked; names must be unique within it.
local function layer_list(ctor, what, list, level)
  if type(list) ~= "table" then
    error(("nn.%s: %s: expected a list of layers, got %s"):format(ctor, what, describe(list)),
      level)
  end
  local layers, seen = {}, {}
  for k in next, list do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      error(("nn.%s: %s: expected a list of layers, got key %s"):format(ctor, what,
        describe(k)), level)
    end
  end
  for i = 1, #list do
    local layer = list[i]
    if not is_layer(layer) then
      error(("nn.%s: layer %d: expected a layer (a table from nn.*), got %s"):format(
        ctor, i, describe(layer)), level)
    end
    if layer.name ~= nil then
      if seen[layer.name] then
        error(("nn.%s: layer %d: duplicate name %q (also layer %d)"):format(
          ctor, i, layer.name, seen[layer.name]), level)
      end
      seen[layer.name] = i
    end
    layers[i] = layer
  end
  return layers
end

-- Layers in order: nn.sequential{ name = "layer1", nn.conv2d{...}, nn.relu(), ... }.
-- A model is a sequential; inside a model a named sequential prefixes its children's names
-- ("layer1" + "0" + "conv1" -> parameters "layer1.0.conv1.weight"), like torchvision.
function M.sequential(args)
  if type(args) ~= "table" then
    error(("nn.sequential: expected a table of layers, got %s"):format(describe(args)), 2)
  end
  local list = {}
  for k, v in next, args do
    if k ~= "name" and math.type(k) ~= "integer" then
      error(("nn.sequential: unknown argument %s"):format(
        type(k) == "string" and ("'" .. k .. "'") or describe(k)), 2)
    end
    if k ~= "name" then list[k] = v end
  end
  if #list == 0 then error("nn.sequential: expected at least one layer", 2) end
  return { "sequential", name = name("sequential", args.name),
           layers = layer_list("sequential", "layers", list, 3) }
end

-- y = relu(body(x) + shortcut(x)): torchvision's BasicBlock, whose downsample is the shortcut.
-- shortcut = nil is the identity; relu = false leaves the sum as it is.
function M.residual(args)
  args = check_args("residual", args, set("name", "body", "shortcut", "relu"))
  if args.body == nil or (type(args.body) == "table" and #args.body == 0) then
    error("nn.residual: body: expected a non-empty list of layers", 2)
  end
  return {
    "residual",
    name = name("residual", args.name),
    body = layer_list("residual", "body", args.body, 3),
    shortcut = args.shortcut ~= nil and layer_list("residual", "shortcut", args.shortcut, 3) or nil,
    relu = boolean("residual", "relu", args.relu, true),
  }
end

return M
