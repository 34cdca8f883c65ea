#!/usr/bin/env bash
# Diagnosis runs of docs/results.md: what decides SGDT against SGD in short W2A2 runs. The
# recipe of qat_table.sh (W2A2, SGD lr / initial TALR 0.01) with one setting changed each:
# the TR momentum (the method's fixed 0.99 against the run-length default), the TALR rule, the
# initial target R_0, and whether the weight scales are learned.
#   benchmarks/qat_trs_variants.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]
set -euo pipefail
fp=${1:?usage: qat_trs_variants.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]}
out=${2:?usage: qat_trs_variants.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]}
epochs=${3:-1}
threads=${4:-$(nproc)}
tranq=${TRANQ:-build/tranq}
data=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"
run() {  # name, flags...
  local name=$1; shift
  echo "== $name" >&2
  "$tranq" train --dataset fashion-mnist --data "$data" --model resnet20 --epochs "$epochs" \
    --batch-size 128 --threads "$threads" --init-from "$fp" --out "$out/$name" --log-every 10 \
    --resume --wbits 2 --lr 0.01 "$@" | tail -n 1
}
run w2a2-sgdt-m0.99-s0 --optimizer sgdt --seed 0 --tr-momentum 0.99
run w2a2-sgdt-additive-s0 --optimizer sgdt --seed 0 --talr-rule additive
for r0 in 0.001 0.002 0.003 0.004; do
  run "w2a2-sgdt-r$r0-s0" --optimizer sgdt --seed 0 --target-tr "$r0"
done
for seed in 1 2; do
  run "w2a2-sgdt-r0.002-s$seed" --optimizer sgdt --seed "$seed" --target-tr 0.002
done
run w2a2-adamt-r0.002-s0 --optimizer adamt --lr 1e-3 --weight-decay 0 --seed 0 --target-tr 0.002
run w1a1-sgdt-r0.002-s0 --optimizer sgdt --seed 0 --target-tr 0.002 --wbits 1
run w2a2-sgd-frozen-s0 --optimizer sgd --seed 0 --weight-scale frozen
run w2a2-sgdt-learned-s0 --optimizer sgdt --seed 0 --weight-scale learned
python3 "$(dirname "$0")/qat_summary.py" "$out"
