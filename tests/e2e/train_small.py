"""Trains the MNIST-example CNN for 2 epochs on 2,000 Fashion-MNIST images and checks every file
of the run directory against what the run must have produced."""
import csv
import json
import math
import os
import re
import struct

from common import (FASHION, check, finish, read_safetensors, run, small_recipe, tempdir, write)

if not os.path.isdir(FASHION):
    print(f"skipped: {FASHION} missing (scripts/setup installs dataset-fashion-mnist)")
    raise SystemExit(1)  # a missing data set is a broken setup, not a pass

tmp = tempdir()
recipe = write(tmp, "small.lua", small_recipe())
out = os.path.join(tmp, "run")
p = run([recipe, "--out", out, "--set", "optimizer.lr=0.04"])
print(p.stdout)
check(p.returncode == 0, f"runner exit {p.returncode}: {p.stderr}")

names = sorted(os.listdir(out)) if os.path.isdir(out) else []
check(names == ["checkpoint.safetensors", "metrics.csv", "model.safetensors", "provenance.json",
                "recipe.lua", "schedule.svg", "summary.json"], f"run dir files: {names}")
ck, _ = read_safetensors(os.path.join(out, "checkpoint.safetensors"))
check(ck["__metadata__"]["format"] == "runner-checkpoint-1" and
      ck["__metadata__"]["global_step"] == "64" and
      ck["optimizer.default.fc1.weight"]["shape"] == [128 * 9216],
      "checkpoint: position and the momentum buffers (sgd keeps one float per weight)")
svg = open(os.path.join(out, "schedule.svg")).read() if "schedule.svg" in names else ""
points = re.findall(r'points="([^"]*)"', svg)
check(len(points) == 1 and len(points[0].split()) == 64, "schedule.svg: one group, 64 steps")

# summary.json: real numbers, accuracy well above chance (10%) after 2 epochs on 2k images.
s = json.load(open(os.path.join(out, "summary.json")))
check(s["status"] == "completed", f"status {s['status']}")
check(s["epochs"] == 2, f"epochs {s['epochs']}")
check(s["steps"] == 2 * math.ceil(2000 / 64), f"steps {s['steps']} != 2*32")
check(s["train_images"] == 4000, f"train_images {s['train_images']}")
check(0.60 <= s["test.acc"] <= 1.0, f"test.acc {s['test.acc']} after 2 epochs")
check(0 < s["test.loss"] < 1.5, f"test.loss {s['test.loss']}")
check(s["train_images_per_s"] > 0 and s["wall_time_s"] > 0, "throughput and wall time")
check(s["parameters"] == 1199882, f"parameters {s['parameters']} (PyTorch's net has 1,199,882)")
check(s["best"]["stage"] == "fit" and s["best"]["epoch"] in (0, 1), f"best {s['best']}")

# Per-class metrics recomputed from the confusion matrix; its diagonal gives test.acc.
cm = s["confusion_matrix"]
check(len(cm) == 10 and all(len(row) == 10 for row in cm), "10x10 confusion matrix")
check(sum(map(sum, cm)) == 500, f"confusion covers the 500 test images: {sum(map(sum, cm))}")
check(abs(sum(cm[i][i] for i in range(10)) / 500 - s["test.acc"]) < 1e-12, "diagonal = test.acc")
f1s = []
for i, pc in enumerate(s["per_class"]):
    tp, support, predicted = cm[i][i], sum(cm[i]), sum(row[i] for row in cm)
    prec = tp / predicted if predicted else 0.0
    rec = tp / support
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    f1s.append(f1)
    check(pc["class"] == i and pc["support"] == support and abs(pc["precision"] - prec) < 1e-9
          and abs(pc["recall"] - rec) < 1e-9 and abs(pc["f1"] - f1) < 1e-9, f"class {i}: {pc}")
check(abs(s["macro_f1"] - sum(f1s) / 10) < 1e-9, f"macro_f1 {s['macro_f1']}")

