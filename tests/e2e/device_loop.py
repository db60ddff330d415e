"""The training loop's GPU side (runner/core/train_device.c) on the CPU stand-in backend
(tests/fake_cuda: it keeps its own "device" copies of every parameter, buffer, gradient and
optimizer state and runs the CPU layers on them). A run with device = "cuda" must end with the
same weights, bit for bit, and the same metrics (all but the timings) as the run on the CPU, for:
  - the MNIST-example CNN (dropout masks drawn on the device, SGD with momentum, cosine);
  - the same with gradient accumulation over 3 micro-batches and clip_grad.value;
  - the same with augmentation on the device on two loader workers: a random resized crop,
    reflect and zero-padded crops, a flip, random erasing with noise, CutMix/Mixup with label
    smoothing (the plugins' device plans, made on the workers, applied after each batch's copy);
  - ResNet-8 (batch norm running stats and num_batches_tracked on the device) through an LR
    finder (its state copied to the host and back after every sweep), a frozen stage then an
    unfrozen one with slice lrs, AdamW state, label smoothing, clip_grad.norm, early stopping
    that restores the best weights, and checkpoints a callback writes every epoch (the device's
    weights and optimizer state at that moment);
  - the same ResNet-8 run interrupted mid-epoch and resumed on the device (its checkpoint
    uploaded) against the uninterrupted one;
  - multi_margin; precision bf16 against the CPU's bf16 run; precision fp16 (loss scaled by
    2^16, exact in the stand-in's float32) against the CPU's fp32 run, and scaled by 3 (not
    exact: it must differ from fp32 in the last bits, which a loop that never scaled would not).
fp16's GradScaler: steps with an overflowing gradient (injected by the stand-in) are skipped,
leaving the weights as they were, and the scale per step follows GradScaler's rule; its state
survives an interruption and resume.
Also: a backend whose forward differs from the CPU's is stopped, in one line, before the first
step; what the GPU loop does not support yet is refused in one line before anything is
written; device = "auto" falls back to the CPU for such a recipe, saying why in one line;
provenance.json names the device."""
import csv
import json
import os
import shutil
import struct

from common import check, finish, interrupt_at, read_safetensors, run, tempdir, write

tmp = tempdir()
FAKE = {"RUNNER_BACKEND_DIR": os.environ["RN_FAKE_CUDA_DIR"]}
shutil.copytree(os.path.join(os.environ["RN_SOURCE"], "recipes", "lib"), os.path.join(tmp, "lib"))

CNN = """
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 768, test_limit = 128 }
return {
  seed = 5,
  data = { train = fm.train, test = fm.test, batch_size = 64,
           normalize = datasets.fashion_mnist_stats },
  model = models.mnist_cnn{ classes = 10 },
  optimizer = { "sgd", lr = 0.05, momentum = 0.9, weight_decay = 5e-4 },
  schedule = { "cosine" },
  callbacks = { { "csv_logger", every = "step", every_steps = 1 } },
  epochs = 2,
}
"""
RESNET = """
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 640, test_limit = 128 }
return {
  seed = 9,
  data = { train = fm.train, test = fm.test, batch_size = 32, val_split = 0.1,
           normalize = datasets.fashion_mnist_stats },
  model = models.resnet8{ in_channels = 1, classes = 10 },
  groups = { body = { "conv1.*", "bn1.*", "layer*" }, head = "fc.*" },
  optimizer = { "adamw", lr = 1e-3, weight_decay = 0.01 },
  loss = { "cross_entropy", label_smoothing = 0.1 },
  clip_grad = { norm = 0.5 },
  callbacks = { { "csv_logger", every = "step", every_steps = 1 },
                { "checkpoint", keep = 3, save_best = false },
                { "early_stopping", monitor = "val.acc", patience = 3, restore_best = true } },
  stages = {
    { "lr_find", steps = 12 },
    { name = "head", epochs = 1, train = "head", lr = "lr_find.valley" },
    { name = "all", epochs = 2, train = "all", lr = slice(1e-4, 1e-3) },
  },
}
"""
AUGMENTED = CNN.replace(
    "normalize = datasets.fashion_mnist_stats }",
    "normalize = datasets.fashion_mnist_stats, workers = 2,\n"
    "           augment = { { \"random_resized_crop\", size = 28, scale_min = 0.5 },"
    " { \"random_crop\", size = 28, padding = 3, padding_mode = \"reflect\" },"
    " { \"hflip\" }, { \"random_erasing\", p = 0.5, value = \"random\" },"
    " { \"random_crop\", size = 28, padding = 2 }, { \"cutmix_or_mixup\", prob = 0.8, mode = \"elem\" } } },"
    "\n  loss = { \"cross_entropy\", label_smoothing = 0.1 }")
