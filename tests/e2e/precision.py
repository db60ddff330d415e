"""precision = "bf16" on the CPU: the run trains through oneDNN's bf16 convolutions and GEMMs
(their arithmetic is test_bf16's), records the precision in provenance.json, lands close to the
fp32 run without equalling it, and is reproducible. A bad precision and fp16 on the CPU each get
one line and write nothing."""
import json
import os

from common import (check, finish, read_safetensors, run, small_recipe, tempdir, train_cpu,
                    write)

tmp = tempdir()
recipe = write(tmp, "r.lua", small_recipe(epochs=2, limit=1024, test_limit=256))


def train(name, *sets):
    out = os.path.join(tmp, name)
    return out, train_cpu(recipe, out, *sets) or []


fp32, rows32 = train("fp32")
bf16, rows16 = train("bf16", 'precision="bf16"')
again, rows16b = train("bf16-again", 'precision="bf16"')
if rows32 and rows16:
    prov = json.load(open(os.path.join(bf16, "provenance.json")))
    check(prov.get("precision") == "bf16", f"provenance precision: {prov.get('precision')}")
    prov = json.load(open(os.path.join(fp32, "provenance.json")))
    check(prov.get("precision") == "fp32", f"provenance precision (default): {prov.get('precision')}")
    w32 = read_safetensors(os.path.join(fp32, "model.safetensors"))
    w16 = read_safetensors(os.path.join(bf16, "model.safetensors"))
    check(w32 != w16, "bf16 trains differently from fp32")
    check(w16 == read_safetensors(os.path.join(again, "model.safetensors")),
          "two bf16 runs end with the same weights")
    # The same recipe, 2 epochs on 1024 images: accuracy and loss close to fp32's.
    a32, a16 = float(rows32[-1]["test.acc"]), float(rows16[-1]["test.acc"])
    l32, l16 = float(rows32[-1]["train.loss"]), float(rows16[-1]["train.loss"])
    print(f"fp32: accuracy {a32:.4f} train loss {l32:.4f}; bf16: accuracy {a16:.4f} "
          f"train loss {l16:.4f}")
    check(abs(a16 - a32) <= 0.03, f"bf16 accuracy {a16} vs fp32 {a32}")
    check(abs(l16 - l32) <= 0.1 * l32, f"bf16 train loss {l16} vs fp32 {l32}")
    check(float(rows16[-1]["train.loss"]) < float(rows16[0]["train.loss"]), "bf16 loss falls")


def refused(name, sets, expect):
    out = os.path.join(tmp, name)
    args = [recipe, "--out", out]
    for s in sets:
        args += ["--set", s]
    p = run(args)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode == 1 and len(lines) == 1 and expect in lines[0], f"{name}: {lines}")
    check(not os.path.exists(out), f"{name}: nothing written")
    print(name, lines)


refused("bad", ['precision="fp8"'], 'precision: expected "fp32", "bf16" or "fp16", got "fp8"')
refused("fp16-cpu", ['precision="fp16"', 'device="cpu"'],
        'precision: "fp16" (with loss scaling) trains on a GPU only, and this run trains on the '
        'CPU; use precision = "bf16" on the CPU')
refused("fp16-auto", ['precision="fp16"'], "(device auto found no GPU)")
finish("e2e_precision")