# metrics.csv: one row per epoch; lr follows the cosine schedule (end of epoch 2 = near 0).
rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
check(len(rows) == 2, f"{len(rows)} metric rows")
if len(rows) == 2:
    check(abs(float(rows[1]["test.acc"]) - s["test.acc"]) < 1e-6, "csv test.acc = summary")
    check(float(rows[0]["train.loss"]) > float(rows[1]["train.loss"]), "train loss decreases")
    # cosine over 64 steps, 16 warm-up: the last step's lr is 0.04*(1+cos(pi*47/48))/2
    want = 0.04 * (1 + math.cos(math.pi * 47 / 48)) / 2
    check(abs(float(rows[1]["lr"]) - want) < 1e-9, f"final lr {rows[1]['lr']} != {want}")

# Step rows (csv_logger every = "step") carry every column from the first row on, test ones too.
out3 = os.path.join(tmp, "run3")
p3 = run([write(tmp, "steps.lua", small_recipe(
    epochs=1, limit=640, test_limit=100,
    callbacks='{ { "csv_logger", every = "step", every_steps = 4 } }')), "--out", out3])
check(p3.returncode == 0, f"step-row run exit {p3.returncode}: {p3.stderr}")
if p3.returncode == 0:
    srows = list(csv.DictReader(open(os.path.join(out3, "metrics.csv"))))
    check(len(srows) >= 3 and "test.acc" in srows[0], f"step rows: {srows[:1]}")
    check(srows[0]["test.acc"] == "" and srows[-1]["test.acc"] != "",
          "test.acc empty until measured, then filled")

# recipe.lua: the resolved recipe, with the --set override in it.
resolved = open(os.path.join(out, "recipe.lua")).read()
check(re.search(r"lr\s*=\s*0\.04", resolved) is not None, "override recorded in recipe.lua")

# provenance.json: hashes and every plugin with its file hash.
prov = json.load(open(os.path.join(out, "provenance.json")))
check(re.fullmatch(r"[0-9a-f]{64}", prov["recipe_sha256"]) is not None, "recipe hash")
check(prov["seed"] == 7, "seed recorded")
ids = sorted(x["id"] for x in prov["plugins"])
check(ids == ["cosine", "csv_logger", "sgd"], f"plugins {ids}")
check(all(re.fullmatch(r"[0-9a-f]{64}", x["sha256"]) for x in prov["plugins"]), "plugin hashes")

# model.safetensors: PyTorch names and shapes, offsets that tile the data exactly, finite weights.
header, data = read_safetensors(os.path.join(out, "model.safetensors"))
shapes = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
check(shapes == {"conv1.weight": [32, 1, 3, 3], "conv1.bias": [32],
                 "conv2.weight": [64, 32, 3, 3], "conv2.bias": [64],
                 "fc1.weight": [128, 9216], "fc1.bias": [128],
                 "fc2.weight": [10, 128], "fc2.bias": [10]}, f"shapes {shapes}")
spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
check(spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and
      spans[-1][1] == len(data), "offsets tile the data")
floats = struct.unpack(f"<{len(data) // 4}f", data)
check(all(math.isfinite(x) for x in floats), "finite weights")

# The same seed gives the same data order and initial weights: a second run's first-epoch
# train loss agrees closely (threads may reorder float sums, so not bit for bit).
out2 = os.path.join(tmp, "run2")
p2 = run([recipe, "--out", out2, "--set", "optimizer.lr=0.04"])
check(p2.returncode == 0, f"second run exit {p2.returncode}")
if p2.returncode == 0 and len(rows) == 2:
    rows2 = list(csv.DictReader(open(os.path.join(out2, "metrics.csv"))))
    a, b = float(rows[0]["train.loss"]), float(rows2[0]["train.loss"])
    check(abs(a - b) <= 1e-4 * abs(a), f"same seed, train loss {a} vs {b}")

finish("e2e_train_small")
