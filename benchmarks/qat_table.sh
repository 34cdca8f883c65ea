#!/usr/bin/env bash
# Reruns the QAT table of docs/results.md: ResNet-20 on Fashion-MNIST, from a full-precision
# model trained by `tranq train`, W2A2 and W1A1 with SGD vs SGDT (3 seeds each) and W2A2 Adam
# vs AdamT (1 seed), the same epochs for all; then summarises the runs and draws their plots.
#   benchmarks/qat_table.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]
# Runs already finished in OUTDIR are kept (each run resumes), so the script can be restarted.
set -euo pipefail
fp=${1:?usage: qat_table.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]}
out=${2:?usage: qat_table.sh FP_WEIGHTS OUTDIR [EPOCHS] [THREADS]}
epochs=${3:-2}
threads=${4:-$(nproc)}
tranq=${TRANQ:-build/tranq}
data=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"

run() {  # name, flags...
  local name=$1; shift
  if grep -q '"kind":"epoch"' "$out/$name/metrics.jsonl" 2>/dev/null &&
     [ "$(grep -c '"kind":"epoch"' "$out/$name/metrics.jsonl")" -ge "$epochs" ]; then
    return
  fi
  echo "== $name" >&2
  "$tranq" train --dataset fashion-mnist --data "$data" --model resnet20 --epochs "$epochs" \
    --batch-size 128 --threads "$threads" --init-from "$fp" --out "$out/$name" --log-every 10 \
    --resume "$@" | tail -n 1
}

# Plain optimizers train the weight scales too; the T versions freeze them (method page).
# The TALR starts at the plain optimizer's LR; R_0 = 5e-3 * sqrt(bits).
for bits in 2 1; do
  for seed in 0 1 2; do
    run "w${bits}a${bits}-sgd-s$seed" --wbits $bits --optimizer sgd --lr 0.01 --seed $seed
    run "w${bits}a${bits}-sgdt-s$seed" --wbits $bits --optimizer sgdt --lr 0.01 --seed $seed
  done
done
run "w2a2-adam-s0" --wbits 2 --optimizer adam --lr 1e-3 --weight-decay 0 --seed 0
run "w2a2-adamt-s0" --wbits 2 --optimizer adamt --lr 1e-3 --weight-decay 0 --seed 0

for d in "$out"/*/; do "$tranq" plot "$d" --out "${d%/}.svg" >/dev/null; done
python3 "$(dirname "$0")/qat_summary.py" "$out"
