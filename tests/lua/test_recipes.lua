-- LuaUnit suite for recipes/lib (nn, models) and the sandbox helpers (slice, extend), run through
-- the real sandbox by lua_harness: `sandbox.run(path)` returns the recipe tree as a table.
local lu = require "luaunit"
local sandbox = require "sandbox"

local FIX = sandbox.fixtures .. "/"

-- Writes text to a temporary recipe file and runs it.
local function run_text(text, limits)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  local tree, err = sandbox.run(path, limits)
  os.remove(path)
  return tree, err
end

-- Runs a recipe that must load; returns its tree.
local function load_ok(text)
  local tree, err = run_text(text)
  lu.assertNotNil(tree, err)
  return tree
end

-- Runs a recipe that must fail; returns the error message (one line).
local function load_err(text)
  local tree, err = run_text(text)
  lu.assertNil(tree)
  lu.assertIsString(err)
  lu.assertNotStrContains(err, "\n")
  return err
end

local NN = 'local nn = import "lib.nn"\n'
local MODELS = 'local models = import "lib.models"\n'

-- models.mnist_cnn --------------------------------------------------------------------------

TestMnistCnn = {}

function TestMnistCnn:test_structure_and_names()
  local tree = assert(sandbox.run(FIX .. "mnist.lua"))
  local m = tree.model
  lu.assertEquals(m[1], "sequential")
  lu.assertEquals(m.name, "mnist_cnn")
  local types, names = {}, {}
  for i, layer in ipairs(m.layers) do
    types[i] = layer[1]
    names[i] = layer.name or ""
  end
  lu.assertEquals(types, { "conv2d", "relu", "conv2d", "relu", "max_pool2d", "dropout",
                           "flatten", "linear", "relu", "dropout", "linear" })
  lu.assertEquals(names, { "conv1", "", "conv2", "", "", "dropout1", "", "fc1", "", "dropout2",
                           "fc2" })
  lu.assertEquals(m.layers[1], { "conv2d", name = "conv1", in_channels = 1, out_channels = 32,
                                 kernel_size = 3, stride = 1, padding = 0, dilation = 1,
                                 groups = 1, bias = true })
  lu.assertEquals(m.layers[3], { "conv2d", name = "conv2", in_channels = 32, out_channels = 64,
                                 kernel_size = 3, stride = 1, padding = 0, dilation = 1,
                                 groups = 1, bias = true })
  lu.assertEquals(m.layers[5], { "max_pool2d", kernel_size = 2, stride = 2, padding = 0 })
  lu.assertEquals(m.layers[6].p, 0.25)
  lu.assertEquals(m.layers[8], { "linear", name = "fc1", in_features = 9216, out_features = 128,
                                 bias = true })
  lu.assertEquals(m.layers[10].p, 0.5)
  lu.assertEquals(m.layers[11], { "linear", name = "fc2", in_features = 128, out_features = 10,
                                  bias = true })
  lu.assertEquals(math.type(m.layers[8].in_features), "integer")
end

function TestMnistCnn:test_options()
  local m = load_ok(MODELS .. "return { m = models.mnist_cnn{ classes = 3, in_channels = 3, "
                    .. "image_size = 32, name = 'cifar_cnn' } }").m
  lu.assertEquals(m.name, "cifar_cnn")
  lu.assertEquals(m.layers[1].in_channels, 3)
  lu.assertEquals(m.layers[8].in_features, 64 * 14 * 14)
  lu.assertEquals(m.layers[11].out_features, 3)
  -- No arguments: the MNIST defaults.
  local d = load_ok(MODELS .. "return { m = models.mnist_cnn() }").m
  lu.assertEquals(d.layers[11].out_features, 10)
  lu.assertEquals(d.layers[1].in_channels, 1)
end

function TestMnistCnn:test_argument_errors_point_at_the_recipe()
  lu.assertStrContains(load_err(MODELS .. "\nreturn { m = models.mnist_cnn{ classes = 0 } }"),
    ":3: models.mnist_cnn: classes: expected an integer >= 1, got number 0")
  lu.assertStrContains(load_err(MODELS .. "return { m = models.mnist_cnn{ clases = 10 } }"),
    ":2: models.mnist_cnn: unknown argument 'clases'")
  lu.assertStrContains(load_err(MODELS .. "return { m = models.mnist_cnn{ image_size = 4 } }"),
    ":2: models.mnist_cnn: image_size: expected an integer >= 6, got number 4")
