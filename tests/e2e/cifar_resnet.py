"""A CIFAR-10 archive in the exact layout of cifar-10-binary.tar.gz (small batches) trains a
ResNet-8 end to end; the weights file has torchvision's names, batch-norm buffers included."""
import io
import json
import os
import random
import re
import tarfile

from common import check, finish, read_safetensors, run, tempdir, write

tmp = tempdir()
archive = os.path.join(tmp, "cifar-10-binary.tar.gz")
rng = random.Random(5)
with tarfile.open(archive, "w:gz") as tar:
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        # 40 records of 1 label byte + 3072 pixel bytes; the class sets the image's brightness,
        # so a net can learn it.
        data = bytearray()
        for _ in range(40):
            label = rng.randrange(10)
            data.append(label)
            data += bytes(min(255, 20 * label + rng.randrange(40)) for _ in range(3072))
        info = tarfile.TarInfo("cifar-10-batches-bin/" + name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(bytes(data)))
    meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
    info.size = len(meta)
    tar.addfile(info, io.BytesIO(meta))

recipe = write(tmp, "cifar.lua", f"""
local models = import "lib.models"
return {{
  seed = 3,
  data = {{
    train = {{ format = "cifar10", archive = "{archive}" }},
    test = {{ format = "cifar10", archive = "{archive}" }},
    batch_size = 50,
    normalize = {{ mean = {{0.4914, 0.4822, 0.4465}}, std = {{0.2470, 0.2435, 0.2616}} }},
    augment = {{ {{ "random_crop", size = 32, padding = 4 }}, {{ "hflip" }} }},
  }},
  model = models.resnet8{{ classes = 10 }},
  optimizer = {{ "sgd", lr = 0.05, momentum = 0.9, weight_decay = 5e-4 }},
  callbacks = {{ {{ "csv_logger" }} }},
  epochs = 2,
}}
""")
out = os.path.join(tmp, "run")
p = run([recipe, "--out", out])
print(p.stdout)
check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
if p.returncode == 0:
    s = json.load(open(os.path.join(out, "summary.json")))
    check(s["train_images"] == 2 * 200 and s["steps"] == 2 * 4, f"{s['train_images']} images")
    check(s["test.acc"] is not None and 0 <= s["test.acc"] <= 1, "test.acc measured")
    header, data = read_safetensors(os.path.join(out, "model.safetensors"))
    names = set(header) - {"__metadata__"}
    for want, shape in [("conv1.weight", [16, 3, 3, 3]), ("bn1.running_var", [16]),
                        ("layer1.0.conv1.weight", [16, 16, 3, 3]), ("layer1.0.bn2.bias", [16]),
                        ("layer2.0.downsample.0.weight", [32, 16, 1, 1]),
                        ("layer3.0.downsample.1.running_mean", [64]), ("fc.weight", [10, 64])]:
        check(want in names and header[want]["shape"] == shape, f"{want} {shape}")
    check(not any("layer1.0.downsample" in n for n in names), "no downsample where shapes match")
    check(not any(".relu" in n for n in names), "no tensors for parameterless layers")

# The same recipe pointed at something that is not an archive: one line, nothing written.
bad = write(tmp, "not-an-archive.tar.gz", "hello")
p = run([recipe, "--out", os.path.join(tmp, "bad"), "--set", f'data.train.archive="{bad}"'])
check(p.returncode != 0 and bad in p.stderr and len(p.stderr.splitlines()) == 1,
      f"bad archive: {p.stderr!r}")
check(not os.path.exists(os.path.join(tmp, "bad")), "no run dir for a bad archive")
# recipes/cifar10_resnet18.lua checks out against an archive in the real layout.
from common import SOURCE
p = run([os.path.join(SOURCE, "recipes", "cifar10_resnet18.lua"), "--dry-run",
         "--set", f'data.train.archive="{archive}"', "--set", f'data.test.archive="{archive}"'])
check(p.returncode == 0 and "model resnet18: input 3x32x32, 11173962 parameters" in p.stdout,
      f"cifar10_resnet18 dry run: {p.stdout[:300]!r} {p.stderr!r}")
check(re.search(r"^\s+head\s+5130 parameters in 2 tensors$", p.stdout, re.M) is not None,
      "head group")
finish("e2e_cifar_resnet")
