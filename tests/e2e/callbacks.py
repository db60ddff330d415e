"""The callbacks in real runs: early_stopping stops and restores the best epoch's weights (the
same tensors checkpoint saved as best.safetensors), checkpoint keeps the newest k epoch files,
nan_guard rolls a diverging run back and lowers its lr where without it the run fails naming the
step and the lr, lr_monitor logs every group's lr and momentum, and a Lua callback stops the run.
"""
import csv
import json
import os

from common import check, finish, read_safetensors, run, small_recipe, tempdir, write

tmp = tempdir()


def recipe(name, callbacks, optimizer=None, epochs=4, extra=""):
    text = small_recipe(epochs=epochs, limit=512, test_limit=128, callbacks=callbacks,
                        optimizer=optimizer, schedule='{ "constant" }', extra=extra)
    return write(tmp, name, text.replace("batch_size = 64,", "batch_size = 64, val_split = 0.2,"))


def params(path):
    h, d = read_safetensors(path)
    return {k: d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items()
            if k != "__metadata__" and not k.startswith("optimizer.")}


# early_stopping + checkpoint on val.loss with a high, noisy lr.
out = os.path.join(tmp, "es")
p = run([recipe("es.lua", '{ { "csv_logger" }, { "checkpoint", monitor = "val.loss", keep = 2 }, '
                '{ "early_stopping", monitor = "val.loss", patience = 1 }, { "lr_monitor" } }',
                optimizer='{ "sgd", lr = 0.3, momentum = 0.9 }', epochs=8), "--out", out])
check(p.returncode == 0, f"early stopping run: {p.stderr}")
if p.returncode == 0:
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    losses = [float(r["val.loss"]) for r in rows]
    best = min(range(len(losses)), key=lambda i: losses[i])
    # Lightning's rule with patience 1: stop at the first epoch that does not improve on the best.
    stop = next((i for i in range(1, len(losses)) if losses[i] >= min(losses[:i])), None)
    check(stop is not None and len(rows) == stop + 1,
          f"stopped after epoch {len(rows) - 1}, val.loss {losses}")
    check(f"restored the weights of epoch {best}" in p.stdout, f"restore message: {p.stdout}")
    check(params(os.path.join(out, "model.safetensors")) ==
          params(os.path.join(out, "best.safetensors")),
          "the final weights are the best epoch's, as checkpoint saved them")
    kept = sorted(f for f in os.listdir(out) if f.startswith("epoch-"))
    check(kept == [f"epoch-{len(rows) - 1}.safetensors", f"epoch-{len(rows)}.safetensors"]
          or len(rows) < 2, f"keep = 2 keeps the newest two: {kept}")
    check(os.path.exists(os.path.join(out, "last.safetensors")), "last.safetensors")
    check("momentum.default" in rows[0] and float(rows[0]["momentum.default"]) == 0.9,
          f"lr_monitor columns: {list(rows[0])}")

# A diverging run: an error naming the step and the lr without nan_guard ...
BIG = '{ "sgd", lr = 40, momentum = 0.9 }'
p = run([recipe("nan.lua", '{ { "csv_logger" } }', optimizer=BIG, epochs=2), "--out",
         os.path.join(tmp, "nan")])
check(p.returncode == 1 and "at lr 40" in p.stderr and "step" in p.stderr,
      f"no guard: {p.stderr!r}")
# ... rolled back and slowed down with it.
out = os.path.join(tmp, "guard")
p = run([recipe("guard.lua", '{ { "csv_logger" }, { "nan_guard", factor = 0.01, every_steps = 1000, '
                'max_rollbacks = 5 } }', optimizer=BIG, epochs=2), "--out", out])
check(p.returncode == 0 and "nan_guard" in p.stdout + p.stderr, f"guard: {p.stdout} {p.stderr}")
if p.returncode == 0:
    s = json.load(open(os.path.join(out, "summary.json")))
    check(s["final"]["train.loss"] is not None, "the guarded run trains on")
    check(float(s["final"]["lr"]) < 40, f"its lr was lowered: {s['final']['lr']}")

# A Lua callback ends the run after the second epoch.
out = os.path.join(tmp, "lua")
p = run([recipe("lua.lua", '{ { "csv_logger" }, { on_epoch_end = function(ctx) '
                'if ctx.epoch == 1 then return "stop_run" end end } }'), "--out", out])
check(p.returncode == 0, f"lua callback: {p.stderr}")
if p.returncode == 0:
    check(json.load(open(os.path.join(out, "summary.json")))["epochs"] == 2, "stopped after 2")

# A monitor this run does not measure is refused before anything is written.
out = os.path.join(tmp, "bad")
text = small_recipe(epochs=1, limit=256, test_limit=64,
                    callbacks='{ { "early_stopping", monitor = "val.acc" } }')
p = run([write(tmp, "bad.lua", text), "--out", out])
check(p.returncode == 1 and 'callbacks[1].monitor: early_stopping watches "val.acc"' in p.stderr
      and "data.val_split" in p.stderr and len(p.stderr.splitlines()) == 1,
      f"unknown monitor: {p.stderr!r}")
check(not os.path.exists(out), "nothing written")
finish("e2e_callbacks")
