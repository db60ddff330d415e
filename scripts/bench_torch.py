"""PyTorch side of scripts/bench: a zoo model trained on images held in memory, batch 128, SGD
with momentum, the same work as runner's bench recipe (scripts/bench.d/<model>.lua). Prints one
JSON line: {"images_per_s": ...} over the measured epochs (the first epoch is warm-up).
  mnist_cnn, resnet8: the first --images Fashion-MNIST training images (1x28x28)
  resnet18: torchvision's ResNet-18 with the CIFAR stem on random 3x32x32 images"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):  # github.com/pytorch/examples mnist/main.py, minus log_softmax (in the loss)
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return self.fc2(x)


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def resnet18_cifar():
    import torchvision
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)  # lib.models.resnet18{cifar_stem=true}
    m.maxpool = nn.Identity()
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mnist_cnn", choices=["mnist_cnn", "resnet8", "resnet18"])
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tta", type=float, default=None, metavar="ACC",
                    help="recipes/fashion_resnet8.lua in PyTorch instead: print each epoch's "
                         "test accuracy and the wall time at which it first reached ACC")
    ap.add_argument("--inference", action="store_true",
                    help="time evaluation instead: eval mode, no_grad, the loss and the argmax "
                         "per batch, two passes over the images, the second timed")
    ap.add_argument("--lr-find", action="store_true",
                    help="time fastai's lr_find instead (100 steps from 1e-7 to 10, AdamW)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.tta is not None:
        return tta(a.tta)
    if a.model == "resnet18":
        x = torch.rand(a.images, 3, 32, 32)
        y = torch.randint(0, 10, (a.images,))
        model = resnet18_cifar()
    else:
        root = "/usr/share/datasets/fashion-mnist/"
        x = idx(root + "train-images-idx3-ubyte.gz")[: a.images].astype(np.float32) / 255.0
        y = idx(root + "train-labels-idx1-ubyte.gz")[: a.images].astype(np.int64)
        x = torch.from_numpy((x - 0.2860) / 0.3530).unsqueeze(1).contiguous()
        y = torch.from_numpy(y)
        if a.model == "resnet8":
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from make_resnet_fixtures import resnet8
            model = resnet8(in_channels=1, classes=10)
        else:
            model = Net()
    if a.lr_find:
        return lr_find(model, x, y, a.batch)
    if a.inference:
        return inference(model, x, y, a.batch)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    measured, seconds = 0, 0.0
    for epoch in range(a.epochs):
        perm = torch.randperm(len(x))
        t0 = time.perf_counter()
        for i in range(0, len(x), a.batch):
            idx_ = perm[i:i + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx_]), y[idx_])
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        if epoch > 0:
            measured += len(x)
            seconds += dt
    print(json.dumps({"images_per_s": measured / seconds, "loss": float(loss)}))


def tta(target):
    """recipes/fashion_resnet8.lua, step for step in kind: ResNet-8 on all 60,000 Fashion-MNIST
    training images, batch 128, random crop 28 with zero padding 2 and a horizontal flip per
    sample (done on the batch tensor, as cheaply as torch allows), SGD lr 0.1 Nesterov momentum
    0.9 weight decay 5e-4, a linear warm-up over the first epoch from lr/1000 then cosine to 0
    (SequentialLR of LinearLR and CosineAnnealingLR, stepped per batch), 10 epochs, the test set
    evaluated after each. The clock starts before the first epoch (data already in memory, as
    runner's time_s after loading)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_resnet_fixtures import resnet8
    root = "/usr/share/datasets/fashion-mnist/"

    def load(split):
        x = idx(root + f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        y = idx(root + f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
        return torch.from_numpy((x - 0.2860) / 0.3530).unsqueeze(1).contiguous(), \
            torch.from_numpy(y)

    x, y = load("train")
    tx, ty = load("t10k")
    model = resnet8(in_channels=1, classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    batch, epochs = 128, 10
    spe = (len(x) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, end_factor=1.0,
                                          total_iters=spe),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spe * (epochs - 1))],
        milestones=[spe])
    zero = (0.0 - 0.2860) / 0.3530  # a black pixel after normalization: the crop's padding
    reached = None
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            idx_ = perm[i:i + batch]
            xb = F.pad(x[idx_], (2, 2, 2, 2), value=zero)
            n = len(idx_)
            dy, dx = torch.randint(0, 5, (n,)), torch.randint(0, 5, (n,))
            rows = (dy[:, None] + torch.arange(28)[None, :])[:, None, :, None]
            cols = (dx[:, None] + torch.arange(28)[None, :])[:, None, None, :]
            xb = xb[torch.arange(n)[:, None, None, None], torch.zeros(1, 1, 1, 1, dtype=torch.long),
                    rows, cols]
            flip = torch.rand(n) < 0.5
            xb[flip] = xb[flip].flip(3)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), y[idx_]).backward()
            opt.step()
            sched.step()
        model.eval()
        hits = 0
        with torch.no_grad():
            for i in range(0, len(tx), 512):
                hits += int((model(tx[i:i + 512]).argmax(1) == ty[i:i + 512]).sum())
        acc, now = hits / len(tx), time.perf_counter() - t0
        if reached is None and acc >= target:
            reached = now
        print(json.dumps({"epoch": epoch, "test_acc": acc, "time_s": now}), flush=True)
    print(json.dumps({"target": target, "reached_s": reached}))


def inference(model, x, y, batch):
    """What runner's evaluation computes per batch: logits, mean loss, argmax hits."""
    model.eval()
    seconds = 0.0
    with torch.no_grad():
        for rep in range(2):
            t0 = time.perf_counter()
            loss, hits = 0.0, 0
            for i in range(0, len(x), batch):
                out = model(x[i:i + batch])
                loss += float(F.cross_entropy(out, y[i:i + batch], reduction="sum"))
                hits += int((out.argmax(1) == y[i:i + batch]).sum())
            seconds = time.perf_counter() - t0
    print(json.dumps({"images_per_s": len(x) / seconds, "loss": loss / len(x),
                      "acc": hits / len(x)}))


def lr_find(model, x, y, batch, steps=100, start=1e-7, end=10.0, beta=0.98):
    """What fastai's Learner.lr_find does, in plain torch: save the model and optimizer, take
    `steps` AdamW steps (fastai's defaults) at start*(end/start)^(i/steps) on shuffled batches,
    smooth the loss, restore. One JSON line: {"seconds": the sweep, state copies included}."""
    import copy
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    model.train()
    t0 = time.perf_counter()
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    perm, at, avg = torch.randperm(len(x)), 0, 0.0
    for i in range(steps):
        for group in opt.param_groups:
            group["lr"] = start * (end / start) ** (i / steps)
        if at + batch > len(x):
            perm, at = torch.randperm(len(x)), 0
        idx_ = perm[at:at + batch]
        at += batch
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx_]), y[idx_])
        loss.backward()
        opt.step()
        avg = beta * avg + (1 - beta) * float(loss)
    model.load_state_dict(saved_model)
    opt.load_state_dict(saved_opt)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "smooth_loss": avg / (1 - beta ** steps)}))


if __name__ == "__main__":
    main()
