#!/usr/bin/env bash
# The main job, on real data (Fashion-MNIST from Debian's dataset-fashion-mnist): builds tranq,
# trains ResNet-20 in full precision, then quantizes it to 2-bit weights and activations with
# transition-rate scheduling (SGDT), evaluates both, exports the integer model and draws the
# training curves.
#   scripts/demo.sh [RUNDIR] [FP_EPOCHS] [QAT_EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/demo}
fp_epochs=${2:-2}
qat_epochs=${3:-1}
data=/usr/share/datasets/fashion-mnist
threads=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$threads" --target tranq_cli
echo "== full precision: resnet20, $fp_epochs epochs"
build/tranq train --dataset fashion-mnist --data "$data" --model resnet20 --epochs "$fp_epochs" \
  --batch-size 128 --lr 0.1 --seed 0 --threads "$threads" --out "$run/fp" --resume
echo "== W2A2 QAT with SGDT: $qat_epochs epochs from the full-precision weights"
build/tranq train --dataset fashion-mnist --data "$data" --model resnet20 --epochs "$qat_epochs" \
  --batch-size 128 --lr 0.01 --seed 0 --threads "$threads" --wbits 2 --abits 2 --optimizer sgdt \
  --init-from "$run/fp/model.safetensors" --log-every 10 --out "$run/w2a2-sgdt" --resume
build/tranq export --model resnet20 --dataset fashion-mnist --weights "$run/w2a2-sgdt/model.safetensors" \
  --out "$run/w2a2-sgdt/integer.safetensors"
echo "== the exported integer model"
build/tranq eval --model resnet20 --dataset fashion-mnist --data "$data" --threads "$threads" \
  --weights "$run/w2a2-sgdt/integer.safetensors"
build/tranq plot "$run/w2a2-sgdt" --out "$run/w2a2-sgdt.svg"
echo "curves: $run/w2a2-sgdt.svg"
