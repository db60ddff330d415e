"""reduce_on_plateau in a real run: the lr changes only at epoch boundaries, follows PyTorch's
rule on the run's own test.loss history, and a monitor that is no metric is refused before
anything is written."""
import csv
import math
import os

from common import check, finish, run, small_recipe, tempdir, write

tmp = tempdir()
recipe = write(tmp, "r.lua", small_recipe(
    epochs=6, limit=256, test_limit=64,
    optimizer='{ "sgd", lr = 0.1, momentum = 0.9 }',
    schedule='{ "reduce_on_plateau", monitor = "test.loss", mode = "max", patience = 0, '
             'factor = 0.5 }'))  # mode max on a falling loss: most epochs are "worse"


def pytorch_plateau(history, lr, factor=0.5, patience=0, threshold=1e-4, eps=1e-8):
    """torch.optim.lr_scheduler.ReduceLROnPlateau (mode max, rel threshold) stepped once per
    epoch; returns the lr each epoch trains at."""
    best, bad, out = -math.inf, 0, [lr]
    for m in history:
        if m > best * (1 + threshold):
            best, bad = m, 0
        else:
            bad += 1
        if bad > patience:
            new = max(lr * factor, 0.0)
            if lr - new > eps:
                lr = new
            bad = 0
        out.append(lr)
    return out


out = os.path.join(tmp, "run")
p = run([recipe, "--out", out])
check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
if p.returncode == 0:
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    lrs = [float(r["lr"]) for r in rows]
    want = pytorch_plateau([float(r["test.loss"]) for r in rows], 0.1)[:len(rows)]
    check(lrs == want, f"lr per epoch {lrs}, PyTorch's rule on this run's test.loss: {want}")
    check(len(set(lrs)) > 1, f"the schedule reduced at least once: {lrs}")

p = run([recipe, "--out", os.path.join(tmp, "typo"), "--set", 'schedule.monitor="val.loss"'])
check(p.returncode == 1 and 'monitor "val.loss" is not a metric of this run' in p.stderr
      and "test.loss" in p.stderr, f"typo: {p.stderr!r}")
check(not os.path.exists(os.path.join(tmp, "typo")), "nothing written for a bad monitor")
finish("e2e_plateau")
