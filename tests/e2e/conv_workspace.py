"""conv_workspace_mib reaches the CPU convolutions: at the default the MNIST CNN's conv2 runs
Winograd (test_conv_winograd checks which shapes and its arithmetic), at 0 every convolution runs
direct, so the two runs end with different weights yet the same accuracy within a point, and each
is reproducible. provenance.json records the setting; a bad value gets one line and writes
nothing."""
import json
import os

from common import (check, finish, read_safetensors, run, small_recipe, tempdir, train_cpu,
                    write)

tmp = tempdir()
recipe = write(tmp, "r.lua", small_recipe(epochs=2, limit=1024, test_limit=256))


def train(name, *sets):
    out = os.path.join(tmp, name)
    rows = train_cpu(recipe, out, *sets)
    if rows is None:
        return None, None, None
    with open(os.path.join(out, "provenance.json")) as f:
        prov = json.load(f)
    return read_safetensors(os.path.join(out, "model.safetensors")), rows, prov


wino, rows_w, prov_w = train("default")
wino2, _, _ = train("default-again")
direct, rows_d, prov_d = train("direct", "conv_workspace_mib=0")
direct2, _, _ = train("direct-again", "conv_workspace_mib=0")
if wino and wino2 and direct and direct2:
    check(prov_w.get("conv_workspace_mib") == 16, f"provenance: {prov_w.get('conv_workspace_mib')}")
    check(prov_d.get("conv_workspace_mib") == 0, f"provenance: {prov_d.get('conv_workspace_mib')}")
    check(wino != direct, "Winograd trains differently from direct")
    check(direct == direct2, "two direct runs end with the same weights")
    check(wino == wino2, "two Winograd runs end with the same weights")
    aw, ad = float(rows_w[-1]["test.acc"]), float(rows_d[-1]["test.acc"])
    print(f"test accuracy: Winograd {aw:.4f}, direct {ad:.4f}")
    check(abs(aw - ad) <= 0.01, f"Winograd accuracy {aw} vs direct {ad}")

out = os.path.join(tmp, "bad")
p = run([recipe, "--out", out, "--set", "conv_workspace_mib=-1"])
lines = [l for l in p.stderr.splitlines() if l.strip()]
check(p.returncode == 1 and len(lines) == 1 and
      "conv_workspace_mib: expected an integer in [0, 65536], got -1" in lines[0], f"bad: {lines}")
check(not os.path.exists(out), "bad: nothing written")
finish("e2e_conv_workspace")
