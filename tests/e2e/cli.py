"""The CLI's informational commands: --help, --version, plugins, plugins ID."""
import re

from common import check, finish, run

p = run(["--help"])
check(p.returncode == 0 and "usage: runner RECIPE.lua" in p.stdout, "--help")
p = run(["--version"])
check(p.returncode == 0 and re.match(r"runner \d+\.\d+\.\d+ \(plugin ABI 1\.3", p.stdout),
      f"--version: {p.stdout!r}")
p = run([])
check(p.returncode == 2 and "usage:" in p.stderr, "no arguments: usage on stderr, exit 2")

p = run(["plugins"])
check(p.returncode == 0, f"plugins exit {p.returncode}: {p.stderr}")
for kind, pid in [("optimizer", "sgd"), ("scheduler", "constant"), ("scheduler", "cosine"),
                  ("augment", "random_crop"), ("augment", "hflip"), ("callback", "progress"),
                  ("callback", "csv_logger")]:
    check(re.search(rf"^{kind}\s+{pid}\s", p.stdout, re.M) is not None, f"plugins lists {pid}")

p = run(["plugins", "sgd"])
check(p.returncode == 0, "plugins sgd")
for setting in ["lr", "momentum", "dampening", "nesterov", "weight_decay"]:
    check(re.search(rf"^\s+{setting}\s+(number|boolean)\s+default", p.stdout, re.M) is not None,
          f"sgd setting {setting} listed with type and default")
p = run(["plugins", "nope"])
check(p.returncode == 1 and 'no plugin "nope"' in p.stderr and "sgd" in p.stderr,
      "plugins nope: error lists the ids")

# --dry-run checks everything, prints the model and writes nothing.
import os
from common import small_recipe, tempdir, write
tmp = tempdir()
recipe = write(tmp, "r.lua", small_recipe(epochs=1, limit=256, test_limit=64,
                                          extra='groups = { head = "fc2.*", convs = "conv*" },'))
out = os.path.join(tmp, "run")
os.chdir(tmp)
p = run([recipe, "--dry-run"])
check(p.returncode == 0, f"--dry-run exit {p.returncode}: {p.stderr}")
check(sorted(os.listdir(tmp)) == ["r.lua"], f"--dry-run wrote nothing: {os.listdir(tmp)}")
check("model mnist_cnn: input 1x28x28, 1199882 parameters, 23.98M FLOPs" in p.stdout,
      f"model line: {p.stdout[:200]!r}")
check(re.search(r"^\s+fc1\s+linear\s+128\s+1179776\s+2\.36M$", p.stdout, re.M) is not None,
      "fc1 row: type, output, parameters, FLOPs")
check(re.search(r"^\s+head\s+1290 parameters in 2 tensors$", p.stdout, re.M) is not None and
      re.search(r"^\s+convs\s+18816 parameters in 4 tensors$", p.stdout, re.M) is not None,
      "group counts")
check("plan: 4 optimizer steps per epoch (256 training images, batch 64)" in p.stdout and
      "stage fit: 1 epochs, 4 steps, schedule cosine (per step)" in p.stdout, "the plan")
check(re.search(r"^\s+group default\s+lr 5e-05 -> ", p.stdout, re.M) is not None,
      "cosine warm-up starts at base lr x 1e-3")
p = run([recipe, "--dry-run", "--out", out])
check(p.returncode == 0 and sorted(os.listdir(out)) == ["schedule.svg"],
      f"--dry-run --out writes schedule.svg only: {os.listdir(out) if os.path.isdir(out) else p.stderr}")
p = run([recipe, "--dry-run", "--set", 'groups.head="fc3.*"'])
check(p.returncode == 1 and p.stderr.strip() == 'runner: groups.head: pattern "fc3.*" matches '
      "no parameter (the model's modules: conv1, conv2, fc1, fc2)", f"bad group: {p.stderr!r}")

# A chained schedule: phases in order, a plateau multiplier on top; a chain that does not fit
# its stage is refused at validation.
chain = write(tmp, "chain.lua", small_recipe(
    epochs=3, limit=256, test_limit=64,
    schedule='{ { "linear", start_factor = 0.01, epochs = 1 }, { "cosine" }, '
             '{ "reduce_on_plateau", multiply = true } }'))
p = run([chain, "--dry-run"])
check(p.returncode == 0 and "schedule linear (per step) -> cosine (per step) x reduce_on_plateau "
      "(per epoch)" in p.stdout,
      f"chain plan: {p.stdout[-400:]!r} {p.stderr!r}")
p = run([chain, "--dry-run", "--set", "schedule[1].epochs=3"])
check(p.returncode == 1 and "schedule[1]: the phases before the last take 12 of the stage's 12"
      in p.stderr, f"chain too long: {p.stderr!r}")
# scripts/run (the README's first command) executes the binary this build made: it sets up and
# builds, so the test reads the path it execs instead of running it.
from common import RUNNER
script = open(os.path.join(os.environ["RN_SOURCE"], "scripts", "run")).read()
m = re.search(r'exec "\$\{BUILD_DIR:-\$root/build\}/([^"]+)"', script)
build_dir = os.path.dirname(os.path.dirname(RUNNER))
check(m is not None and os.path.realpath(os.path.join(build_dir, m.group(1))) ==
      os.path.realpath(RUNNER), f"scripts/run execs {m.group(1) if m else '?'}, not {RUNNER}")
finish("e2e_cli")
