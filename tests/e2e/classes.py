"""data.<split>.classes: a run on classes { 7, 3 } sees only their samples, in the file's order,
relabeled by their place in the list (7 -> 0, 3 -> 1), before `limit`; summary.json's per-class
supports are those of the filtered test split. An empty list, a class out of range for the data
or listed twice, or a class label that is no integer is one line naming the key, exit 1, and no
run directory."""
import gzip
import json
import os

from common import FASHION, check, finish, run, tempdir, write

tmp = tempdir()


def recipe(name, train_classes, test_classes="{ 7, 3 }"):
    return write(tmp, name, f"""
local models = import "lib.models"
local datasets = import "lib.datasets"
local fm = datasets.fashion_mnist{{ limit = 256, test_limit = 300 }}
fm.train.classes = {train_classes}
fm.test.classes = {test_classes}
return {{
  seed = 7,
  data = {{ train = fm.train, test = fm.test, batch_size = 64,
           normalize = datasets.fashion_mnist_stats }},
  model = models.mnist_cnn{{ classes = 2 }},
  optimizer = {{ "sgd", lr = 0.05, momentum = 0.9 }},
  callbacks = {{ {{ "csv_logger" }} }},
  epochs = 1,
}}
""")


# The expected supports: the first 300 test samples of class 7 or 3, counted per class.
labels = gzip.open(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz")).read()[8:]
kept = [x for x in labels if x in (7, 3)][:300]
want = [kept.count(7), kept.count(3)]
check(want[0] != want[1], f"the supports tell 7 from 3: {want}")

out = os.path.join(tmp, "run")
p = run([recipe("ok.lua", "{ 7, 3 }"), "--out", out])
check(p.returncode == 0, f"classes {{7, 3}}: {p.stderr}")
check("(256 train / 300 test images" in p.stdout, f"sample counts: {p.stdout!r}")
if p.returncode == 0:
    s = json.load(open(os.path.join(out, "summary.json")))
    got = [c["support"] for c in s["per_class"]]
    check(got == want, f"per-class supports {got}, expected {want} (7 -> 0, 3 -> 1)")

# --dry-run counts the same samples: every class of the full splits.
p = run([recipe("dry.lua", "{ 3, 7 }"), "--dry-run", "--set", "data.train.limit=nil",
         "--set", "data.test.limit=nil"])
check(p.returncode == 0 and "(12000 train / 2000 test images" in p.stdout, f"dry run: {p.stdout!r}")

bad = [
    ("empty", "{}", "{ 7, 3 }",
     "data.train.classes: expected a non-empty list of class labels, got an empty table"),
    ("range", "{ 3, 10 }", "{ 7, 3 }",
     "data.train.classes[2]: class 10 is out of range: the data has 10 classes (0 to 9)"),
    ("test_range", "{ 7, 3 }", "{ 7, 12 }",
     "data.test.classes[2]: class 12 is out of range: the data has 10 classes (0 to 9)"),
    ("twice", "{ 3, 7, 3 }", "{ 7, 3 }",
     "data.train.classes[3]: class 3 is listed twice (also [1])"),
    ("negative", "{ -1 }", "{ 7, 3 }",
     "data.train.classes[1]: expected a class label (an integer >= 0), got number -1"),
    ("float", "{ 3, 7.5 }", "{ 7, 3 }",
     "data.train.classes[2]: expected a class label (an integer >= 0), got number 7.5"),
    ("not_list", '"3"', "{ 7, 3 }",
     'data.train.classes: expected a list of class labels, got string "3"'),
]
for name, train, test, msg in bad:
    out = os.path.join(tmp, name)
    p = run([recipe(name + ".lua", train, test), "--out", out])
    lines = p.stderr.splitlines()
    check(p.returncode == 1 and len(lines) == 1 and msg in lines[0],
          f"{name}: exit {p.returncode}, {p.stderr!r}")
    check(not os.path.exists(out), f"{name}: nothing written")
finish("e2e_classes")
