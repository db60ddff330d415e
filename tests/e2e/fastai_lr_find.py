"""fastai's lr_find post-processing, transcribed from fastai/callback/schedule.py (2.7) into plain
Python (fastai computes the same on torch tensors): the trim of the recorded curve and the three
suggestion functions. The reference the LR-finder test checks runner's numbers against."""
import math


def trim(lrs, losses, num_it):
    """lrs[num_it // 10 : -5], losses likewise, cut at the first NaN loss."""
    lrs, losses = lrs[num_it // 10:-5], losses[num_it // 10:-5]
    for i, v in enumerate(losses):
        if math.isnan(v):
            return lrs[:i], losses[:i]
    return lrs, losses


def valley(lrs, losses, num_it):
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), losses[idx])


def steep(lrs, losses, num_it):
    grads = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
             for i in range(len(lrs) - 1)]
    k = min(range(len(grads)), key=lambda i: grads[i])
    return lrs[k], (lrs[k], losses[k])


def minimum(lrs, losses, num_it):
    k = min(range(len(losses)), key=lambda i: losses[i])
    return lrs[k] / 10, (lrs[k], losses[k])


def suggestions(lrs, losses, num_it):
    lrs, losses = trim(lrs, losses, num_it)
    return {f.__name__: f(lrs, losses, num_it)[0] for f in (valley, steep, minimum)}