end

function TestMnistCnn:test_relative_module_using_the_library()
  local tree = assert(sandbox.run(FIX .. "uses_helpers.lua"))
  lu.assertEquals(tree.model.layers[11].out_features, 3)
  lu.assertTrue(tree.same)
end

-- nn constructors ---------------------------------------------------------------------------

TestNn = {}

function TestNn:test_defaults()
  local t = load_ok(NN .. [[
return {
  conv = nn.conv2d{ in_channels = 1, out_channels = 8, kernel_size = 5 },
  conv_nb = nn.conv2d{ name = "c", in_channels = 2, out_channels = 4, kernel_size = 3,
                       stride = 2, padding = 1, bias = false },
  fc = nn.linear{ name = "fc", in_features = 4, out_features = 2 },
  pool = nn.max_pool2d{ kernel_size = 3 },
  pool2 = nn.max_pool2d{ kernel_size = 3, stride = 1 },
  drop = nn.dropout(),
  drop0 = nn.dropout{ p = 0 },
  relu = nn.relu(),
  flat = nn.flatten(),
  seq = nn.sequential{ nn.flatten(), nn.relu() },
}]])
  lu.assertEquals(t.conv, { "conv2d", in_channels = 1, out_channels = 8, kernel_size = 5,
                            stride = 1, padding = 0, dilation = 1, groups = 1, bias = true })
  lu.assertEquals(t.conv_nb, { "conv2d", name = "c", in_channels = 2, out_channels = 4,
                               kernel_size = 3, stride = 2, padding = 1, dilation = 1, groups = 1,
                               bias = false })
  lu.assertEquals(t.fc, { "linear", name = "fc", in_features = 4, out_features = 2, bias = true })
  lu.assertEquals(t.pool, { "max_pool2d", kernel_size = 3, stride = 3, padding = 0 })
  lu.assertEquals(t.pool2, { "max_pool2d", kernel_size = 3, stride = 1, padding = 0 })
  lu.assertEquals(t.drop, { "dropout", p = 0.5 })
  lu.assertEquals(t.drop0, { "dropout", p = 0 })
  lu.assertEquals(t.relu, { "relu" })
  lu.assertEquals(t.flat, { "flatten" })
  lu.assertEquals(t.seq, { "sequential", layers = { { "flatten" }, { "relu" } } })
end

function TestNn:test_argument_errors()
  local cases = {
    { "nn.conv2d{ in_channels = 1, out_channels = 0, kernel_size = 3 }",
      "nn.conv2d: out_channels: expected a positive integer, got number 0" },
    { "nn.conv2d{ in_channels = 1, out_channels = 4, kernel_size = 2.5 }",
      "nn.conv2d: kernel_size: expected a positive integer, got number 2.5" },
    { "nn.conv2d{ in_channels = '3', out_channels = 4, kernel_size = 3 }",
      'nn.conv2d: in_channels: expected a positive integer, got string "3"' },
    { "nn.conv2d{ in_channels = 1, kernel_size = 3 }",
      "nn.conv2d: out_channels: expected a positive integer, got nil" },
    { "nn.conv2d{ in_channels = 1, out_chanels = 4, kernel_size = 3 }",
      "nn.conv2d: unknown argument 'out_chanels'" },
    { "nn.conv2d{ in_channels = 1, out_channels = 4, kernel_size = 3, padding = -1 }",
      "nn.conv2d: padding: expected a non-negative integer, got number -1" },
    { "nn.conv2d(3)", "nn.conv2d: expected a table of arguments, got number 3" },
    { "nn.linear{ in_features = 4, out_features = 2, bias = 'yes' }",
      'nn.linear: bias: expected a boolean, got string "yes"' },
    { "nn.linear{ name = 'a.b', in_features = 4, out_features = 2 }",
      "nn.linear: name: expected a non-empty string without '.', got string \"a.b\"" },
    { "nn.max_pool2d{ kernel_size = 0 }",
      "nn.max_pool2d: kernel_size: expected a positive integer, got number 0" },
    { "nn.dropout{ p = 1 }", "nn.dropout: p: expected a number in [0, 1), got number 1" },
    { "nn.dropout{ rate = 0.1 }", "nn.dropout: unknown argument 'rate'" },
    { "nn.relu{ inplace = true }", "nn.relu: unknown argument 'inplace'" },
    { "nn.sequential{ nn.relu{ name = 'a' }, nn.flatten{ name = 'a' } }",
      'nn.sequential: layer 2: duplicate name "a" (also layer 1)' },
    { "nn.sequential{ nn.relu(), 42 }",
      "nn.sequential: layer 2: expected a layer (a table from nn.*), got number 42" },
    { "nn.sequential{ nn.relu(), layers = {} }", "nn.sequential: unknown argument 'layers'" },
  }
  for _, case in ipairs(cases) do
    local err = load_err(NN .. "local x = 1\nreturn { layer = " .. case[1] .. " }\n")
    -- Line 3 is the recipe's line, not a line inside nn.lua.
    lu.assertStrContains(err, ":3: " .. case[2])
  end
