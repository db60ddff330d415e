"""Every optimizer plugin trains the MNIST-example CNN through the real loop with a schedule that
also drives momentum / beta1 (one_cycle): the test loss must fall well below chance's ln(10)."""
import json
import math
import os

from common import check, finish, run, small_recipe, tempdir, write

tmp = tempdir()
cases = [
    ("sgd", '{ "sgd", lr = 0.05, momentum = 0.9 }', '{ "one_cycle" }'),
    ("adam", '{ "adam", lr = 2e-3 }', '{ "one_cycle" }'),
    ("adamw", '{ "adamw", lr = 2e-3, weight_decay = 0.05 }', '{ "one_cycle" }'),
    ("rmsprop", '{ "rmsprop", lr = 1e-3, momentum = 0.9 }', '{ "one_cycle" }'),
    ("lion", '{ "lion", lr = 2e-4, weight_decay = 0.1 }', '{ "cosine", warmup_epochs = 0.5 }'),
    ("lamb", '{ "lamb", lr = 1e-2 }', '{ "multistep", milestones_epochs = "1" }'),
]
for name, opt, sched in cases:
    recipe = write(tmp, f"{name}.lua", small_recipe(epochs=2, limit=1024, test_limit=256,
                                                    optimizer=opt, schedule=sched))
    out = os.path.join(tmp, name)
    p = run([recipe, "--out", out])
    check(p.returncode == 0, f"{name}: exit {p.returncode}: {p.stderr}")
    if p.returncode == 0:
        s = json.load(open(os.path.join(out, "summary.json")))
        print(f"{name}: test.loss {s['test.loss']:.4f} test.acc {s['test.acc']:.4f}")
        check(s["test.loss"] < 0.6 * math.log(10), f"{name}: test.loss {s['test.loss']}")
finish("e2e_optimizers")
