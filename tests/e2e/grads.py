"""Gradient accumulation and clipping, checked through their effect on the weights:
- batch 16 x accumulate 4 trains like batch 64 (same samples per step; no dropout in the net);
- clip_grad.norm = c bounds every SGD step's update to lr * c in L2, and clips hard when c is
  far below the gradient norm (the logged grad_norm);
- clip_grad.value = v bounds every element's update to lr * v."""
import csv
import math
import os
import struct

from common import check, finish, read_safetensors, run, tempdir, write

tmp = tempdir()
write(tmp, "base.lua", """
local nn = import "lib.nn"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{ limit = 256, test_limit = 64 }
return {
  seed = 11,
  data = { train = fm.train, test = fm.test, batch_size = 64, normalize = datasets.fashion_mnist_stats },
  model = nn.sequential{ nn.conv2d{ name = "conv", in_channels = 1, out_channels = 4, kernel_size = 3 },
                         nn.relu(), nn.flatten(),
                         nn.linear{ name = "fc", in_features = 4 * 26 * 26, out_features = 10 } },
  optimizer = { "sgd", lr = 0.05 },
  callbacks = { { "csv_logger", every = "step", every_steps = 1 } },
  epochs = 1,
}
""")
base = os.path.join(tmp, "base.lua")


def weights(out):
    h, d = read_safetensors(os.path.join(out, "model.safetensors"))
    return {k: struct.unpack(f"<{(v['data_offsets'][1] - v['data_offsets'][0]) // 4}f",
                             d[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}


def train(name, *sets):
    out = os.path.join(tmp, name)
    args = [base, "--out", out]
    for s in sets:
        args += ["--set", s]
    p = run(args)
    check(p.returncode == 0, f"{name}: exit {p.returncode}: {p.stderr}")
    return out


w64 = weights(train("b64"))
w16x4 = weights(train("b16x4", "data.batch_size=16", "accumulate=4"))
worst = max(abs(a - b) / (1e-3 + abs(b)) for k in w64 for a, b in zip(w16x4[k], w64[k]))
check(worst < 1e-4, f"accumulate 4 x 16 vs batch 64: worst relative difference {worst:.2e}")
w16 = weights(train("b16", "data.batch_size=16"))
check(max(abs(a - b) for k in w64 for a, b in zip(w16[k], w64[k])) > 1e-3,
      "batch 16 without accumulation trains differently (the check above is not vacuous)")
rows = list(csv.DictReader(open(os.path.join(tmp, "b16x4", "metrics.csv"))))
check(max(int(r["step"]) for r in rows) == 4, "4 optimizer steps for 16 micro-batches")

w0 = weights(train("lr0", "optimizer.lr=0.0"))
c = 1e-3
wn = weights(train("norm", f"clip_grad.norm={c}"))
change = math.sqrt(sum((a - b) ** 2 for k in w0 for a, b in zip(wn[k], w0[k])))
grad_norms = [float(r["grad_norm"]) for r in csv.DictReader(open(os.path.join(tmp, "norm",
                                                                              "metrics.csv")))]
check(min(grad_norms) > 100 * c, f"grad norms {grad_norms} are far above the clip")
check(change <= 4 * 0.05 * c * (1 + 1e-4) and change >= 0.5 * 4 * 0.05 * c,
      f"4 clipped steps moved the weights by {change:.3e} (bound {4 * 0.05 * c:.3e})")
v = 1e-5
wv = weights(train("value", f"clip_grad.value={v}"))
# each step moves an element by at most lr * v, plus float32 rounding of the weight (an ulp)
excess = max(abs(a - b) - 4 * 0.05 * v - 4 * 1.2e-7 * abs(b)
             for k in w0 for a, b in zip(wv[k], w0[k]))
moved = max(abs(a - b) for k in w0 for a, b in zip(wv[k], w0[k]))
check(moved > 0.5 * 4 * 0.05 * v and excess <= 0, f"largest element change {moved:.3e}")

p = run([base, "--out", os.path.join(tmp, "bad"), "--set", "accumulate=0"])
check(p.returncode == 1 and "accumulate: expected an integer in [1" in p.stderr, p.stderr)
p = run([base, "--out", os.path.join(tmp, "bad"), "--set", "clip_grad.norm=1",
         "--set", "clip_grad.value=1"])
check(p.returncode == 1 and "clip_grad: expected exactly one of norm" in p.stderr, p.stderr)
finish("e2e_grads")
