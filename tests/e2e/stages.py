"""Stages that freeze and unfreeze: `train` leaves every other parameter exactly as it was,
slice(lo, hi) spreads the lr log-evenly over the groups in model order, a group that joins
ramps its lr up over unfreeze_warmup_steps, data.val_split adds val.* metrics from a held-out
part of the training data, and a `train` entry that matches nothing is refused before anything
is written."""
import csv
import json
import os

from common import check, finish, read_safetensors, run, small_recipe, tempdir, write

tmp = tempdir()
GROUPS = 'groups = { features = { "conv*" }, hidden = "fc1.*", head = "fc2.*" },'
base = small_recipe(epochs=1, limit=512, test_limit=128, schedule='{ "constant" }',
                    optimizer='{ "sgd", lr = 0.05, momentum = 0.9 }', extra=GROUPS)
base = base.replace("epochs = 1,\n", "")


def recipe(name, stages, data_extra=""):
    text = base.replace("  callbacks =", f"  stages = {stages},\n  callbacks =")
    text = text.replace("batch_size = 64,", "batch_size = 64, " + data_extra)
    return write(tmp, name, text)


def tensors(out):
    h, d = read_safetensors(os.path.join(tmp, out, "model.safetensors"))
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items()
            if k != "__metadata__"}


# Initial weights: a run at lr 0 changes nothing.
p = run([recipe("init.lua", "{ { epochs = 1, lr = 0 } }"), "--out", os.path.join(tmp, "init")])
check(p.returncode == 0, f"lr 0: {p.stderr}")
# Head only, by group name; then the hidden layer by pattern too.
p1 = run([recipe("head.lua", "{ { epochs = 1, train = 'head' } }"), "--out",
          os.path.join(tmp, "head")])
p2 = run([recipe("two.lua", "{ { epochs = 1, train = { 'head', 'fc1.*' } } }"), "--out",
          os.path.join(tmp, "two")])
check(p1.returncode == 0 and p2.returncode == 0, f"frozen runs: {p1.stderr} {p2.stderr}")
if p.returncode == 0 and p1.returncode == 0 and p2.returncode == 0:
    t0, t1, t2 = tensors("init"), tensors("head"), tensors("two")
    for k in t0:
        frozen1, frozen2 = not k.startswith("fc2."), k.startswith("conv")
        check((t1[k] == t0[k]) == frozen1, f"head only: {k} {'kept' if frozen1 else 'trained'}")
        check((t2[k] == t0[k]) == frozen2, f"head + fc1: {k} {'kept' if frozen2 else 'trained'}")
    rows = list(csv.DictReader(open(os.path.join(tmp, "head", "metrics.csv"))))
    check(float(rows[0]["lr.features"]) == 0 and float(rows[0]["lr.head"]) == 0.05,
          f"frozen groups log lr 0: {rows[0]}")

# slice(1e-4, 1e-2) over three groups: 1e-4, 1e-3, 1e-2 in model order; then the features join
# with a 40-step ramp (8 steps per epoch here: after one epoch they are at 8/40 of their lr).
p = run([recipe("slice.lua", "{ { epochs = 1, train = { 'head', 'hidden' }, lr = 1e-3 }, "
                "{ epochs = 1, train = 'all', lr = slice(1e-4, 1e-2), "
                "unfreeze_warmup_steps = 40 } }"), "--out", os.path.join(tmp, "slice")])
check(p.returncode == 0, f"slice: {p.stderr}")
if p.returncode == 0:
    rows = list(csv.DictReader(open(os.path.join(tmp, "slice", "metrics.csv"))))
    last = rows[-1]
    steps = int(last["step"]) - int(rows[0]["step"])
    check(abs(float(last["lr.hidden"]) - 1e-3) < 1e-12 and
          abs(float(last["lr.head"]) - 1e-2) < 1e-12, f"slice lrs: {last}")
    want = 1e-4 * steps / 40
    check(abs(float(last["lr.features"]) - want) < 1e-9, f"ramp: {last['lr.features']} vs {want}")

# A validation split: stratified 10% of the 512 training samples.
p = run([recipe("val.lua", "{ { epochs = 1 } }", "val_split = 0.1,"), "--out",
         os.path.join(tmp, "val")])
check(p.returncode == 0 and "(461 train / 128 test images" in p.stdout, f"val split: {p.stdout}")
if p.returncode == 0:
    rows = list(csv.DictReader(open(os.path.join(tmp, "val", "metrics.csv"))))
    check(0 <= float(rows[-1]["val.acc"]) <= 1 and float(rows[-1]["val.loss"]) > 0, "val.* logged")
    best = json.load(open(os.path.join(tmp, "val", "summary.json")))["best"]
    check("val.acc" in best, f"best epoch by val.acc: {best}")

# Bad input: one line, exit 1, nothing written.
out = os.path.join(tmp, "bad")
p = run([recipe("bad.lua", "{ { epochs = 1, train = { 'head', 'layer4.*' } } }"), "--out", out])
check(p.returncode == 1 and 'stages[1].train[2]: "layer4.*" is no parameter group and matches no '
      "parameter (groups: " in p.stderr and "hidden" in p.stderr and "features" in p.stderr
      and "modules: conv1, conv2, fc1, fc2" in p.stderr and len(p.stderr.splitlines()) == 1,
      f"unknown train pattern: {p.stderr!r}")
check(not os.path.exists(out), "nothing written for a bad train pattern")
finish("e2e_stages")
