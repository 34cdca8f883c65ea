#!/usr/bin/env bash
# The main job on real data: builds tranq, then trains ResNet-20 on Fashion-MNIST (installed by
# Debian's dataset-fashion-mnist) on the CPU and prints the test accuracy.
#   scripts/demo.sh [RUNDIR] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/fmnist-resnet20}
epochs=${2:-2}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target tranq_cli
build/tranq train --dataset fashion-mnist --data /usr/share/datasets/fashion-mnist \
  --model resnet20 --epochs "$epochs" --batch-size 128 --lr 0.1 --seed 0 --threads "$(nproc)" \
  --out "$run"
