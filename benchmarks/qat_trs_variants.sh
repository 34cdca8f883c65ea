#!/usr/bin/env bash
# Diagnosis runs of docs/results.md: why SGDT trails SGD in short runs. The same W2A2 recipe as
# qat_table.sh (seed 0) with a faster TR controller (EMA momentum 0.9 instead of 0.99) under
# both TALR rules, and a lower initial target.
#   benchmarks/qat_trs_variants.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]
set -euo pipefail
fp=${1:?usage: qat_trs_variants.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]}
out=${2:?usage: qat_trs_variants.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]}
epochs=${3:-1}
threads=${4:-$(nproc)}
tranq=${TRANQ:-build/tranq}
data=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"
run() {
  local name=$1; shift
  echo "== $name" >&2
  "$tranq" train --dataset fashion-mnist --data "$data" --model resnet20 --epochs "$epochs" \
    --batch-size 128 --threads "$threads" --init-from "$fp" --out "$out/$name" --log-every 10 \
    --resume --wbits 2 --optimizer sgdt --lr 0.01 --seed 0 "$@" | tail -n 1
}
run w2a2-sgdt-m0.9-s0 --tr-momentum 0.9
run w2a2-sgdt-additive-m0.9-s0 --tr-momentum 0.9 --talr-rule additive
run w2a2-sgdt-m0.9-tr0.004-s0 --tr-momentum 0.9 --target-tr 0.004
