#!/usr/bin/env python3
"""PyTorch peer for `tranq bench`: times full training steps (forward, backward, SGD) of the
CIFAR ResNet-20 (or torchvision's resnet18) on random data and prints one JSON line in tranq
bench's format: the same optimizer settings (SGD, lr 0.01 as apps/bench.h's kBenchLr, Nesterov
momentum 0.9, weight decay 5e-4), median step_ms after the warm-up, loss_first/loss_last, and
on CUDA peak_device_mb (torch.cuda.max_memory_allocated: the bytes tensors asked for, rounded to
512 B; tranq's counts them unrounded) and peak_device_reserved_mb (max_memory_reserved: what the
caching allocator held from the driver, as tranq's).

--precision bf16 is NOT the step of `tranq bench --precision bf16`: under torch.autocast(bfloat16)
conv outputs are bf16, and so are BatchNorm, ReLU, the residual add and the activations saved
for backward (batch_norm is on neither autocast list, so it runs in its input's bf16), whereas
tranq keeps all of these in f32 and rounds only the operands of the conv/linear products to bf16
(kernels/precision.h). PyTorch then moves about half the activation bytes, so its bf16 step_ms
and peak_device_mb are lower for a reason other than the implementation; compare bf16 rows as
two different recipes, and fp32 rows (or --tf32 on against tranq's --tf32) as the same step.

  /usr/bin/python3 benchmarks/torch_resnet20_step.py --batch-size 128 --threads 2 --iters 20
  python3 benchmarks/torch_resnet20_step.py --device cuda --model resnet18 --input 3x224x224 --batch-size 256
"""
import argparse, json, resource, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

BENCH_LR = 0.01  # tranq bench's (apps/bench.h, kBenchLr)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet20(nn.Module):
    def __init__(self, in_ch=3, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for i, (c, s) in enumerate([(16, 1), (32, 2), (64, 2)]):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(cin, c, s if b == 0 else 1))
                cin = c
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def set_tf32(on):
    """TF32 for fp32 convolutions and matmuls: through the fp32_precision settings where this
    PyTorch has them (the allow_tf32 flags are deprecated there), else the allow_tf32 flags."""
    conv, matmul = getattr(torch.backends.cudnn, "conv", None), torch.backends.cuda.matmul
    if hasattr(conv, "fp32_precision") and hasattr(matmul, "fp32_precision"):
        conv.fp32_precision = matmul.fp32_precision = "tf32" if on else "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cuda.matmul.allow_tf32 = on


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--input", default="3x32x32")
    p.add_argument("--model", default="resnet20", choices=["resnet20", "resnet18"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: torch.autocast(bfloat16) around forward and loss, fp32 weights; "
                        "activations, BatchNorm and ReLU then run in bf16 too, unlike tranq's "
                        "bf16 (products' operands only): not the same step")
    p.add_argument("--tf32", default="off", choices=["off", "on"],
                   help="TF32 tensor cores for fp32 convolutions and matmuls (PyTorch's own default "
                        "is on for convolutions, off for matmuls); off matches tranq's default, "
                        "on matches tranq bench --tf32")
    a = p.parse_args()
    set_tf32(a.tf32 == "on")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    c, h, w = (int(v) for v in a.input.split("x"))
    if a.model == "resnet20":
        model = ResNet20(c, a.classes)
    else:
        import torchvision  # only here: resnet20 runs without torchvision
        model = torchvision.models.resnet18(num_classes=a.classes)
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=BENCH_LR, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    x = torch.randn(a.batch_size, c, h, w, device=dev)
    y = torch.randint(0, a.classes, (a.batch_size,), device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    loss_first = loss_last = None
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sync()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
        # Outside the timing, as tranq bench reads its loss.
        loss_last = loss.item()
        if i == 0:
            loss_first = loss_last
    step = statistics.median(times)
    out = {"framework": "pytorch " + torch.__version__, "model": a.model, "device": a.device,
           "input": a.input, "batch_size": a.batch_size, "threads": a.threads,
           "precision": a.precision, "tf32": a.tf32 == "on",
           "iters": a.iters, "step_ms": round(step * 1e3, 2),
           "step_ms_min": round(min(times) * 1e3, 2),
           "images_per_s": round(a.batch_size / step, 1),
           "loss_first": loss_first, "loss_last": loss_last,
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if dev.type == "cuda":
        out["peak_device_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        out["peak_device_reserved_mb"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