end

-- slice and extend --------------------------------------------------------------------------

TestHelpers = {}

function TestHelpers:test_slice()
  local t = load_ok("return { lr = slice(1e-5, 1e-3), same = slice(0.1, 0.1) }")
  lu.assertEquals(t.lr, { "slice", 1e-5, 1e-3 })
  lu.assertEquals(t.same, { "slice", 0.1, 0.1 })
  lu.assertStrContains(load_err("local a = 1\nreturn { lr = slice('a', 1) }"),
    ":2: slice: lo: expected a number, got string \"a\"")
  lu.assertStrContains(load_err("return { lr = slice(1e-3) }"),
    ":1: slice: hi: expected a number, got nil")
  lu.assertStrContains(load_err("return { lr = slice(1, 0.1) }"),
    ":1: slice: lo (1) must not exceed hi (0.1)")
end

function TestHelpers:test_extend_merges_and_replaces()
  local t = assert(sandbox.run(FIX .. "derived.lua"))
  lu.assertEquals(t.seed, 4)
  -- Named fields merge recursively ...
  lu.assertEquals(t.data.batch_size, 32)
  lu.assertEquals(t.data.normalize, { mean = { 0.1307 }, std = { 0.25 } })
  lu.assertEquals(t.optimizer, { "sgd", lr = 0.01, momentum = 0.9 })
  -- ... arrays are replaced, not merged item by item.
  lu.assertEquals(t.stages, { { epochs = 2 }, { epochs = 5, lr = { "slice", 1e-4, 1e-2 } } })
  -- Untouched keys come from the base.
  lu.assertEquals(t.model.name, "tiny")
end

function TestHelpers:test_extend_copies()
  local t = load_ok([[
local base = { opt = { "sgd", lr = 0.1 }, list = { 1, 2, 3 }, deep = { a = { b = 1 } } }
local plain = extend(base)
local d = extend(base, { opt = { "adam", lr = 1e-3 }, list = { 9 }, deep = { a = { c = 2 } } })
d.deep.a.b = 100           -- the copy is deep: base stays as it was
plain.list[1] = 7
return { base = base, d = d, plain_is_copy = plain ~= base }
]])
  lu.assertEquals(t.base, { opt = { "sgd", lr = 0.1 }, list = { 1, 2, 3 }, deep = { a = { b = 1 } } })
  lu.assertEquals(t.d, { opt = { "adam", lr = 1e-3 }, list = { 9 }, deep = { a = { b = 100, c = 2 } } })
  lu.assertTrue(t.plain_is_copy)
  lu.assertStrContains(load_err("local r = extend(nil, {})\nreturn r"),
    ":1: extend: base: expected a table, got nil")
  -- A tail call leaves no recipe line on the stack: the error then names the file.
  local err = load_err("return extend(nil, {})")
  lu.assertStrContains(err, ": extend: base: expected a table, got nil")
  lu.assertNotStrContains(err, "runner")
  lu.assertStrContains(load_err("local r = extend({}, 5)\nreturn r"),
    ":1: extend: overrides: expected a table, got number 5")
end

-- The tree through the sandbox ----------------------------------------------------------------

TestRoundTrip = {}

local function round_trip(path)
  local tree = assert(sandbox.run(path))
  local text = assert(sandbox.write_lua(path))
  lu.assertStrContains(text, "return {")
  local back, err = run_text(text)
  lu.assertNotNil(back, err)
  lu.assertEquals(back, tree)
  -- Writing is deterministic.
  local again = os.tmpname()
  local f = assert(io.open(again, "w"))
  f:write(text)
  f:close()
  lu.assertEquals(sandbox.write_lua(again), text)
  os.remove(again)
  return tree, back
end

