#!/usr/bin/python3
"""Writes the PyTorch reference fixtures for the layer parity test (tests/test_layer_parity.c).

Run with the system Python that has Debian's python3-torch (not a pyenv python):

    /usr/bin/python3 scripts/make_fixtures.py [OUT_DIR]   # default: tests/fixtures/layers

Each case is one file <case>.rnfx of named float32 arrays (format below). Every case is seeded
with torch.manual_seed(<its index>) on one thread, in float32, so reruns give the same bytes.
The C tests read the files only; they never need PyTorch.

Format (little-endian):
    8 bytes   magic "RNFX0001"
    uint32    number of arrays
    per array:
      uint32  name length, then the name (ASCII, no NUL)
      uint32  ndim (0..4)
      int64   dims[ndim]
      float32 data[prod(dims)], row-major

Array names used by the cases:
    cfg.<key>            layer settings, one value each (integers are exact in float32)
    x, y                 input and output of forward
    dy                   the fixed upstream gradient (standard normal)
    dx                   the input gradient
    <param>              a parameter or buffer before forward, as PyTorch names it ("weight")
    grad.<param>         its gradient
    after.<buffer>       a buffer after forward (batch norm's running stats, num_batches_tracked)
Cross-entropy cases: logits, labels (class indices as floats), soft (N, K probabilities, only
when soft targets are used), loss (1), dlogits (the gradient of loss), correct (1).
"""
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def write(path, arrays):
    with open(path, "wb") as f:
        f.write(b"RNFX0001")
        f.write(struct.pack("<I", len(arrays)))
        for name, t in arrays.items():
            t = torch.as_tensor(t, dtype=torch.float32).detach().contiguous()
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", t.dim()))
            for d in t.shape:
                f.write(struct.pack("<q", d))
            f.write(t.numpy().astype("<f4").tobytes())


