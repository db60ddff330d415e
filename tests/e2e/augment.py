"""Augmentation through the whole loop. The training batches, CutMix/Mixup soft targets included,
are the same on one loader worker and on two: the runs end with the same weights, bit for bit.
The normalize plugin placed last is data.normalize, bit for bit, test metrics included.
Mixing reaches the loss (weights differ without it), summary.json reports
the loader's time, multi_margin trains, and every bad input is one line before anything is
written: alpha <= 0, a probability outside [0, 1], a crop larger than the padded image, CutMix
with a loss that takes class indices only, normalizing twice, workers out of range. (Resumed vs
uninterrupted with CutMix/Mixup on two workers: e2e_resume.)"""
import csv
import json
import os
import shutil

from common import check, finish, read_safetensors, run, tempdir, write

tmp = tempdir()
shutil.copytree(os.path.join(os.environ["RN_SOURCE"], "recipes", "lib"), os.path.join(tmp, "lib"))


def recipe(augment, normalize="normalize = datasets.fashion_mnist_stats,",
           loss='{ "cross_entropy", label_smoothing = 0.1 }', workers=1):
    return f"""
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{{ limit = 640, test_limit = 256 }}
return {{
  seed = 3,
  data = {{ train = fm.train, test = fm.test, batch_size = 64, workers = {workers},
           {normalize}
           augment = {augment} }},
  model = models.mnist_cnn{{ classes = 10 }},
  loss = {loss},
  optimizer = {{ "sgd", lr = 0.05, momentum = 0.9 }},
  callbacks = {{ {{ "csv_logger" }} }},
  epochs = 2,
}}
"""


def train(name, text, *args):
    path = write(tmp, f"{name}.lua", text)
    out = os.path.join(tmp, name)
    p = run([path, "--out", out] + list(args))
    check(p.returncode == 0, f"{name}: {p.stderr}")
    return out


def weights(out):
    return read_safetensors(os.path.join(out, "model.safetensors"))[1]


def metrics(out):
    timing = {"images_per_s", "time_s"}
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


FULL = """{ { "random_crop", size = 28, padding = 2, padding_mode = "reflect" }, { "hflip" },
             { "random_erasing", p = 0.3 }, { "cutmix_or_mixup", prob = 0.8, mode = "elem" },
             { "cutmix", prob = 0.5 } }"""
one = train("one", recipe(FULL))
two = train("two", recipe(FULL, workers=2))
check(weights(one) == weights(two), "1 and 2 loader workers end with the same weights")
check(metrics(one) == metrics(two), "and the same metrics.csv")
summary = json.load(open(os.path.join(two, "summary.json")))
data = summary.get("data", {})
check(data.get("workers") == 2 and data.get("batches", 0) >= 20 and
      0 < data.get("augment_ms_per_batch", 0) <= data.get("make_ms_per_batch", 0) and
      data.get("wait_ms_per_batch", -1) >= 0, f"summary.json reports the loader: {data}")
print("loader:", data)

plain = train("plain", recipe("""{ { "random_crop", size = 28, padding = 2,
                                     padding_mode = "reflect" }, { "hflip" },
                                   { "random_erasing", p = 0.3 } }"""))
check(weights(plain) != weights(one), "mixing changes what is trained")

# The normalize plugin last equals data.normalize: padding with black then normalizing is
# padding with normalized black, a CutMix paste commutes with it, and evaluation normalizes the
# test set the same way. (A plugin's draws depend on its place in the list, so the crop and
# CutMix keep theirs.)
stats = "mean = { 0.2860 }, std = { 0.3530 }"
a = train("norm_data", recipe('{ { "random_crop", size = 28, padding = 3 }, { "cutmix" } }',
                              normalize=f"normalize = {{ {stats} }},"))
b = train("norm_plugin", recipe('{ { "random_crop", size = 28, padding = 3 }, { "cutmix" }, '
                                f'{{ "normalize", {stats} }} }}', normalize=""))
check(weights(a) == weights(b), "normalize last is data.normalize, bit for bit")
check(metrics(a) == metrics(b), "with the same test metrics (the test set is normalized too)")

mm = train("margin", recipe('{ { "hflip" } }', loss='{ "multi_margin" }'))
acc = json.load(open(os.path.join(mm, "summary.json")))["test.acc"]
check(acc > 0.5, f"multi_margin trains: test.acc {acc}")


def expect_error(name, text, *needles, args=()):
    path = write(tmp, f"bad_{name}.lua", text)
    out = os.path.join(tmp, f"bad_{name}")
    p = run([path, "--out", out] + list(args))
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode != 0, f"{name}: exit {p.returncode}")
    check(len(lines) == 1, f"{name}: one stderr line, got {lines}")
    for n in needles:
        check(lines and n in lines[0], f"{name}: {n!r} not in {lines}")
    check(not os.path.exists(out), f"{name}: nothing written")
    print(f"{name}: {lines[0] if lines else ''}")


expect_error("alpha", recipe('{ { "cutmix", alpha = 0 } }'),
             "data.augment[1].alpha: expected a number in (0, inf), got 0")
expect_error("mixup_alpha", recipe('{ { "cutmix_or_mixup", mixup_alpha = -1 } }'),
             "data.augment[1].mixup_alpha: expected a number in (0, inf)")
expect_error("prob", recipe('{ { "hflip" }, { "mixup", prob = 1.5 } }'),
             "data.augment[2].prob: expected a number in [0, 1], got 1.5")
expect_error("flip_p", recipe('{ { "hflip", p = -0.1 } }'), "data.augment[1].p")
expect_error("switch", recipe('{ { "cutmix_or_mixup", switch_prob = 2 } }'),
             "data.augment[1].switch_prob")
expect_error("crop", recipe('{ { "random_crop", size = 40, padding = 2 } }'),
             "data.augment[1]", "random_crop", "size 40 is larger than the padded image 32x32")
expect_error("hard_loss", recipe('{ { "hflip" }, { "cutmix" } }', loss='{ "multi_margin" }'),
             "data.augment[2]", "cutmix", "soft targets", "multi_margin",
             "takes class indices only")
expect_error("twice", recipe('{ { "normalize", mean = 0.5, std = 0.25 } }'),
             "data.augment[1]", "normalize", "already normalized")
expect_error("channels", recipe('{ { "normalize", mean = { 0.5, 0.5 }, std = 0.25 } }',
                                normalize=""), "mean has 2 values but the images have 1 channel")
expect_error("workers", recipe('{ { "hflip" } }', workers=0),
             "data.workers: expected an integer in [1, 64], got 0")
finish("e2e_augment")
