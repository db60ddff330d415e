"""runner --evaluate: the weights a run wrote, loaded into the recipe's model and evaluated on the
validation and test sets, give the run's own final val/test loss and accuracy; on the (stand-in)
GPU too. Nothing is written. Bad input (a missing file, weights of another model, --out, a
recipe with nothing to evaluate) gets one line and a non-zero exit."""
import json
import os
import re

from common import check, finish, run, small_recipe, tempdir, write

tmp = tempdir()
recipe = write(tmp, "r.lua", small_recipe(epochs=1, limit=1024, test_limit=300).replace(
    "batch_size = 64,", "batch_size = 64, val_split = 0.1,"))
out = os.path.join(tmp, "run")
p = run([recipe, "--out", out, "--device", "cpu"])
check(p.returncode == 0, f"training: {p.stderr}")
final = json.load(open(os.path.join(out, "summary.json")))["final"]
weights = os.path.join(out, "model.safetensors")
LINE = re.compile(r"^(val|test): loss ([0-9.]+) acc ([0-9.]+) \((\d+) images in [0-9.]+ s, "
                  r"(\d+) images/s, (.+)\)$")


def evaluate(*extra, env=None):
    # run from tmp, so a default run directory (runs/...) would show in its listing too
    before = sorted(os.listdir(tmp))
    p = run([recipe, "--evaluate", weights, *extra], env=env, cwd=tmp)
    check(p.returncode == 0, f"evaluate {extra}: {p.stderr}")
    check(sorted(os.listdir(tmp)) == before, "--evaluate wrote nothing")
    got = {}
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if m:
            got[m.group(1)] = (float(m.group(2)), float(m.group(3)), int(m.group(4)), m.group(6))
    return got


got = evaluate("--device", "cpu")
check(set(got) == {"val", "test"}, f"a line per set: {got}")
for name in got:
    loss, acc, n, device = got[name]
    check(abs(loss - final[f"{name}.loss"]) <= 5e-7 and abs(acc - final[f"{name}.acc"]) <= 5e-5,
          f"{name}: evaluated {loss} {acc}, the run ended with {final[f'{name}.loss']} "
          f"{final[f'{name}.acc']}")
check(got.get("test", (0, 0, 0))[2] == 300 and got.get("val", (0, 0, 0))[2] == 102,
      f"images per set: {got}")
print("cpu:", got)
if os.environ.get("RN_FAKE_CUDA_DIR"):
    dev = evaluate("--device", "cuda", env={"RUNNER_BACKEND_DIR": os.environ["RN_FAKE_CUDA_DIR"]})
    check({k: v[:3] for k, v in dev.items()} == {k: v[:3] for k, v in got.items()} and
          all(v[3].startswith("CPU stand-in GPU") for v in dev.values()),
          f"on the device: {dev} against {got}")


def refused(name, args, want, code=1):
    before = sorted(os.listdir(tmp))
    p = run(args)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode == code and len(lines) == 1 and want in lines[0],
          f"{name}: {p.returncode} {lines}")
    check(sorted(os.listdir(tmp)) == before, f"{name}: nothing written")


refused("missing", [recipe, "--evaluate", os.path.join(tmp, "nope.safetensors")],
        "--evaluate: ")
other = write(tmp, "other.lua", small_recipe(epochs=1, limit=256, test_limit=64).replace(
    "models.mnist_cnn{ classes = 10 }", "models.resnet8{ in_channels = 1, classes = 10 }"))
refused("another model", [other, "--evaluate", weights], "--evaluate: ")
refused("--out", [recipe, "--evaluate", weights, "--out", os.path.join(tmp, "x")],
        "--evaluate writes nothing and trains nothing: give it no --out", code=2)
bare = write(tmp, "bare.lua", small_recipe(epochs=1, limit=256).replace(
    "test = fm.test, ", ""))
refused("no sets", [bare, "--evaluate", weights],
        "data: nothing to evaluate (no data.test and no data.val_split)")
finish("e2e_evaluate")
