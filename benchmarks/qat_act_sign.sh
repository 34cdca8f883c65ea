#!/usr/bin/env bash
# Signed against unsigned input quantizers for MobileNetV2 (--act-sign auto vs unsigned): a
# full-precision MobileNetV2 trained on Fashion-MNIST by `tranq train`, then the same SGDT QAT
# run from it with either setting. Prints one JSON line per QAT run (final test accuracy).
#   benchmarks/qat_act_sign.sh OUTDIR [FP_EPOCHS] [QAT_EPOCHS] [BITS] [THREADS]
# Runs already finished in OUTDIR are kept (each run resumes), so the script can be restarted.
set -euo pipefail
out=${1:?usage: qat_act_sign.sh OUTDIR [FP_EPOCHS] [QAT_EPOCHS] [BITS] [THREADS]}
fp_epochs=${2:-2}
qat_epochs=${3:-1}
bits=${4:-4}
threads=${5:-$(nproc)}
tranq=${TRANQ:-build/tranq}
data=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"

run() {  # name, epochs, flags...
  local name=$1 epochs=$2
  shift 2
  "$tranq" train --dataset fashion-mnist --data "$data" --model mobilenet_v2 --epochs "$epochs" \
    --batch-size 128 --threads "$threads" --out "$out/$name" --log-every 50 --resume "$@" |
    tail -n 1
}

fp=$(run fp "$fp_epochs" --lr 0.1)  # test_acc=XX.XX
echo "{\"run\": \"fp\", \"epochs\": $fp_epochs, \"test_acc\": ${fp#test_acc=}}"
for sign in unsigned auto; do
  acc=$(run "w${bits}a${bits}-sgdt-$sign" "$qat_epochs" --wbits "$bits" --optimizer sgdt \
    --lr 0.01 --act-sign "$sign" --init-from "$out/fp/model.safetensors")
  echo "{\"run\": \"w${bits}a${bits} sgdt\", \"act_sign\": \"$sign\", \"epochs\": $qat_epochs, \"test_acc\": ${acc#test_acc=}}"
done