ACCUMULATED = CNN.replace("epochs = 2,", "epochs = 2,\n  accumulate = 3,\n"
                          "  clip_grad = { value = 0.02 },")
cnn = write(tmp, "cnn.lua", CNN)
accumulated = write(tmp, "accumulated.lua", ACCUMULATED)
margin = write(tmp, "margin.lua", CNN.replace("epochs = 2,", "epochs = 2,\n  loss = { \"multi_margin\" },"))
resnet = write(tmp, "resnet.lua", RESNET)
augmented = write(tmp, "augmented.lua", AUGMENTED)


def train(recipe, out, device, *extra):
    p = run([recipe, "--out", os.path.join(tmp, out), "--device", device, *extra],
            env=FAKE if device == "cuda" else None)
    check(p.returncode == 0, f"{out}: {p.stderr}")
    return p


def weights(out, name="model.safetensors"):
    return read_safetensors(os.path.join(tmp, out, name))


def rows(out):
    keep = lambda r: {k: v for k, v in r.items() if k not in ("time_s", "images_per_s")}
    return [keep(r) for r in csv.DictReader(open(os.path.join(tmp, out, "metrics.csv")))]


def same_run(a, b, what):
    wa, wb = weights(a), weights(b)
    diff = [k for k in wa[0] if k != "__metadata__" and
            wa[1][wa[0][k]["data_offsets"][0]:wa[0][k]["data_offsets"][1]] !=
            wb[1][wb[0][k]["data_offsets"][0]:wb[0][k]["data_offsets"][1]]]
    check(not diff, f"{what}: weights differ in {diff[:4]}")
    ra, rb = rows(a), rows(b)
    check(ra == rb, f"{what}: metrics differ (first: "
          f"{next(((x, y) for x, y in zip(ra, rb) if x != y), None)})")
    print(f"{what}: {len(wa[0]) - 1} tensors and {len(ra)} metric rows equal, bit for bit")


p = train(cnn, "cnn-cpu", "cpu")
q = train(cnn, "cnn-gpu", "cuda")
if p.returncode == 0 and q.returncode == 0:
    same_run("cnn-cpu", "cnn-gpu", "mnist_cnn")
    prov = json.load(open(os.path.join(tmp, "cnn-gpu", "provenance.json")))
    check(prov["device"].startswith("CPU stand-in GPU (sm_90"), f"provenance: {prov['device']}")
    check("CPU stand-in GPU" in q.stdout, f"the run line names the device: {q.stdout[:300]}")

# Augmentation on the device: each plugin's device plan (made on the loader's workers) applied
# after the batch's copy, CutMix/Mixup's soft targets too.
p = train(augmented, "aug-cpu", "cpu")
q = train(augmented, "aug-gpu", "cuda")
if p.returncode == 0 and q.returncode == 0:
    same_run("aug-cpu", "aug-gpu", "mnist_cnn with resized and padded crops, flip, erasing, "
             "CutMix/Mixup")

# Gradient accumulation over 3 micro-batches and clipping by value, on the device.
p = train(accumulated, "acc-cpu", "cpu")
q = train(accumulated, "acc-gpu", "cuda")
if p.returncode == 0 and q.returncode == 0:
    same_run("acc-cpu", "acc-gpu", "mnist_cnn with accumulate = 3 and clip_grad.value")

p = train(resnet, "res-cpu", "cpu")
q = train(resnet, "res-gpu", "cuda")
if p.returncode == 0 and q.returncode == 0:
    same_run("res-cpu", "res-gpu", "resnet8 with stages")
    sa = json.load(open(os.path.join(tmp, "res-cpu", "summary.json")))
    sb = json.load(open(os.path.join(tmp, "res-gpu", "summary.json")))
    check(sa["lr_find"]["valley"] == sb["lr_find"]["valley"], "the LR finder's suggestion")
    check(sa["best"] == sb["best"], f"best epoch {sa['best']} {sb['best']}")
    # checkpoints written by a callback mid-run (before early stopping looks at the epoch) and
    # by the run's end: the device's weights and optimizer state, each time
    for name in ("epoch-1.safetensors", "epoch-2.safetensors", "epoch-3.safetensors",
                 "last.safetensors", "checkpoint.safetensors"):
        ha, da = weights("res-cpu", name)
        hb, db = weights("res-gpu", name)
        check(da == db, f"{name} (weights and optimizer state) equal")

