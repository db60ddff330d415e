"""Device selection without a GPU. device = "cuda" fails before anything is written, in one line
naming what is missing: the backend in this build, the CUDA runtime or cuDNN libraries, the
driver, or a GPU. device = "auto" trains on the CPU and says why in one line, which
provenance.json keeps. A backend file that does not load is named as such."""
import json
import os

from common import check, finish, run, small_recipe, tempdir, write

tmp = tempdir()
recipe = write(tmp, "r.lua", small_recipe(epochs=1, limit=256, test_limit=64))
REASONS = ("no CUDA driver", "no GPU", "no cuDNN", "no CUDA runtime",
           "built without the CUDA backend", "the CUDA driver", "GPU training path is not complete")


def one_line(p):
    return [l for l in p.stderr.splitlines() if l.strip()]


out = os.path.join(tmp, "cuda")
p = run([recipe, "--out", out, "--device", "cuda"])
lines = one_line(p)
check(p.returncode == 1 and len(lines) == 1 and "device cuda: " in lines[0] and
      any(r in lines[0] for r in REASONS), f"cuda without a GPU: {p.returncode} {lines}")
check(not os.path.exists(out), "nothing written")
print("cuda:", lines)

out = os.path.join(tmp, "auto")
p = run([recipe, "--out", out, "--device", "auto"])
check(p.returncode == 0, f"auto: {p.stderr}")
notes = [l for l in p.stdout.splitlines() if l.startswith("device auto: ")]
check(len(notes) == 1 and notes[0].endswith("; training on the CPU") and
      any(r in notes[0] for r in REASONS), f"auto says why: {p.stdout}")
if p.returncode == 0:
    prov = json.load(open(os.path.join(out, "provenance.json")))
    check(prov["device"] == "cpu" and prov.get("device_note") == (notes[0] if notes else None),
          f"provenance.json: {prov.get('device')} {prov.get('device_note')}")
print("auto:", notes)

# The recipe's own device key, and a build without the backend.
p = run([recipe, "--out", os.path.join(tmp, "none"), "--set", 'device="cuda"'],
        env={"RUNNER_BACKEND_DIR": os.path.join(tmp, "no-backends")})
lines = one_line(p)
check(p.returncode == 1 and lines == ["runner: device cuda: this runner was built without the "
                                      "CUDA backend (no nvcc or cuDNN at build time)"],
      f"no backend: {lines}")
# A backend file that is not a shared object.
write(tmp, "bad-backends/rn_cuda.so", "not an ELF file\n")
p = run([recipe, "--out", os.path.join(tmp, "bad"), "--device", "cuda"],
        env={"RUNNER_BACKEND_DIR": os.path.join(tmp, "bad-backends")})
lines = one_line(p)
check(p.returncode == 1 and len(lines) == 1 and "cannot load" in lines[0] and
      "rn_cuda.so" in lines[0], f"broken backend: {lines}")
print("broken:", lines)
# cpu never loads the backend.
p = run([recipe, "--out", os.path.join(tmp, "cpu"), "--device", "cpu"],
        env={"RUNNER_BACKEND_DIR": os.path.join(tmp, "bad-backends")})
check(p.returncode == 0 and "device auto" not in p.stdout, f"cpu: {p.stderr}")

# A dry run checks a recipe for cuda on a machine without one: every plugin needs a cuda variant.
p = run([recipe, "--dry-run", "--device", "cuda"])
check(p.returncode == 0 and "the dry run checks the recipe for cuda all the same" in p.stdout and
      "dry run: the recipe" in p.stdout, f"dry run for cuda: {p.returncode} {p.stderr}")
aug = write(tmp, "aug.lua", small_recipe(epochs=1, limit=256, test_limit=64,
                                         augment='{ { "normalize", mean = { 0.3 }, '
                                                 'std = { 0.4 } }, { "hflip" } }').replace(
    "normalize = datasets.fashion_mnist_stats, ", ""))  # the plugin instead (no cuda variant)
for extra in (["--dry-run"], ["--out", os.path.join(tmp, "aug-cuda")]):
    p = run([aug, "--device", "cuda"] + extra)
    lines = one_line(p)
    if extra[0] == "--dry-run":
        check(p.returncode == 1 and lines and lines[-1].startswith(
              'runner: data.augment[1]: augment "normalize" 1.0.0 (') and
              lines[-1].endswith("has no cuda variant (it runs on: cpu), and this run trains on "
                                 "cuda"), f"cpu-only plugin refused for cuda: {lines}")
        print("refused:", lines[-1])
    else:  # a real run stops at the missing GPU first
        check(p.returncode == 1 and len(lines) == 1 and "device cuda: " in lines[0], f"{lines}")
check(not os.path.exists(os.path.join(tmp, "aug-cuda")), "nothing written")
# The same recipe on the CPU is fine.
p = run([aug, "--dry-run", "--device", "cpu"])
check(p.returncode == 0, f"cpu dry run: {p.stderr}")
finish("e2e_device")
