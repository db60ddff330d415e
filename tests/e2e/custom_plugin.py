"""A third-party plugin builds out of tree with ONE cc command against include/runner/plugin.h
alone, is found in the recipe's own plugins/ dir, and drives the run."""
import csv
import os
import shlex
import subprocess

from common import SOURCE, check, finish, run, small_recipe, tempdir, write

tmp = tempdir()
recipe_dir = os.path.join(tmp, "team_recipe")
so = os.path.join(recipe_dir, "plugins", "step_decay.so")
os.makedirs(os.path.dirname(so))
cmd = (f"cc -shared -fPIC -O2 -Wall -Wextra -Werror -Wl,--no-undefined "
       f"-I{SOURCE}/include -o {so} {SOURCE}/examples/plugins/step_decay.c -lm")
b = subprocess.run(shlex.split(cmd), capture_output=True, text=True)
check(b.returncode == 0, f"out-of-tree build failed: {b.stderr}")

recipe = write(recipe_dir, "recipe.lua", small_recipe(
    epochs=3, limit=512, test_limit=128,
    optimizer='{ "sgd", lr = 0.08, momentum = 0.9 }',
    schedule='{ "org.example.step_decay", step_size_epochs = 1, gamma = 0.5 }'))
out = os.path.join(tmp, "run")
p = run([recipe, "--out", out])
check(p.returncode == 0, f"runner exit {p.returncode}: {p.stderr}")
rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv")))) if p.returncode == 0 else []
lrs = [float(r["lr"]) for r in rows]
want = [0.08, 0.04, 0.02]  # StepLR: base * gamma ** epoch
check(len(lrs) == 3 and all(abs(a - b) < 1e-12 for a, b in zip(lrs, want)),
      f"lr per epoch {lrs} != {want}")

# `runner plugins ID` finds it through RUNNER_PLUGIN_PATH too.
p = run(["plugins", "org.example.step_decay"],
        env={"RUNNER_PLUGIN_PATH": os.path.dirname(so)})
check(p.returncode == 0 and "gamma" in p.stdout, f"plugins lists the custom plugin: {p.stderr}")

finish("e2e_custom_plugin")
