#!/usr/bin/env python3
"""Single-core throughput of the PIL + torchvision JPEG pipeline, the reference for
benchmarks/bench_jpeg_pipeline.cpp (same work: open + decode + RandomResizedCrop(224) +
RandomHorizontalFlip + ToTensor + Normalize, and Resize(256) + CenterCrop(224) for eval).

    /usr/bin/python3 benchmarks/pil_jpeg_pipeline.py [--dir DIR] [--seconds 3]

Without --dir, 64 photo-like 500x375 JPEGs (gradients + low-frequency waves + noise, quality 90,
as the C++ benchmark makes them) are written to a temporary directory first. For the very same
files in both, run the C++ benchmark with TRANQ_JPEG_BENCH_DIR=DIR and pass --dir DIR here.
"""
import argparse
import glob
import os
import tempfile
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def photo_like(rng, h=375, w=500):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3))
    for c in range(3):
        base, gx, gy = rng.uniform(40, 200), rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2)
        amp, fx, fy, ph = rng.uniform(10, 40), rng.uniform(0.005, 0.05), rng.uniform(0.005, 0.05), rng.uniform(0, 6.28)
        img[..., c] = (base + gx * (x - w // 2) + gy * (y - h // 2)
                       + amp * np.sin(fx * x + ph) * np.cos(fy * y) + rng.uniform(-8, 8, (h, w)))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_files(d, n=64):
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(photo_like(rng)).save(os.path.join(d, f"img_{i:03d}.jpg"), quality=90)


def pil_loader(path):  # torchvision.datasets.folder.pil_loader
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def time_transform(paths, transform, seconds):
    for p in paths[:4]:  # warm-up
        transform(pil_loader(p))
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        transform(pil_loader(paths[n % len(paths)]))
        n += 1
    # Per wall second and per CPU second (the C++ benchmark's images_per_s is per CPU second).
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", help="directory of .jpg files (default: generate 64 in a temp dir)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per transform")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    evaluate = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    with tempfile.TemporaryDirectory() as tmp:
        d = args.dir or tmp
        if not args.dir:
            make_files(d)
        paths = sorted(glob.glob(os.path.join(d, "*.jpg")))
        if not paths:
            raise SystemExit(f"no .jpg files in {d}")
        kb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1000
        print(f"{len(paths)} files, {kb:.1f} kB on average; torch {torch.__version__}, PIL {Image.__version__}, 1 thread")
        for name, tf in (("train RandomResizedCrop(224)+flip", train), ("eval Resize(256)+CenterCrop(224)", evaluate)):
            wall, cpu = time_transform(paths, tf, args.seconds)
            print(f"{name:36s} {wall:8.1f} images/s wall, {cpu:8.1f} images/s per CPU second")


if __name__ == "__main__":
    main()