local function same_number_types(a, b, path)
  for k, v in pairs(a) do
    local p = path .. "." .. tostring(k)
    if type(v) == "table" then
      same_number_types(v, b[k], p)
    elseif type(v) == "number" then
      lu.assertEquals(math.type(b[k]), math.type(v), p)
    end
  end
end

function TestRoundTrip:test_mnist_recipe()
  local tree, back = round_trip(FIX .. "mnist.lua")
  same_number_types(tree, back, "")
  lu.assertEquals(math.type(back.data.batch_size), "integer")
  lu.assertEquals(math.type(back.loss.label_smoothing), "float")
  lu.assertEquals(back.stages[3].lr, { "slice", 1e-5, 1e-3 })
end

function TestRoundTrip:test_derived_recipe()
  round_trip(FIX .. "derived.lua")
end

function TestRoundTrip:test_awkward_values()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[return { s = "line\nbreak \"quoted\" \\ \0011 tab\t", ["not a name"] = 1,
    ["end"] = 2, big = math.maxinteger, small = math.mininteger, third = 1 / 3,
    huge = 1e308, tiny = 5e-324, neg = -0.0, three = 3.0, utf = "grüße" }]])
  f:close()
  local tree, back = round_trip(path)
  os.remove(path)
  same_number_types(tree, back, "")
  lu.assertEquals(back.s, "line\nbreak \"quoted\" \\ \0011 tab\t")
  lu.assertEquals(back.small, math.mininteger)
  lu.assertEquals(back.third, 1 / 3)
end

function TestRoundTrip:test_set_overrides()
  local t = assert(sandbox.set(FIX .. "mnist.lua", "optimizer.lr=0.1", "data.batch_size=64",
                               "stages[2].epochs=2", "schedule=nil", "device=cpu", "extra.new=1"))
  lu.assertEquals(t.optimizer.lr, 0.1)
  lu.assertEquals(t.optimizer[1], "sgd")
  lu.assertEquals(math.type(t.data.batch_size), "integer")
  lu.assertEquals(t.data.batch_size, 64)
  lu.assertEquals(t.stages[2].epochs, 2)
  lu.assertNil(t.schedule)
  lu.assertEquals(t.device, "cpu")
  lu.assertEquals(t.extra, { new = 1 })
  local tree, err = sandbox.set(FIX .. "mnist.lua", "seed.x=1")
  lu.assertNil(tree)
  lu.assertEquals(err, "--set seed.x=1: seed is a number, not a table")
end

-- Sandbox behaviour seen from recipes ----------------------------------------------------------

TestSandbox = {}

function TestSandbox:test_forbidden_and_unknown_globals()
  lu.assertStrContains(load_err("local x = 1\nreturn { t = os.time() }"),
    ":2: 'os' is not available in recipes")
  lu.assertStrContains(load_err("return { f = io }"), ":1: 'io' is not available in recipes")
  lu.assertStrContains(load_err("return { lr = learning_rate }"),
    ":1: unknown global 'learning_rate'")
  lu.assertStrContains(load_err("lr = 1\nreturn {}"), ":1: recipes may not set globals (use local)")
end

function TestSandbox:test_limits()
  lu.assertStrContains(load_err("while true do end"), "instruction budget of 50000000 exceeded")
  local _, err = run_text("local s = 'x'\nwhile true do s = s .. s end", { memory = 4 << 20 })
  lu.assertStrContains(err, ": memory limit of 4 MiB exceeded")
end

function TestSandbox:test_functions_in_the_tree()
  local t = load_ok("return { on_epoch_end = function() end }")
  lu.assertEquals(t.on_epoch_end, "<function>")
end

-- datasets.fashion_mnist ---------------------------------------------------------------------

TestDatasets = {}

function TestDatasets:test_classes_go_to_both_splits()
  local fm = load_ok('local d = import "lib.datasets"\n'
                     .. "return d.fashion_mnist{ classes = { 5, 6 }, limit = 10 }")
  lu.assertEquals(fm.train.classes, { 5, 6 })
  lu.assertEquals(fm.test.classes, { 5, 6 })
  lu.assertEquals(fm.train.limit, 10)
  lu.assertNil(fm.test.limit)
  local all = load_ok('local d = import "lib.datasets"\nreturn d.fashion_mnist()')
  lu.assertNil(all.train.classes)
  lu.assertNil(all.test.classes)
end

os.exit(lu.LuaUnit.run() == 0 and 0 or 1)
