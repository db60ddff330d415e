"""Parameter groups with their own optimizer settings: one optimizer instance per group, the
schedule applied to each group's own base lr, a group at lr 0 left untouched, and bad groups
refused with their key path."""
import csv
import os
import re

from common import check, finish, read_safetensors, run, small_recipe, tempdir, write

tmp = tempdir()
write(tmp, "base.lua", small_recipe(epochs=1, limit=256, test_limit=64))
recipe = write(tmp, "groups.lua", """
return extend(import "base", {
  optimizer = { "sgd", lr = 0.05, momentum = 0.9, weight_decay = 1e-4 },
  groups = { head = { "fc2.*", lr = 0.5 }, frozen = { "conv1.*", lr = 0.0 },
             no_decay = { "conv2.bias", "fc1.bias", weight_decay = 0 } },
})
""")
out = os.path.join(tmp, "run")
p = run([recipe, "--out", out])
check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
if p.returncode == 0:
    row = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))[-1]
    lr = {g: float(row["lr." + g]) for g in ("default", "head", "frozen", "no_decay")}
    # the cosine schedule scales each group's own base lr: the ratios stay 10 : 1 : 1 : 0
    check(abs(lr["head"] - 10 * lr["default"]) <= 1e-12 + 1e-9 * lr["head"] and
          lr["frozen"] == 0 and lr["no_decay"] == lr["default"], f"group lrs {lr}")
    # conv1 trained at lr 0 (no weight decay reaches it either: p -= lr * (g + wd p))
    pre = os.path.join(tmp, "pre")
    p0 = run([recipe, "--out", pre, "--set", "epochs=1", "--set", "optimizer.lr=0.0",
              "--set", "groups.head.lr=0.0"])
    h0, d0 = read_safetensors(os.path.join(pre, "model.safetensors"))
    h1, d1 = read_safetensors(os.path.join(out, "model.safetensors"))
    def tensor(h, d, name):
        a, b = h[name]["data_offsets"]
        return d[a:b]
    check(tensor(h0, d0, "conv1.weight") == tensor(h1, d1, "conv1.weight"),
          "the lr-0 group is untouched (same initial weights from the same seed)")
    check(tensor(h0, d0, "fc2.weight") != tensor(h1, d1, "fc2.weight"), "the head trained")

for name, args, needle in [
        ("bad_lr", ["--set", "groups.head.lr=-1"], "groups.head.lr: expected a number in [0"),
        ("bad_key", ["--set", "groups.head.lrr=1"], "groups.head.lrr: unknown setting of optimizer"),
        ("overlap", ["--set", 'groups.no_decay[3]="fc2.bias"'],
         'parameter "fc2.bias" is in groups "head" and "no_decay"'),
        ("nomatch", ["--set", 'groups.head[1]="fc9.*"'], 'groups.head[1]: pattern "fc9.*" matches '
         "no parameter")]:
    q = run([recipe, "--out", os.path.join(tmp, name)] + args)
    check(q.returncode == 1 and needle in q.stderr and len(q.stderr.splitlines()) == 1,
          f"{name}: {q.stderr!r}")
    check(not os.path.exists(os.path.join(tmp, name)), f"{name}: nothing written")
# decay_bias_and_norm = false: a group with weight decay keeps its biases and 1-d (norm)
# tensors out of it (timm's filter_bias_and_bn), as "<group>.no_decay" with weight_decay 0.
plain = write(tmp, "plain.lua", small_recipe(
    epochs=1, limit=256, test_limit=64, extra="decay_bias_and_norm = false,",
    optimizer='{ "sgd", lr = 0.05, momentum = 0.9, weight_decay = 5e-4 }'))
q = run([plain, "--dry-run"])
check(q.returncode == 0, f"dry run: {q.stderr}")
check(re.search(r"group default\s+lr .* weight_decay 0.0005, 4 tensors", q.stdout) is not None and
      re.search(r"group default.no_decay\s+lr .* weight_decay 0, 4 tensors", q.stdout) is not None,
      f"split: {q.stdout[-600:]}")
q = run([recipe, "--dry-run", "--set", "decay_bias_and_norm=false"])
check(re.search(r"group head\s+lr .* weight_decay 0.0001, 1 tensors", q.stdout) is not None and
      re.search(r"group head.no_decay\s+lr .* weight_decay 0, 1 tensors", q.stdout) is not None and
      "group no_decay.no_decay" not in q.stdout, f"per group: {q.stdout[-700:]}")
finish("e2e_groups")
