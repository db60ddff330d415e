"""scripts/gpu_check: without a GPU it stops on the cuda run's one-line reason with exit 1; its
comparison, run as --self-test (the CPU on 2 threads against 1), passes within its tolerance and
fails when the tolerance is below the differences the two thread counts really have; with
--precision bf16 the same holds for the bf16 run's distance from fp32."""
import os
import subprocess
import sys

from common import RUNNER, SOURCE, check, finish

script = os.path.join(SOURCE, "scripts", "gpu_check")


def gpu_check(*args):
    return subprocess.run([sys.executable, script, "--runner", RUNNER, "--no-timing", *args],
                          capture_output=True, text=True, timeout=600)


p = gpu_check()
lines = [l for l in p.stderr.splitlines() if l.strip()]
check(p.returncode == 1 and len(lines) == 1 and lines[0].startswith("gpu_check: cuda: ") and
      "device cuda: " in lines[0], f"without a GPU: {p.returncode} {lines}")
print("without a GPU:", lines)

p = gpu_check("--self-test")
check(p.returncode == 0 and "gpu_check: ok" in p.stdout and "47 tensors compared" in p.stdout,
      f"self-test: {p.returncode} {p.stdout} {p.stderr}")
print(p.stdout)
# 1 and 2 threads differ by ~1e-4 in some update (oneDNN's reductions): a tolerance of 1e-9
# must catch it, so the comparison is not vacuous.
p = gpu_check("--self-test", "--tolerance", "1e-9")
check(p.returncode == 1 and "OUT OF TOLERANCE" in p.stdout and "gpu_check: FAILED" in p.stdout,
      f"tight tolerance: {p.returncode} {p.stdout[-300:]}")
# --precision bf16 (the CPU's bf16 kernels in the self-test) against fp32 by relative L2 error:
# ~0.12 at initialization, within 0.25; and 0.01 catches it.
p = gpu_check("--self-test", "--precision", "bf16")
check(p.returncode == 0 and "relative L2 error" in p.stdout and "cpu (bf16)" in p.stdout and
      "gpu_check: ok" in p.stdout, f"bf16 self-test: {p.returncode} {p.stdout} {p.stderr}")
print(p.stdout)
p = gpu_check("--self-test", "--precision", "bf16", "--tolerance", "0.01")
check(p.returncode == 1 and "OUT OF TOLERANCE" in p.stdout, f"bf16 at 0.01: {p.stdout[-300:]}")
finish("e2e_gpu_check")
