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

-- 2D convolution over (N, C, H, W); square kernel, stride and padding.
function M.conv2d(args)
  args = check_args("conv2d", args,
    set("name", "in_channels", "out_channels", "kernel_size", "stride", "padding", "bias"))
  return {
    "conv2d",
    name = name("conv2d", args.name),
    in_channels = positive("conv2d", "in_channels", args.in_channels),
    out_channels = positive("conv2d", "out_channels", args.out_channels),
    kernel_size = positive("conv2d", "kernel_size", args.kernel_size),
    stride = positive("conv2d", "stride", args.stride == nil and 1 or args.stride),
    padding = integer("conv2d", "padding", args.padding == nil and 0 or args.padding, 0,
      "a non-negative integer"),
    bias = boolean("conv2d", "bias", args.bias, true),
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

-- Max pooling with a square window; stride defaults to the window (non-overlapping).
function M.max_pool2d(args)
  args = check_args("max_pool2d", args, set("name", "kernel_size", "stride"))
  local k = positive("max_pool2d", "kernel_size", args.kernel_size)
  return {
    "max_pool2d",
    name = name("max_pool2d", args.name),
    kernel_size = k,
    stride = positive("max_pool2d", "stride", args.stride == nil and k or args.stride),
  }
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

-- Layers in order: nn.sequential{ name = "net", nn.conv2d{...}, nn.relu(), ... }.
function M.sequential(args)
  if type(args) ~= "table" then
    error(("nn.sequential: expected a table of layers, got %s"):format(describe(args)), 2)
  end
  local layers, seen = {}, {}
  for k, v in next, args do
    if k ~= "name" and math.type(k) ~= "integer" then
      error(("nn.sequential: unknown argument %s"):format(
        type(k) == "string" and ("'" .. k .. "'") or describe(k)), 2)
    end
  end
  local n = 0
  for _ in next, args do n = n + 1 end
  if args.name ~= nil then n = n - 1 end
  for i = 1, n do
    local layer = args[i]
    if type(layer) ~= "table" or (type(layer[1]) ~= "string" and layer.kind == nil) then
      error(("nn.sequential: layer %d: expected a layer (a table from nn.*), got %s"):format(
        i, describe(layer)), 2)
    end
    if layer.name ~= nil then
      if seen[layer.name] then
        error(("nn.sequential: layer %d: duplicate name %q (also layer %d)"):format(
          i, layer.name, seen[layer.name]), 2)
      end
      seen[layer.name] = i
    end
    layers[i] = layer
  end
  return { kind = "sequential", name = name("sequential", args.name), layers = layers }
end

return M