def run_module(m, x, train=True, cfg=None, buffers_after=()):
    """x, params and buffers before, y, dy, dx and every param grad (and chosen buffers after)."""
    out = {f"cfg.{k}": torch.tensor([float(v)]) for k, v in (cfg or {}).items()}
    m.train(train)
    out["x"] = x.clone()
    for name, p in m.named_parameters():
        out[name] = p.detach().clone()
    for name, b in m.named_buffers():
        if b.dtype.is_floating_point:
            out[name] = b.detach().clone()
    x = x.clone().requires_grad_(True)
    y = m(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    out["y"] = y
    out["dy"] = dy
    out["dx"] = x.grad
    for name, p in m.named_parameters():
        out[f"grad.{name}"] = p.grad
    for name in buffers_after:
        out[f"after.{name}"] = getattr(m, name).detach().clone().float().reshape(-1)
    return out


def conv(n, ic, oc, hw, k, s=1, p=0, d=1, g=1, bias=True):
    m = nn.Conv2d(ic, oc, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
    cfg = dict(in_ch=ic, out_ch=oc, kernel=k, stride=s, padding=p, dilation=d, groups=g,
               bias=int(bias))
    return run_module(m, torch.randn(n, ic, hw, hw), cfg=cfg)


@case
def conv2d_basic():
    return conv(2, 3, 4, 7, 3, p=1)


@case
def conv2d_stride2_pad1():
    return conv(2, 3, 6, 8, 3, s=2, p=1)


@case
def conv2d_dilation2():
    return conv(2, 4, 4, 9, 3, p=2, d=2)


@case
def conv2d_groups2():
    return conv(2, 4, 6, 7, 3, p=1, g=2)


@case
def conv2d_depthwise_nobias():
    return conv(2, 4, 4, 7, 3, s=2, p=1, g=4, bias=False)


@case
def conv2d_nobias_k1():
    return conv(2, 5, 3, 6, 1, bias=False)


@case
def conv2d_blocked_groups_dilation():
    # 16+ channels: oneDNN's blocked layouts
    return conv(2, 16, 32, 8, 3, s=1, p=2, d=2, g=4)


def batchnorm(n, c, hw, train, scale=1.0, shift=0.0, momentum=0.1):
    m = nn.BatchNorm2d(c, eps=1e-5, momentum=momentum)
    with torch.no_grad():  # not the defaults, so every term shows
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.num_batches_tracked.fill_(3)
    x = torch.randn(n, c, hw, hw) * scale + shift
    out = run_module(m, x, train=train, cfg=dict(channels=c, eps=1e-5, momentum=momentum,
                                                 train=int(train)),
                     buffers_after=("running_mean", "running_var", "num_batches_tracked"))
    out["num_batches_tracked"] = torch.tensor([3.0])
    return out


@case
def batchnorm2d_train():
    return batchnorm(4, 3, 5, True)


@case
def batchnorm2d_eval():
    return batchnorm(4, 3, 5, False)


@case
def batchnorm2d_train_offset():
    # 16 channels, a large mean against the spread, another momentum
    return batchnorm(2, 16, 4, True, scale=0.5, shift=4.0, momentum=0.3)


@case
def leaky_relu_default():
    return run_module(nn.LeakyReLU(), torch.randn(2, 3, 4, 4), cfg=dict(negative_slope=0.01))


@case
def leaky_relu_slope02():
    return run_module(nn.LeakyReLU(0.2), torch.randn(3, 20), cfg=dict(negative_slope=0.2))


@case
def gelu():
    return run_module(nn.GELU(), torch.randn(2, 3, 5, 5) * 2.0)


@case
def identity():
    return run_module(nn.Identity(), torch.randn(2, 3, 2, 2))


def avgpool(k, s, p, cip, hw):
    m = nn.AvgPool2d(k, s, p, count_include_pad=cip)
    return run_module(m, torch.randn(2, 3, hw, hw),
                      cfg=dict(kernel=k, stride=s, padding=p, count_include_pad=int(cip)))


@case
def avg_pool2d_k2s2():
    return avgpool(2, 2, 0, True, 7)


@case
def avg_pool2d_k3s2p1():
    return avgpool(3, 2, 1, True, 8)


@case
def avg_pool2d_k3s1p1_nopad():
    return avgpool(3, 1, 1, False, 6)


@case
def global_avg_pool2d():
    return run_module(nn.AdaptiveAvgPool2d((1, 1)), torch.randn(2, 5, 6, 7))


@case
def max_pool2d_k2s2():
    return run_module(nn.MaxPool2d(2, 2), torch.randn(2, 3, 9, 9), cfg=dict(kernel=2, stride=2))


@case
def max_pool2d_k3s2():
    return run_module(nn.MaxPool2d(3, 2), torch.randn(2, 3, 9, 9), cfg=dict(kernel=3, stride=2))


@case
def max_pool2d_k3s2p1():
    # torchvision's ResNet stem
    return run_module(nn.MaxPool2d(3, 2, 1), torch.randn(2, 3, 8, 8),
                      cfg=dict(kernel=3, stride=2, padding=1))


@case
def linear_bias():
    return run_module(nn.Linear(10, 7), torch.randn(4, 10),
                      cfg=dict(in_features=10, out_features=7, bias=1))


@case
def linear_nobias():
    return run_module(nn.Linear(6, 9, bias=False), torch.randn(3, 6),
                      cfg=dict(in_features=6, out_features=9, bias=0))


def xent(ls, soft):
    n, k = 6, 5
    logits = (torch.randn(n, k) * 2.0).requires_grad_(True)
    labels = torch.randint(0, k, (n,))
    out = {"cfg.label_smoothing": torch.tensor([ls]), "cfg.soft": torch.tensor([float(soft)])}
    if soft:
        target = torch.softmax(torch.randn(n, k) * 2.0, dim=1)
        out["soft"] = target
        pred_of = target.argmax(1)
    else:
        target = labels
        pred_of = labels
    loss = F.cross_entropy(logits, target, label_smoothing=ls)
    loss.backward()
    out["logits"] = logits.detach()
    out["labels"] = labels.float()
    out["loss"] = loss.detach().reshape(1)
    out["dlogits"] = logits.grad
    out["correct"] = torch.tensor([float((logits.argmax(1) == pred_of).sum())])
    return out


@case
def cross_entropy_plain():
    return xent(0.0, False)


@case
def cross_entropy_smoothing():
    return xent(0.1, False)


@case
def cross_entropy_soft():
    return xent(0.0, True)


@case
def cross_entropy_soft_smoothing():
    return xent(0.1, True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures",
                                                                "layers")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    total = 0
    for i, fn in enumerate(CASES):
        torch.manual_seed(i)
        path = os.path.join(out_dir, fn.__name__ + ".rnfx")
        write(path, fn())
        total += os.path.getsize(path)
    print(f"wrote {len(CASES)} cases, {total} bytes, to {os.path.normpath(out_dir)}")


if __name__ == "__main__":
    main()
