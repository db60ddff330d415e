#!/usr/bin/python3
"""Writes the whole-network PyTorch fixtures for tests/test_resnet_parity.c.

Run with the system Python that has Debian's python3-torch and python3-torchvision (not a pyenv
python):

    /usr/bin/python3 scripts/make_resnet_fixtures.py [OUT_DIR]   # default: tests/fixtures/resnet

No weights are stored: the C test and this script fill every parameter and buffer from the same
formula of (tensor name, element index), so the fixtures stay small. For a tensor called `name`
with elements i = 0, 1, ... (row-major), in 64-bit unsigned arithmetic (wrapping) and double:

    key(name) = FNV-1a 64 of the name's bytes (offset 0xcbf29ce484222325, prime 0x100000001b3)
    z         = key(name) + (i + 1) * 0x9e3779b97f4a7c15
    z         = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
    z         = (z ^ (z >> 27)) * 0x94d049bb133111eb
    z         = z ^ (z >> 31)                        (splitmix64's finaliser)
    s_i       = (z >> 11) * 2^-52 - 1                (exact in double, in [-1, 1))

then, rounded to float32:

    "*.weight" with ndim >= 2 (conv, linear)  s_i / sqrt(fan_in),  fan_in = numel / shape[0]
    "*.weight" with ndim 1 (batch norm)       1 + 0.1 * s_i
    "*.bias"                                  0.1 * s_i
    "*.running_mean"                          0.1 * s_i
    "*.running_var"                           1 + 0.5 * |s_i|
    "*.num_batches_tracked"                   0 (torchvision's default)

The input images are s_i of the name "input" (flat index i over the whole (N, C, H, W) batch),
and the ResNet-8 labels are label_k = (7 k + 3) mod 10 for sample k.

Why a hash and not sin(a i + b): a sinusoid in the flat index makes every conv and linear output
a sinusoid in its output channel (two degrees of freedom), so the 1000 logits would hardly
depend on the image; the hash has no such structure and needs no libm, so both sides agree
bit for bit.

The references are computed in float64 from those float32 values (the PyTorch module cast to
double), so they carry no float32 rounding of their own; the script prints how far PyTorch's own
float32 forward is from them, for scale.

Files (in OUT_DIR):
    resnet18_keys.txt, resnet8_keys.txt
        the model's state_dict keys in order, one per line: the name, then its dims separated by
        spaces (none for the scalar num_batches_tracked)
    resnet18.rnfx: torchvision.models.resnet18(num_classes=1000), eval mode, 2 images 3x64x64
        logits (2, 1000)
    resnet8.rnfx: ResNet-8 (models.resnet8{in_channels = 1, classes = 10}), train mode,
        4 images 1x28x28 and labels, mean cross-entropy
        logits (4, 10), labels (4), loss (1), grad.<param> (each trainable parameter's gradient),
        after.<buffer> (running_mean / running_var after the forward)
Both .rnfx files also hold
        checks (T, 2): per state-dict tensor except num_batches_tracked, in key order, the sum and
          the sum of |v| of its formula values (so a formula disagreement is reported as such)
        x_checks (2): the same two sums over the input images
The .rnfx format is scripts/make_fixtures.py's (tests/fixture_io.h reads it).
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write  # noqa: E402  (the RNFX0001 writer)


M64 = (1 << 64) - 1


def key(name):
    h = 0xcbf29ce484222325
    for b in name.encode("ascii"):
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def uniform(name, n):
    """s_i for i = 0..n-1 (float64, in [-1, 1)), as documented above."""
    with np.errstate(over="ignore"):
        z = np.uint64(key(name)) + (np.arange(1, n + 1, dtype=np.uint64) *
                                    np.uint64(0x9e3779b97f4a7c15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0


def formula(name, shape):
    """The value of every element of tensor `name` (float32, shape), as documented above."""
    n = int(np.prod(shape)) if len(shape) else 1
    s = uniform(name, n)
    if name.endswith(".weight") and len(shape) >= 2:
        v = s / math.sqrt(n // shape[0])
    elif name.endswith(".weight"):
        v = 1.0 + 0.1 * s
    elif name.endswith(".bias") or name.endswith(".running_mean"):
        v = 0.1 * s
    elif name.endswith(".running_var"):
        v = 1.0 + 0.5 * np.abs(s)
    else:
        raise ValueError(f"no formula for {name}")
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def images(shape):
    n = int(np.prod(shape))
    return torch.from_numpy(uniform("input", n).astype(np.float32).reshape(shape))


def sums(t):
    t = t.double()
    return [t.sum().item(), t.abs().sum().item()]


def fill(model):
    """Sets every float parameter and buffer from the formula; returns the checks array."""
    checks = []
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith(".num_batches_tracked"):
                t.zero_()
                continue
            v = formula(name, tuple(t.shape))
            t.copy_(v)
            checks.append(sums(v))
    return torch.tensor(checks, dtype=torch.float64)


def write_keys(path, model):
    with open(path, "w") as f:
        for name, t in model.state_dict().items():
            f.write(" ".join([name] + [str(d) for d in t.shape]) + "\n")


def resnet8(in_channels=1, classes=10):
    """CIFAR ResNet-8 with torchvision's module names, as recipes/lib/models.lua builds it."""
    def stage(inplanes, planes, stride):
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
        return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample))

    class ResNet8(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = stage(16, 16, 1)
            self.layer2 = stage(16, 32, 2)
            self.layer3 = stage(32, 64, 2)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet8()


def resnet18_case(out):
    model = torchvision.models.resnet18(num_classes=1000)
    checks = fill(model)
    write_keys(os.path.join(out, "resnet18_keys.txt"), model)
    x = images((2, 3, 64, 64))
    model.eval()
    with torch.no_grad():
        ref = model.double()(x.double())
        f32 = model.float()(x)
    err = (f32.double() - ref).abs().max().item()
    print(f"resnet18: {sum(p.numel() for p in model.parameters())} params, logits max|ref| "
          f"{ref.abs().max().item():.4g}, PyTorch float32 max|err| {err:.3g}")
    write(os.path.join(out, "resnet18.rnfx"),
          {"checks": checks, "x_checks": torch.tensor(sums(x), dtype=torch.float64),
           "logits": ref})


def resnet8_case(out):
    model = resnet8()
    checks = fill(model)
    write_keys(os.path.join(out, "resnet8_keys.txt"), model)
    x = images((4, 1, 28, 28))
    labels = torch.tensor([(7 * k + 3) % 10 for k in range(4)])
    arrays = {"checks": checks, "x_checks": torch.tensor(sums(x), dtype=torch.float64),
              "labels": labels}
    # float32 first, for scale only (the fixture holds the float64 run)
    m32 = resnet8()
    m32.load_state_dict(model.state_dict())
    m32.train()
    logits32 = m32(x)
    F.cross_entropy(logits32, labels).backward()
    model = model.double().train()
    logits = model(x.double())
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    arrays["logits"] = logits.detach()
    arrays["loss"] = loss.detach().reshape(1)
    for name, p in model.named_parameters():
        arrays[f"grad.{name}"] = p.grad
    for name, b in model.named_buffers():
        if b.dtype.is_floating_point:
            arrays[f"after.{name}"] = b
    worst = max((p32.grad.double() - p.grad).abs().max().item() / p.grad.abs().max().item()
                for p32, p in zip(m32.parameters(), model.parameters()))
    print(f"resnet8: {sum(p.numel() for p in model.parameters())} params, loss "
          f"{loss.item():.6f}, PyTorch float32 worst grad err / max|grad| {worst:.3g}")
    write(os.path.join(out, "resnet8.rnfx"), arrays)


def main():
    torch.set_num_threads(1)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "resnet")
    os.makedirs(out, exist_ok=True)
    resnet18_case(out)
    resnet8_case(out)


if __name__ == "__main__":
    main()
