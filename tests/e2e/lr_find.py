"""The LR finder stage: its sweep follows fastai's lr_find (lr per step, smoothed loss, the stop
on divergence, the suggestions, checked against fastai's own post-processing in
fastai_lr_find.py), a later stage can take a suggestion as its lr, and the sweep leaves no trace:
a run with a sweep before its training ends with the same weights, bit for bit, as the run
without it."""
import csv
import json
import math
import os
import statistics

from common import check, finish, read_safetensors, run, small_recipe, tempdir, write
from fastai_lr_find import suggestions

tmp = tempdir()
SGD = '{ "sgd", lr = 0.05, momentum = 0.9, weight_decay = 5e-4 }'
AUG = '{ { "hflip" } }'  # so the data position matters to what the augmentation does
fit = "{ name = 'fit', epochs = 1, lr = 0.05 }"
base = small_recipe(epochs=1, limit=1024, test_limit=128, optimizer=SGD, augment=AUG,
                    schedule='{ "constant" }').replace("epochs = 1,\n", "")


def recipe(name, stages):
    return write(tmp, name, base.replace("  callbacks =", f"  stages = {stages},\n  callbacks ="))


# 1. With and without a sweep (two of them, 40 steps each: more than the 16 batches of an epoch).
plain = recipe("plain.lua", "{ " + fit + " }")
swept = recipe("swept.lua", "{ { 'lr_find', steps = 40, repeats = 2, start_lr = 1e-5, end_lr = 1 }, "
               + fit + " }")
p0 = run([plain, "--out", os.path.join(tmp, "plain")])
p1 = run([swept, "--out", os.path.join(tmp, "swept")])
check(p0.returncode == 0 and p1.returncode == 0, f"runs: {p0.stderr} {p1.stderr}")
if p0.returncode == 0 and p1.returncode == 0:
    h0, d0 = read_safetensors(os.path.join(tmp, "plain", "model.safetensors"))
    h1, d1 = read_safetensors(os.path.join(tmp, "swept", "model.safetensors"))
    check(d0 == d1, "the sweep leaves weights, optimizer state and data position as they were")
    check("lr_find:" in p1.stdout and "valley" in p1.stdout and "lr_find.svg" in p1.stdout,
          f"printed: {p1.stdout!r}")

    out = os.path.join(tmp, "swept")
    summary = json.load(open(os.path.join(out, "summary.json")))
    lf = summary.get("lr_find", {})
    check(lf.get("repeats") == 2 and lf.get("steps") == 40, f"summary: {lf}")
    rows = list(csv.DictReader(open(os.path.join(out, "lr_find.csv"))))
    sweeps = [[r for r in rows if r["sweep"] == str(q)] for q in range(2)]
    check(all(len(s) >= 10 for s in sweeps), "both sweeps recorded")
    for s in sweeps:
        avg = 0.0
        for i, r in enumerate(s):
            lr, loss, smooth = float(r["lr"]), float(r["loss"]), float(r["smooth_loss"])
            want = 1e-5 * (1 / 1e-5) ** (i / 40)  # fastai: start * (end/start) ** (i / num_it)
            check(abs(lr - want) <= 1e-6 * want, f"lr of step {i}: {lr} vs {want}")
            if math.isfinite(loss):
                avg = 0.98 * avg + 0.02 * loss  # fastai's AvgSmoothLoss
                check(abs(smooth - avg / (1 - 0.98 ** (i + 1))) <= 1e-6 * abs(smooth),
                      f"smoothed loss of step {i}")
        # it stops at 4x the best smoothed loss (or at the last step)
        sm = [float(r["smooth_loss"]) for r in s]
        if len(s) < 40:
            check(not math.isfinite(sm[-1]) or sm[-1] > 4 * min(sm[:-1]), "stopped on divergence")
            check(all(v <= 4 * min(sm[:i + 1]) for i, v in enumerate(sm[:-1])),
                  "did not stop before diverging")
    # The median curve (while more than half the sweeps are there) and fastai's suggestions on it.
    n = min(len(s) for s in sweeps)
    lrs = [float(sweeps[0][i]["lr"]) for i in range(n)]
    med = [statistics.median(float(s[i]["smooth_loss"]) for s in sweeps) for i in range(n)]
    ref = suggestions(lrs, med, 40)
    for k, v in ref.items():
        check(abs(lf.get(k, 0) - v) <= 1e-6 * v, f"{k}: runner {lf.get(k)} vs fastai {v}")
    for k, v in lf.get("spread", {}).items():
        single = [suggestions([float(r["lr"]) for r in s], [float(r["smooth_loss"]) for r in s],
                              40)[k] for s in sweeps]
        check(abs(v[0] - min(single)) <= 1e-6 * v[0] and abs(v[1] - max(single)) <= 1e-6 * v[1],
              f"spread of {k}: {v} vs {single}")
    svg = open(os.path.join(out, "lr_find.svg")).read()
    check("valley" in svg and "<polygon" in svg, "lr_find.svg marks the suggestions and the band")

# 2. The next stage takes a suggestion as its base lr.
taken = recipe("taken.lua", "{ { 'lr_find', steps = 30 }, { name = 'fit', epochs = 1, "
               "lr = 'lr_find.steep' } }")
p = run([taken, "--out", os.path.join(tmp, "taken")])
check(p.returncode == 0, f"lr from the sweep: {p.stderr}")
if p.returncode == 0:
    lf = json.load(open(os.path.join(tmp, "taken", "summary.json")))["lr_find"]
    rows = list(csv.DictReader(open(os.path.join(tmp, "taken", "metrics.csv"))))
    check(abs(float(rows[0]["lr"]) - lf["steep"]) <= 1e-6 * lf["steep"],
          f"fit's lr {rows[0]['lr']} is lr_find.steep {lf['steep']}")
    check(f"stage fit: lr {lf['steep']:.3g} (lr_find.steep)" in p.stdout, f"printed: {p.stdout!r}")

# 3. A sweep on its own: reports, writes no training epochs.
alone = recipe("alone.lua", "{ { 'lr_find', steps = 20, mode = 'linear', start_lr = 1e-4, "
               "end_lr = 0.1 } }")
p = run([alone, "--out", os.path.join(tmp, "alone")])
check(p.returncode == 0 and "LR finder in" in p.stdout, f"sweep only: {p.stdout} {p.stderr}")
if p.returncode == 0:
    rows = list(csv.DictReader(open(os.path.join(tmp, "alone", "lr_find.csv"))))
    for i, r in enumerate(rows):
        want = 1e-4 + (0.1 - 1e-4) * i / 20
        check(abs(float(r["lr"]) - want) <= 1e-6 * want, f"linear lr of step {i}")

# 4. Bad input: one line, exit 1, no run directory.
for stages, needle in [
    ("{ { epochs = 1, lr = 'lr_find.valley' } }",
     "stages[1].lr: \"lr_find.valley\" needs an lr_find stage before this one"),
    ("{ { 'lr_find', steps = 1 } }", "stages[1].steps"),
]:
    bad = recipe("bad.lua", stages)
    out = os.path.join(tmp, "bad")
    p = run([bad, "--out", out])
    check(p.returncode == 1 and needle in p.stderr and len(p.stderr.splitlines()) == 1,
          f"{needle}: {p.stderr!r}")
    check(not os.path.exists(out), "no run directory for a bad recipe")
finish("e2e_lr_find")