# Interrupted mid-epoch on the device, resumed on the device.
cut = os.path.join(tmp, "res-cut")
target = 18 + 9  # mid-epoch of stage "all": 18 steps of 32 per epoch (574 images)
code, err = interrupt_at([resnet, "--out", cut, "--device", "cuda"], cut, target, env=FAKE)
check(code == 130, f"interrupted: {code} {err}")
p = run(["--resume", cut], env=FAKE)
check(p.returncode == 0 and "resuming" in p.stdout, f"resume: {p.stdout} {p.stderr}")
if p.returncode == 0 and os.path.exists(os.path.join(tmp, "res-gpu", "model.safetensors")):
    same_run("res-gpu", "res-cut", "resnet8 interrupted and resumed on the device")

# The multi-class hinge loss on the device.
p = train(margin, "margin-cpu", "cpu")
q = train(margin, "margin-gpu", "cuda")
if p.returncode == 0 and q.returncode == 0:
    same_run("margin-cpu", "margin-gpu", "mnist_cnn with multi_margin")

# precision = "bf16": the stand-in computes with the CPU's bf16 kernels, so the GPU loop in bf16
# must equal the CPU's bf16 run.
p = train(cnn, "bf16-cpu", "cpu", "--set", 'precision="bf16"')
q = train(cnn, "bf16-gpu", "cuda", "--set", 'precision="bf16"')
if p.returncode == 0 and q.returncode == 0:
    same_run("bf16-cpu", "bf16-gpu", "mnist_cnn in bf16")
    check(weights("bf16-gpu") != weights("cnn-gpu"), "bf16 trains differently from fp32")

# precision = "fp16": the loss scaled by GradScaler's 2^16 before backward, the gradients
# unscaled before the step. The stand-in computes in float32, where power-of-two scaling is
# exact: the run must equal the CPU's fp32 run, and log the scale it used.
def scaled_rows(out):
    got = rows(out)
    return [{k: v for k, v in r.items() if k != "loss_scale"} for r in got], \
           [r["loss_scale"] for r in got if r["loss_scale"] != ""]


q = train(cnn, "fp16-gpu", "cuda", "--set", 'precision="fp16"')
if q.returncode == 0:
    plain, scales = scaled_rows("fp16-gpu")
    check(plain == rows("cnn-cpu"), "fp16 (scaled, unscaled) equals fp32, bit for bit")
    check(weights("fp16-gpu") == weights("cnn-cpu"), "fp16 weights equal fp32's")
    check(scales and {float(v) for v in scales} == {65536.0}, f"loss scale logged: {set(scales)}")
    s = json.load(open(os.path.join(tmp, "fp16-gpu", "summary.json")))
    check(s.get("grad_scaler") == {"skipped_steps": 0, "scale": 65536},
          f"summary: {s.get('grad_scaler')}")
    print("fp16: equal to fp32 with the loss scaled by 65536")


def scaler_model(steps, init, interval, overflow):
    """GradScaler's scale after each step (torch.cuda.amp.GradScaler.update), and the skips."""
    scale, tracker, out = init, 0, []
    for k in range(1, steps + 1):
        if k in overflow:
            scale, tracker = scale * 0.5, 0
        else:
            tracker += 1
            if tracker == interval:
                scale, tracker = scale * 2, 0
        out.append(scale)
    return out


# Overflows (the stand-in writes an inf into a gradient on chosen backward calls): those steps
# are skipped, the scale halves, and after growth_interval clean steps it doubles.
SCALED = write(tmp, "scaled.lua", CNN.replace("epochs = 2,", 'epochs = 2,\n  precision = "fp16",\n'
                                     "  loss_scale = { init = 1024, growth_interval = 5 },"))
OVER = {3, 4, 9, 20}
q = run([SCALED, "--out", os.path.join(tmp, "scaled"), "--device", "cuda"],
        env=dict(FAKE, RN_FAKE_CUDA_OVERFLOW=",".join(map(str, sorted(OVER)))))
