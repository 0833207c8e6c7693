#!/usr/bin/env bash
# Exactly once against the commit interval: `ctrjoin bench` of
# bench/results/bench-eos-job.yaml (W 60 s, 2 shards, no lookups, the
# transactional file sink in a scratch directory) at each interval: the peak
# with checkpoints, the same without (the cost) and 50% of the peak (the
# visibility), each the median of `repeat` runs. Writes OUT/interval-<ms>.json
# and .txt, prints one line per interval, and draws OUT/interval_cost.png
# (bench/plot.py --intervals; needs python3-matplotlib: scripts/setup-bench).
#
#   bench/interval_sweep.sh [out=bench/results/interval-sweep] [events=2000000] [repeat=3]
#                           [intervals_ms="10 20 50 100 250 1000 2500 10000"] [seconds_per_load=12]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/bench/results/interval-sweep}")
events=${2:-2000000}
repeat=${3:-3}
intervals=${4:-10 20 50 100 250 1000 2500 10000}
seconds=${5:-12}
bin=$root/build/ctrjoin
mkdir -p "$out"
# The config by its path in the repository: the results record it, and should
# not name this machine's checkout.
cd "$root"
for ms in $intervals; do
  "$bin" bench -c bench/results/bench-eos-job.yaml --set "checkpoint.interval_ms=$ms" \
    --events "$events" --sink configured --loads 0.5 --seconds-per-load "$seconds" \
    --repeat "$repeat" --progress log --json "$out/interval-$ms.json" \
    >"$out/interval-$ms.txt" 2>"$out/interval-$ms.log"
  python3 - "$out/interval-$ms.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
runs = {r["name"]: r for r in d["runs"]}
half = runs["load-50%"]
print("interval {:>6} ms: peak {:>9,.0f} events/s, plain {:>9,.0f}, cost {:6.1f}%, "
      "visibility p99 at 50% {:8.1f} ms, barrier to commit p99 at the peak {:8.1f} ms".format(
          d["exactly_once"]["interval_ms"], runs["peak"]["events_per_s"],
          runs["plain"]["events_per_s"], d["exactly_once"]["cost_percent"],
          half["visibility_ms"]["p99"], runs["peak"]["commit_lag_ms"]["p99"]))
PY
done
/usr/bin/python3 "$root/bench/plot.py" --intervals "$out" "$out"/interval-*.json
echo "plot: $out/interval_cost.png"
