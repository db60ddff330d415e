"""The CLI's informational commands: --help, --version, plugins, plugins ID."""
import re

from common import check, finish, run

p = run(["--help"])
check(p.returncode == 0 and "usage: runner RECIPE.lua" in p.stdout, "--help")
p = run(["--version"])
check(p.returncode == 0 and re.match(r"runner \d+\.\d+\.\d+ \(plugin ABI 1\.0", p.stdout),
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

finish("e2e_cli")