check(q.returncode == 0, f"scaled: {q.stderr}")
if q.returncode == 0:
    got = rows("scaled")  # a row per step, and one more at each epoch's end
    model = scaler_model(24, 1024, 5, OVER)
    want = [model[int(r["step"]) - 1] for r in got]
    check([float(r["loss_scale"]) for r in got] == want,
          f"loss scale per row {[r['loss_scale'] for r in got]}, GradScaler gives {want}")
    check([int(r["step"]) for r in got if r["grad_norm"] and float(r["grad_norm"]) == float("inf")]
          == sorted(OVER),
          "the skipped steps log an infinite gradient norm")
    s = json.load(open(os.path.join(tmp, "scaled", "summary.json")))
    check(s.get("grad_scaler") == {"skipped_steps": len(OVER), "scale": model[-1]},
          f"summary: {s.get('grad_scaler')}")
    print("fp16 scale per step:", [r["loss_scale"] for r in got])
# The loss really is scaled and unscaled: the stand-in is exact at powers of two, so the run
# above would equal fp32's even if the loop never scaled. At a scale of 3 it is not exact (the
# gradients are multiplied by 3, then by the float 1/3): the weights must differ from fp32's in
# their last bits, and no more (a gradient left scaled would be 3 times too large).
THREE = write(tmp, "three.lua", CNN.replace("epochs = 2,", 'epochs = 2,\n  precision = "fp16",\n'
                                     "  loss_scale = { init = 3, growth_interval = 1000 },"))
q = run([THREE, "--out", os.path.join(tmp, "three"), "--device", "cuda"], env=FAKE)
check(q.returncode == 0, f"scale 3: {q.stderr}")
check(os.path.exists(os.path.join(tmp, "cnn-cpu", "model.safetensors")), "the fp32 run to compare")
if q.returncode == 0 and os.path.exists(os.path.join(tmp, "cnn-cpu", "model.safetensors")):
    (h3, d3), (h1, d1) = weights("three"), weights("cnn-cpu")
    worst = 0.0
    for name, t in h1.items():
        if name == "__metadata__":
            continue
        a0, a1 = t["data_offsets"]
        b0, b1 = h3[name]["data_offsets"]
        x = struct.unpack(f"<{(a1 - a0) // 4}f", d1[a0:a1])
        y = struct.unpack(f"<{(b1 - b0) // 4}f", d3[b0:b1])
        worst = max([worst] + [abs(u - v) / (abs(u) + 1e-3) for u, v in zip(x, y)])
    check(0.0 < worst < 0.02, f"scale 3 against fp32: worst relative difference {worst:.3g}")
    print(f"fp16 at scale 3 against fp32: worst relative weight difference {worst:.3g}")
# A skipped step changes no weight: with every step overflowing, the weights stay those of a run
# with lr = 0 (SGD leaves them bit for bit).
zero = write(tmp, "zero.lua", CNN.replace("lr = 0.05", "lr = 0"))
p = train(zero, "zero-cpu", "cpu")
q = run([SCALED, "--out", os.path.join(tmp, "all-skipped"), "--device", "cuda"],
        env=dict(FAKE, RN_FAKE_CUDA_OVERFLOW=",".join(str(k) for k in range(1, 25))))
check(q.returncode == 0, f"all skipped: {q.stderr}")
if p.returncode == 0 and q.returncode == 0:
    check(weights("all-skipped") == weights("zero-cpu"), "every step skipped: weights untouched")
# The scaler's state is in the checkpoint: interrupted (after the overflows at 3 and 4) and
# resumed without any, the run equals the uninterrupted one with the same overflows.
q = run([SCALED, "--out", os.path.join(tmp, "scaled34"), "--device", "cuda"],
        env=dict(FAKE, RN_FAKE_CUDA_OVERFLOW="3,4"))
cut16 = os.path.join(tmp, "scaled-cut")
code, err = interrupt_at([SCALED, "--out", cut16, "--device", "cuda"], cut16, 14,
                         env=dict(FAKE, RN_FAKE_CUDA_OVERFLOW="3,4"))
check(code == 130, f"fp16 interrupted: {code} {err}")
p = run(["--resume", cut16], env=FAKE)
check(p.returncode == 0 and "resuming" in p.stdout, f"fp16 resume: {p.stdout} {p.stderr}")
if p.returncode == 0 and q.returncode == 0:
    same_run("scaled34", "scaled-cut", "fp16 interrupted and resumed (scale and tracker kept)")

