"""Starting from saved weights: a run's model.safetensors loads by name into a model whose head
has another shape (strict = false keeps the model's head and says so), strict loading refuses
it naming the tensor and both shapes, and the loaded tensors really are the file's."""
import json
import os
import struct

from common import check, finish, read_safetensors, run, small_recipe, tempdir, write

tmp = tempdir()
base = write(tmp, "base.lua", small_recipe(epochs=1, limit=256, test_limit=64))
p = run([base, "--out", os.path.join(tmp, "pre")])
check(p.returncode == 0, f"pre-training run: {p.stderr}")
weights = os.path.join(tmp, "pre", "model.safetensors")

# A 12-way head on 10-class data: every tensor but fc2 comes from the file.
tune = write(tmp, "tune.lua", f"""
local models = import "lib.models"
return extend(import "base", {{
  model = models.mnist_cnn{{ classes = 12 }},
  weights = {{ file = "pre/model.safetensors", strict = false }},
  optimizer = {{ "sgd", lr = 0.0 }},
}})
""")
out = os.path.join(tmp, "tuned")
p = run([tune, "--out", out])
check(p.returncode == 0, f"non-strict run: {p.stderr}")
check("loaded 6 of 8 model parameters" in p.stdout and "fc2.weight [10, 128] in the file, "
      "[12, 128] in the model" in p.stdout, f"report: {p.stdout!r}")
if p.returncode == 0:
    # lr 0 (and no weight decay): the saved weights are the loaded ones, bit for bit
    h0, d0 = read_safetensors(weights)
    h1, d1 = read_safetensors(os.path.join(out, "model.safetensors"))
    for name in ["conv1.weight", "conv2.bias", "fc1.weight"]:
        a, b = h0[name]["data_offsets"], h1[name]["data_offsets"]
        check(d0[a[0]:a[1]] == d1[b[0]:b[1]], f"{name} loaded from the file")
    check(h1["fc2.weight"]["shape"] == [12, 128], "the model keeps its own head")

p = run([tune, "--out", os.path.join(tmp, "strict"), "--set", "weights.strict=true"])
check(p.returncode == 1 and 'tensor "fc2.weight": shape [10, 128] in the file, [12, 128] in the '
      "model" in p.stderr and len(p.stderr.splitlines()) == 1, f"strict: {p.stderr!r}")
check(not os.path.exists(os.path.join(tmp, "strict")), "nothing written on a strict mismatch")
p = run([tune, "--out", os.path.join(tmp, "nofile"), "--set", 'weights.file="missing.safetensors"'])
check(p.returncode == 1 and "weights.file:" in p.stderr and "missing.safetensors" in p.stderr,
      f"missing file: {p.stderr!r}")
finish("e2e_weights")
