#!/usr/bin/env python3
"""Loads a tranq model.safetensors into PyTorch with load_state_dict(strict=True) and prints
PyTorch's accuracy on the Fashion-MNIST test set, to be set beside the test_acc tranq reports
for the same file (`tranq eval`). The file is parsed by hand (8-byte header size, JSON header,
raw little-endian data), as the `safetensors` package does.

  /usr/bin/python3 scripts/torch_load_check.py RUNDIR/model.safetensors [N_IMAGES]
"""
import gzip, json, os, struct, sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from torch_resnet20_step import ResNet20  # noqa: E402

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
          "I8": torch.int8, "U8": torch.uint8}


def load(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:e]), dtype=DTYPES[info["dtype"]]) if e > b else \
            torch.empty(0, dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


def main():
    sd = load(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    model = ResNet20(in_ch=1, classes=10)
    model.load_state_dict(sd, strict=True)
    model.eval()
    root = "/usr/share/datasets/fashion-mnist"
    imgs = gzip.open(f"{root}/t10k-images-idx3-ubyte.gz").read()[16:]
    labels = gzip.open(f"{root}/t10k-labels-idx1-ubyte.gz").read()[8:]
    x = torch.frombuffer(bytearray(imgs), dtype=torch.uint8)[: n * 784].reshape(n, 1, 28, 28).float() / 255
    x = (x - 0.2860) / 0.3530
    y = torch.tensor(list(labels[:n]))
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    print(json.dumps({"loaded_tensors": len(sd), "strict": True, "pytorch_test_acc": round(100 * acc, 2)}))


if __name__ == "__main__":
    main()
