#!/usr/bin/env bash
# The CPU comparison of docs/benchmarks.md, measured side by side in one run: the ResNet-20
# training step (3x32x32, batch 128) in tranq and in PyTorch's CPU build (Debian's
# python3-torch, when installed), then tranq's QAT steps (W2A2 with SGD and with SGDT).
#   benchmarks/compare_cpu.sh [THREADS] [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
iters=${2:-20}
tranq=${TRANQ:-build/tranq}
"$tranq" bench --model resnet20 --input 3x32x32 --batch-size 128 --iters "$iters" --threads "$threads"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  /usr/bin/python3 benchmarks/torch_resnet20_step.py --batch-size 128 --threads "$threads" --iters "$iters"
else
  echo "PyTorch not installed: no comparison (apt-get install python3-torch)" >&2
fi
"$tranq" bench --model resnet20 --input 3x32x32 --batch-size 128 --iters "$iters" --threads "$threads" --wbits 2 --optimizer sgd
"$tranq" bench --model resnet20 --input 3x32x32 --batch-size 128 --iters "$iters" --threads "$threads" --wbits 2 --optimizer sgdt
