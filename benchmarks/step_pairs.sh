#!/usr/bin/env bash
# Alternating side-by-side timing of training steps, so that this VM's drifting speed hits
# every contender alike: ROUNDS rounds, each running every contender once (20 timed steps,
# median), in an order that rotates from round to round. Prints each measurement as a JSON line
# and, per contender, the median of its per-round medians.
#   benchmarks/step_pairs.sh [ROUNDS] [THREADS]
# Contenders: ResNet-20 3x32x32 batch 128 in tranq (FP, W2A2 SGD, W2A2 SGDT) and in PyTorch
# (Debian's python3-torch, when installed).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
tranq=${TRANQ:-build/tranq}
common="--model resnet20 --input 3x32x32 --batch-size 128 --iters 20 --threads $threads"
contenders=("fp" "w2a2_sgd" "w2a2_sgdt")
/usr/bin/python3 -c "import torch" 2>/dev/null && contenders+=("pytorch")
log=$(mktemp)
run_one() {
  case $1 in
    fp) "$tranq" bench $common ;;
    w2a2_sgd) "$tranq" bench $common --wbits 2 --optimizer sgd ;;
    w2a2_sgdt) "$tranq" bench $common --wbits 2 --optimizer sgdt ;;
    pytorch) /usr/bin/python3 benchmarks/torch_resnet20_step.py --batch-size 128 --threads "$threads" --iters 20 ;;
  esac
}
n=${#contenders[@]}
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < n; i++)); do
    c=${contenders[$(((i + r) % n))]}
    line=$(run_one "$c")
    echo "{\"round\":$r,\"contender\":\"$c\",\"result\":$line}" | tee -a "$log"
  done
done
/usr/bin/python3 - "$log" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["contender"], []).append(r["result"])
for c, res in by.items():
    ms = [x["step_ms"] for x in res]
    rss = max(x["peak_rss_mb"] for x in res)
    print(f"{c:10s} median of medians {statistics.median(ms):8.2f} ms  per round {ms}  peak RSS {rss} MB")
PY
rm -f "$log"
