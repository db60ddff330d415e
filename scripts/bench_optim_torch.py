"""PyTorch side of scripts/bench --optim: ms per optimizer step over torchvision ResNet-18's
parameters (62 weight and bias tensors, 11,689,512 floats), the same work as runner's
tests/bench_optim.c. Prints one JSON line per optimizer, as bench_optim does:
  {"optimizer": "sgd", "impl": "torch.optim", "foreach": true, "tensors": 62, "numel": ...,
   "steps": N, "ms_per_step": <median of the timed steps>, "ms_mean": ..., "ms_min": ...}
sgd, adam, adamw, rmsprop are torch.optim (foreach=True or False as asked). torch 1.13 has no Lion or
LAMB: those are written here with torch ops, per tensor as lion-pytorch's update_fn and timm's Lamb
do (foreach=False), or with torch._foreach_* ops (foreach=True); "impl" says "torch ops"."""
import argparse
import json
import math
import statistics
import time

import torch

# The settings tests/bench_optim.c gives the plugins.
SETTINGS = {
    "sgd": dict(lr=0.01, momentum=0.9),
    "adam": dict(lr=1e-3),
    "adamw": dict(lr=1e-3, weight_decay=1e-2),
    "rmsprop": dict(lr=1e-2, momentum=0.9),
    "lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-2),
    "lamb": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=1e-2),
}


class Lion(torch.optim.Optimizer):
    """lucidrains/lion-pytorch (decoupled_weight_decay=False), as plugins/optimizers/lion.c."""

    def __init__(self, params, lr, betas, weight_decay, foreach):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))
        self.foreach = foreach

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, (b1, b2) = group["lr"], group["weight_decay"], group["betas"]
            ps = [p for p in group["params"] if p.grad is not None]
            gs = [p.grad for p in ps]
            for p in ps:
                if "exp_avg" not in self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
            ms = [self.state[p]["exp_avg"] for p in ps]
            if not self.foreach:
                for p, g, m in zip(ps, gs, ms):
                    p.mul_(1 - lr * wd)
                    update = m.clone().mul_(b1).add(g, alpha=1 - b1).sign_()
                    p.add_(update, alpha=-lr)
                    m.mul_(b2).add_(g, alpha=1 - b2)
                continue
            if wd != 0:
                torch._foreach_mul_(ps, 1 - lr * wd)
            update = torch._foreach_mul(ms, b1)
            torch._foreach_add_(update, gs, alpha=1 - b1)
            for u in update:  # no _foreach_sign in torch 1.13
                u.sign_()
            torch._foreach_add_(ps, update, alpha=-lr)
            torch._foreach_mul_(ms, b2)
            torch._foreach_add_(ms, gs, alpha=1 - b2)


class Lamb(torch.optim.Optimizer):
    """timm.optim.Lamb (NVLAMB) with max_grad_norm=None, grad_averaging, bias_correction, no
    trust clip, always_adapt=False, as plugins/optimizers/lamb.c."""

    def __init__(self, params, lr, betas, eps, weight_decay, foreach):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.foreach = foreach

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, eps, (b1, b2) = group["lr"], group["weight_decay"], group["eps"], group["betas"]
            group["step"] = group.get("step", 0) + 1
            bc1, bc2 = 1 - b1 ** group["step"], 1 - b2 ** group["step"]
            ps = [p for p in group["params"] if p.grad is not None]
            gs = [p.grad for p in ps]
            for p in ps:
                if "exp_avg" not in self.state[p]:
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p)
            ms = [self.state[p]["exp_avg"] for p in ps]
            vs = [self.state[p]["exp_avg_sq"] for p in ps]
            if not self.foreach:
                one = torch.tensor(1.0)
                for p, g, m, v in zip(ps, gs, ms, vs):
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                    update = (m / bc1).div_(denom)
                    if wd != 0:
                        update.add_(p, alpha=wd)
                        w_norm, u_norm = p.norm(2.0), update.norm(2.0)
                        ratio = torch.where(w_norm > 0,
                                            torch.where(u_norm > 0, w_norm / u_norm, one), one)
                        update.mul_(ratio)
                    p.add_(update, alpha=-lr)
                continue
            torch._foreach_mul_(ms, b1)
            torch._foreach_add_(ms, gs, alpha=1 - b1)
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, math.sqrt(bc2))
            torch._foreach_add_(denom, eps)
            update = torch._foreach_div(ms, bc1)
            torch._foreach_div_(update, denom)
            if wd != 0:
                torch._foreach_add_(update, ps, alpha=wd)
                w = torch.stack(torch._foreach_norm(ps))
                u = torch.stack(torch._foreach_norm(update))
                ratio = torch.where((w > 0) & (u > 0), w / u, torch.ones_like(w))
                torch._foreach_mul_(update, ratio.tolist())
            torch._foreach_add_(ps, update, alpha=-lr)


def make(name, params, foreach):
    s = SETTINGS[name]
    if name == "sgd":
        return torch.optim.SGD(params, foreach=foreach, **s)
    if name == "adam":
        return torch.optim.Adam(params, foreach=foreach, **s)
    if name == "adamw":
        return torch.optim.AdamW(params, foreach=foreach, **s)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, foreach=foreach, **s)
    if name == "lion":
        return Lion(params, foreach=foreach, **s)
    return Lamb(params, foreach=foreach, **s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--foreach", type=int, default=1, choices=[0, 1])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=",".join(SETTINGS))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import torchvision
    shapes = [p.shape for _, p in torchvision.models.resnet18().named_parameters()]
    torch.manual_seed(1)
    grads = [torch.randn(s) * 1e-2 for s in shapes]
    for name in a.only.split(","):
        params = [torch.nn.Parameter(torch.randn(s) * 5e-2) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g
        opt = make(name, params, bool(a.foreach))
        times = []
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            opt.step()
            dt = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(dt)
        check = sum(float(p.view(-1)[0]) for p in params)
        print(json.dumps({
            "optimizer": name,
            "impl": "torch.optim" if name in ("sgd", "adam", "adamw", "rmsprop") else "torch ops",
            "foreach": bool(a.foreach), "tensors": len(params),
            "numel": sum(p.numel() for p in params), "steps": a.steps,
            "ms_per_step": round(1e3 * statistics.median(times), 3),
            "ms_mean": round(1e3 * statistics.mean(times), 3),
            "ms_min": round(1e3 * min(times), 3), "finite": math.isfinite(check)}), flush=True)


if __name__ == "__main__":
    main()