# Not supported on the GPU yet: one line, nothing written.
# (normalize, the plugin, instead of data.normalize: it has no cuda variant yet)
aug = write(tmp, "aug.lua", CNN.replace("normalize = datasets.fashion_mnist_stats }",
                                        "augment = { { \"normalize\", mean = { 0.286 }, "
                                        "std = { 0.353 } } } }"))
for name, recipe, sets, want in (
        ("augment", aug, [], 'data.augment[1]: augment "normalize" 1.0.0 ('),
        ("loss_scale", write(tmp, "ls.lua", CNN.replace("epochs = 2,", "epochs = 2,\n"
                                                        "  loss_scale = { init = 8 },")), [],
         'loss_scale: loss scaling is for precision = "fp16" only, and this recipe\'s '
         'precision is "fp32"')):
    out = os.path.join(tmp, "refused-" + name)
    args = [recipe, "--out", out, "--device", "cuda"]
    for s in sets:
        args += ["--set", s]
    p = run(args, env=FAKE)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode == 1 and len(lines) == 1 and want in lines[0], f"{name}: {lines}")
    check(not os.path.exists(out), f"{name}: nothing written")
# A backend whose forward disagrees with the CPU's is stopped before the first step.
p = run([cnn, "--out", os.path.join(tmp, "wrong"), "--device", "cuda"],
        env=dict(FAKE, RN_FAKE_CUDA_WRONG="1"))
lines = [l for l in p.stderr.splitlines() if l.strip()]
check(p.returncode == 1 and len(lines) == 1 and
      "device cuda: the GPU's forward differs from the CPU's before training (logit 11: " in lines[0]
      and "train with device = \"cpu\" and run scripts/gpu_check" in lines[0],
      f"a wrong backend: {p.returncode} {lines}")
check(not os.path.exists(os.path.join(tmp, "wrong", "model.safetensors")), "no weights written")
print("wrong backend:", lines)

# device = "auto" takes the GPU when its loop serves the recipe, and otherwise the CPU, saying
# why in one line (which provenance.json keeps).
p = run([cnn, "--out", os.path.join(tmp, "auto-gpu"), "--device", "auto"], env=FAKE)
check(p.returncode == 0 and "device auto" not in p.stdout, f"auto on the GPU: {p.stderr}")
if p.returncode == 0:
    prov = json.load(open(os.path.join(tmp, "auto-gpu", "provenance.json")))
    check(prov["device"].startswith("CPU stand-in GPU"), f"auto: {prov['device']}")
p = run([aug, "--out", os.path.join(tmp, "auto-cpu"), "--device", "auto"], env=FAKE)
notes = [l for l in p.stdout.splitlines() if l.startswith("device auto: ")]
check(p.returncode == 0 and len(notes) == 1 and
      notes[0].startswith("device auto: found CPU stand-in GPU (sm_90, 16.0 GiB), but "
                          "data.augment[1]: augment \"normalize\"") and
      notes[0].endswith("; training on the CPU"), f"auto falls back: {p.returncode} {notes} "
      f"{p.stderr}")
if p.returncode == 0:
    prov = json.load(open(os.path.join(tmp, "auto-cpu", "provenance.json")))
    check(prov["device"] == "cpu" and prov["device_note"] == notes[0], f"auto-cpu: {prov}")
print("auto:", notes)
# fp16 needs the GPU's loss scaling: when auto falls back to the CPU it refuses in one line,
# rather than training fp32 under an "fp16" provenance.
out = os.path.join(tmp, "auto-fp16")
p = run([aug, "--out", out, "--device", "auto", "--set", 'precision="fp16"'], env=FAKE)
lines = [l for l in p.stderr.splitlines() if l.strip()]
check(p.returncode == 1 and len(lines) == 1 and lines[0] ==
      'runner: precision: "fp16" (with loss scaling) trains on a GPU only, and this run trains '
      'on the CPU (device auto fell back to it); use precision = "bf16" on the CPU',
      f"fp16 after the fallback: {p.returncode} {lines}")
check(not os.path.exists(os.path.join(out, "model.safetensors")), "fp16 fallback: no weights")
print("fp16 after the fallback:", lines)
finish("e2e_device_loop")
