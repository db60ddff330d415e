"""Exact resume: a run stopped by Ctrl-C in the middle of an epoch and continued with
`runner --resume DIR` ends with the same weights, bit for bit, and the same metrics as the run
that was never stopped. The recipe exercises every piece of state a resume must carry: an LR
finder's suggestion, frozen then unfrozen stages with slice lrs, gradient accumulation (the loader
position in micro-batches), dropout and augmentation on two loader workers (counter-based
randomness; CutMix/Mixup pair samples within a batch and train on soft targets), AdamW state, a
plateau schedule (the metric history), early stopping and grad_norm (callback state), and a
validation split. Also: a changed recipe is refused (listing what changed) unless --force, and a
finished run has nothing to resume."""
import csv
import json
import os
import shutil

from common import check, finish, interrupt_at, read_safetensors, run, tempdir, write

tmp = tempdir()
TEXT = """
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 1024, test_limit = 128 }
return {
  seed = 11,
  data = { train = fm.train, test = fm.test, batch_size = 32, val_split = 0.1,
           normalize = datasets.fashion_mnist_stats,
           workers = 2,
           augment = { { "random_crop", size = 28, padding = 2 }, { "hflip" },
                       { "cutmix_or_mixup", prob = 0.7 } } },
  model = models.mnist_cnn{ classes = 10 },
  groups = { body = { "conv*", "fc1.*" }, head = "fc2.*" },
  optimizer = { "adamw", lr = 1e-3, weight_decay = 0.01 },
  accumulate = 2,
  schedule = { "reduce_on_plateau", monitor = "val.loss", patience = 0, factor = 0.5 },
  callbacks = { { "csv_logger", every = "step", every_steps = 1 },
                { "early_stopping", monitor = "val.acc", patience = 5 }, { "grad_norm" } },
  stages = {
    { "lr_find", steps = 16 },
    { name = "head", epochs = 1, train = "head", lr = "lr_find.valley" },
    { name = "all", epochs = 2, train = "all", lr = slice(1e-4, 1e-3) },
  },
}
"""
recipe = write(tmp, "r.lua", TEXT)
shutil.copytree(os.path.join(os.environ["RN_SOURCE"], "recipes", "lib"), os.path.join(tmp, "lib"))
STEPS_PER_EPOCH = 15  # 922 training images in 29 micro-batches of 32, 2 per step

full = os.path.join(tmp, "full")
p = run([recipe, "--out", full])
check(p.returncode == 0, f"uninterrupted run: {p.stderr}")

# The same run, stopped by Ctrl-C in the middle of the first epoch of stage "all".
cut = os.path.join(tmp, "cut")
target = STEPS_PER_EPOCH + STEPS_PER_EPOCH // 2
code, err = interrupt_at([recipe, "--out", cut], cut, target)
check(code == 130, f"interrupted run exits 130: {code} {err}")
head, _ = read_safetensors(os.path.join(cut, "checkpoint.safetensors"))
pos = json.loads(head["__metadata__"]["run"])["position"]
check(pos["stage"] == 2 and 0 < pos["epoch_steps"] < STEPS_PER_EPOCH,
      f"the interrupt landed mid-epoch in stage 'all': {pos}")

p = run(["--resume", cut])
check(p.returncode == 0 and "resuming" in p.stdout, f"resume: {p.stdout} {p.stderr}")
if p.returncode == 0:
    _, a = read_safetensors(os.path.join(full, "model.safetensors"))
    _, b = read_safetensors(os.path.join(cut, "model.safetensors"))
    check(a == b, "the resumed run ends with the uninterrupted run's weights, bit for bit")
    _, a = read_safetensors(os.path.join(full, "checkpoint.safetensors"))
    _, b = read_safetensors(os.path.join(cut, "checkpoint.safetensors"))
    check(a == b, "and the same optimizer state")
    timing = {"images_per_s", "time_s"}
    ra = list(csv.DictReader(open(os.path.join(full, "metrics.csv"))))
    rb = list(csv.DictReader(open(os.path.join(cut, "metrics.csv"))))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    check(strip(ra) == strip(rb), f"metrics.csv: the same rows ({len(ra)} vs {len(rb)})")
    sa = json.load(open(os.path.join(full, "summary.json")))
    sb = json.load(open(os.path.join(cut, "summary.json")))
    check(sa["best"] == sb["best"] and sa["lr_find"]["valley"] == sb["lr_find"]["valley"] and
          sa["steps"] == sb["steps"] and sa["epochs"] == sb["epochs"], "summary.json agrees")
    resumes = json.load(open(os.path.join(cut, "provenance.json"))).get("resumes", [])
    check(len(resumes) == 1 and resumes[0]["from_step"] > 0, f"provenance records it: {resumes}")

# A finished run: nothing to resume.
p = run(["--resume", full])
check(p.returncode == 1 and "the run finished" in p.stderr and len(p.stderr.splitlines()) == 1,
      f"finished run: {p.stderr!r}")
# Not a run directory.
p = run(["--resume", tmp])
check(p.returncode == 1 and "provenance.json" in p.stderr, f"not a run: {p.stderr!r}")

# A changed recipe is refused, naming the change, and nothing in the run directory moves.
cut2 = os.path.join(tmp, "cut2")
interrupt_at([recipe, "--out", cut2], cut2, 0)
write(tmp, "r.lua", TEXT.replace("weight_decay = 0.01", "weight_decay = 0.02")
      .replace("patience = 5", "patience = 4"))
before = {f: open(os.path.join(cut2, f), "rb").read() for f in sorted(os.listdir(cut2))}
p = run(["--resume", cut2])
check(p.returncode == 1 and "the recipe changed since the run began" in p.stderr and
      "optimizer.weight_decay: number 0.01 -> number 0.02" in p.stderr and
      "callbacks[2].patience: number 5 -> number 4" in p.stderr and "--force" in p.stderr and
      len(p.stderr.splitlines()) == 1, f"changed recipe: {p.stderr!r}")
after = {f: open(os.path.join(cut2, f), "rb").read() for f in sorted(os.listdir(cut2))}
check(before == after, "a refused resume touches nothing")
p = run(["--resume", cut2, "--force"])
check(p.returncode == 0 and "changed recipe (--force)" in p.stdout, f"--force: {p.stderr}")
if p.returncode == 0:
    prov = json.load(open(os.path.join(cut2, "provenance.json")))
    check("weight_decay" in (prov["resumes"][0]["recipe_changes"] or ""), "--force is recorded")
    check("weight_decay = 0.02" in open(os.path.join(cut2, "recipe.lua")).read(),
          "recipe.lua is the recipe the run continued under")
finish("e2e_resume")
