"""Ctrl-C finishes the step in flight, writes the weights and a summary saying "interrupted",
keeps the metrics already logged, and exits 130."""
import json
import os
import signal
import subprocess
import time

from common import RUNNER, check, finish, read_safetensors, small_recipe, tempdir, write

tmp = tempdir()
# Many short epochs, so the interrupt lands mid-run after at least one row of metrics.
recipe = write(tmp, "r.lua", small_recipe(epochs=200, limit=256, test_limit=64))
out = os.path.join(tmp, "run")
p = subprocess.Popen([RUNNER, recipe, "--out", out], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
metrics = os.path.join(out, "metrics.csv")
deadline = time.time() + 120
while time.time() < deadline and p.poll() is None:
    if os.path.exists(metrics) and len(open(metrics).read().splitlines()) >= 3:
        break
    time.sleep(0.05)
p.send_signal(signal.SIGINT)
stdout, stderr = p.communicate(timeout=120)
check(p.returncode == 130, f"exit {p.returncode} (stderr: {stderr})")
s = json.load(open(os.path.join(out, "summary.json")))
check(s["status"] == "interrupted", f"status {s['status']}")
check(0 < s["epochs"] < 200, f"epochs {s['epochs']}")
rows = open(metrics).read().splitlines()
check(len(rows) >= 3, "metrics rows written before the interrupt are kept")
# The epoch cut short is neither counted nor logged: one row per finished epoch.
check(len(rows) - 1 == s["epochs"], f"{len(rows) - 1} rows for {s['epochs']} finished epochs")
ck, _ = read_safetensors(os.path.join(out, "checkpoint.safetensors"))
check(int(ck["__metadata__"]["global_step"]) > 0, "a checkpoint is written on Ctrl-C")
header, data = read_safetensors(os.path.join(out, "model.safetensors"))
check("fc2.bias" in header and len(data) == 4 * 1199882, "weights written")
check(not [f for f in os.listdir(out) if ".tmp" in f], "no temporary files left")
finish("e2e_interrupt")
