"""Helpers for the end-to-end tests: run the runner binary on recipes written to a temp dir."""
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile

RUNNER = os.environ["RUNNER"]
SOURCE = os.environ["RN_SOURCE"]
FASHION = "/usr/share/datasets/fashion-mnist"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def finish(name):
    print(f"{name}: {len(failures)} failed")
    sys.exit(1 if failures else 0)


def small_recipe(extra="", epochs=2, limit=2000, test_limit=500, optimizer=None, schedule=None,
                 callbacks='{ {"csv_logger"} }', augment="{}"):
    """A quick recipe on the first samples of Fashion-MNIST."""
    optimizer = optimizer or '{ "sgd", lr = 0.05, momentum = 0.9 }'
    schedule = schedule or '{ "cosine", warmup_epochs = 0.5 }'
    return f"""
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{{ limit = {limit}, test_limit = {test_limit} }}
return {{
  seed = 7,
  data = {{ train = fm.train, test = fm.test, batch_size = 64,
           normalize = datasets.fashion_mnist_stats, augment = {augment} }},
  model = models.mnist_cnn{{ classes = 10 }},
  optimizer = {optimizer},
  schedule = {schedule},
  callbacks = {callbacks},
  epochs = {epochs},
  {extra}
}}
"""


def write(dir_, name, text):
    path = os.path.join(dir_, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def run(args, env=None, timeout=600, cwd=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([RUNNER] + args, capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cwd)


def train_cpu(recipe, out, *sets):
    """Trains recipe on the CPU into out, with each --set; returns metrics.csv's rows, or None
    after a failed check."""
    args = [recipe, "--out", out, "--device", "cpu"]
    for s in sets:
        args += ["--set", s]
    p = run(args)
    check(p.returncode == 0, f"{os.path.basename(out)}: {p.stderr}")
    if p.returncode:
        return None
    with open(os.path.join(out, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def tempdir():
    """A fresh directory under /tmp, removed when the test exits (set RN_E2E_KEEP=1 to keep it
    for a look at a failure); every e2e test used to leave its own, ResNet-sized runs included,
    until the disk filled."""
    path = tempfile.mkdtemp(prefix="runner-e2e-")
    if not os.environ.get("RN_E2E_KEEP"):
        import atexit
        import shutil
        atexit.register(shutil.rmtree, path, True)
    return path


def interrupt_at(args, out, step, env=None, timeout=300):
    """Starts runner with args (training into out) and sends it SIGINT once out/metrics.csv has a
    row at or past optimizer step `step` (the csv_logger must log every step). Returns the
    exit status and stderr."""
    import signal
    import time
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen([RUNNER] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)
    metrics = os.path.join(out, "metrics.csv")
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            rows = open(metrics).read().splitlines()
            if len(rows) > 1 and int(rows[-1].split(",")[2]) >= step:
                break
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err
