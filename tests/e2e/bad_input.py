"""Every kind of bad input gets one clear line on stderr, a non-zero exit, and no run directory."""
import gzip
import os
import struct

from common import check, finish, run, small_recipe, tempdir, write

tmp = tempdir()
good = small_recipe(epochs=1, limit=256, test_limit=128)


def expect_error(name, args, *needles, env=None, recipe_text=None, out=None):
    """Runs the runner; checks exit != 0, exactly one stderr line containing every needle, and that
    the run directory was not created."""
    recipe = write(tmp, f"{name}/recipe.lua", recipe_text if recipe_text is not None else good)
    out = out or os.path.join(tmp, name, "run")
    p = run([recipe, "--out", out] + args, env=env)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode != 0, f"{name}: exit {p.returncode}")
    check(len(lines) == 1, f"{name}: expected one stderr line, got {lines}")
    msg = lines[0] if lines else ""
    for n in needles:
        check(n in msg, f"{name}: {n!r} not in {msg!r}")
    if out.endswith("/run"):
        check(not os.path.exists(out), f"{name}: run dir created despite the error")
    print(f"{name}: {msg}")


# Lua: syntax error with file:line; forbidden globals; endless loop; non-table.
expect_error("syntax", [], "recipe.lua:2:", recipe_text="return {\n  seed = 1,,\n}\n")
expect_error("os", [], "recipe.lua:1:", "'os'", recipe_text='os.execute("true")\nreturn {}\n')
expect_error("io", [], "'io'", recipe_text='local f = io.open("/etc/passwd")\nreturn {}\n')
expect_error("require", [], "'require'", recipe_text='local x = require("os")\nreturn {}\n')
expect_error("load", [], "'load'", recipe_text='local f = load("return 1")\nreturn {}\n')
expect_error("endless", [], "recipe.lua:1:", "budget",
             recipe_text="while true do end\nreturn {}\n")
expect_error("not_table", [], "expected the recipe to return a table",
             recipe_text="return 42\n")
# The C pattern matcher runs outside the instruction budget: a wall-clock limit catches it.
expect_error("pattern", [], "recipe.lua", "longer than 2 s",
             recipe_text='local s = string.rep("a", 3000):find(".-.-.-.-b")\nreturn {}\n',
             env={"RUNNER_RECIPE_SECONDS": "2"})
# A table shared 2^30 times over would be copied 2^30 times: the conversion has a node cap.
expect_error("shared_tables", [], "more than 1000000 values",
             recipe_text="local t = {1}\nfor i = 1, 30 do t = {t, t} end\nreturn {x = t}\n")

# Plugins: unknown id lists what exists; settings: type, range, unknown key.
expect_error("unknown_plugin", ["--set", 'optimizer[1]="sgdd"'],
             'unknown optimizer "sgdd" (available: ', "adamw", "sgd)")
expect_error("wrong_type", ["--set", 'optimizer.lr="fast"'],
             'optimizer.lr: expected a number', 'got string "fast"')
expect_error("out_of_range", ["--set", "optimizer.momentum=1.5"],
             "optimizer.momentum: expected a number in [0", "1.5")
expect_error("unknown_setting", ["--set", "optimizer.nesterovv=true"],
             "optimizer.nesterovv: unknown setting", "sgd")
expect_error("unknown_key", ["--set", "epochz=3"], "epochz: unknown recipe key")
expect_error("batch_type", ["--set", "data.batch_size=12.5"],
             "data.batch_size: expected an integer")
expect_error("callback_unknown", ["--set", 'callbacks[1]="progres"'],
             'callbacks[1]: unknown callback "progres"', "progress")
expect_error("device_cuda", ["--device", "cuda"], "device cuda: ")

# Settings the loader and augmentations would meet only after the run began are checked first.
expect_error("drop_last", ["--set", "data.drop_last=true", "--set", "data.batch_size=512"],
             "data.batch_size: 512 with data.drop_last = true leaves no batch")
expect_error("crop_size", [], "data.augment[1]", "random_crop", "size 30",
             recipe_text=small_recipe(epochs=1, limit=256, test_limit=128,
                                      augment='{ { "random_crop", size = 30 } }'))

# A schedule that turns momentum on for an optimizer made without a momentum buffer.
expect_error("cycle_momentum", [], "one_cycle", "momentum = 0", "optimizer.momentum",
             recipe_text=small_recipe(epochs=1, limit=256, test_limit=128,
                                      optimizer='{ "sgd", lr = 0.05 }',
                                      schedule='{ "one_cycle" }'))

# Model: shapes that do not chain name the layer and both shapes.
expect_error("bad_shape", ["--set", "model.layers[8].in_features=1000"],
             "model.layers[8] (linear fc1)", "1000", "9216")

# Data: missing, truncated and non-idx files name the path and the problem.
bad_images = os.path.join(tmp, "data", "missing-images.gz")
expect_error("missing_data", ["--set", f'data.train.images="{bad_images}"'],
             bad_images, "No such file")
trunc = os.path.join(tmp, "data", "trunc-images")
os.makedirs(os.path.dirname(trunc), exist_ok=True)
with open(trunc, "wb") as f:
    f.write(struct.pack(">IIII", 0x803, 100, 28, 28) + bytes(1000))
expect_error("truncated_data", ["--set", f'data.train.images="{trunc}"'], trunc, "truncated")
notidx = os.path.join(tmp, "data", "notidx.gz")
with gzip.open(notidx, "wb") as f:
    f.write(b"this is not an idx file at all" * 10)
expect_error("not_idx", ["--set", f'data.train.images="{notidx}"'], notidx, "not an idx")

# Plugin libraries: another ABI major, no entry symbol; both name the file.
bad = os.environ["RN_BAD_PLUGINS"]
expect_error("abi_major", [], os.path.join(bad, "abi2", "abi2.so"), "ABI major 2",
             env={"RUNNER_PLUGIN_PATH": os.path.join(bad, "abi2")})
expect_error("no_entry", [], os.path.join(bad, "no_entry", "no_entry.so"), "rn_plugin_entry",
             env={"RUNNER_PLUGIN_PATH": os.path.join(bad, "no_entry")})

# CLI: unknown option, bad --seed; an --out that already holds a run is refused, untouched.
expect_error("bad_option", ["--frobnicate"], "unknown option --frobnicate")
expect_error("bad_seed", ["--seed", "abc"], "--seed", "abc")
held = os.path.join(tmp, "held")
os.makedirs(held)
write(held, "summary.json", '{"status": "completed"}\n')
expect_error("out_exists", [], "already holds a run", out=held)
check(open(os.path.join(held, "summary.json")).read() == '{"status": "completed"}\n',
      "existing run left untouched")

finish("e2e_bad_input")
