#!/usr/bin/env bash
# The cost of exactly-once: the same generated trace through `ctrjoin run`
# (file source, 2 shards) with the plain file sink and with checkpoints at
# each commit interval (default 100 ms and 1 s), each run `runs` times;
# prints events/s per run and the median, and the checkpoint figures of the
# last EOS run per interval (checkpoint duration and barrier-to-commit p99,
# changelog bytes written).
#
#   bench/eos_cost.sh [impressions=1000000] [runs=3] [intervals_ms="100 1000"]
set -euo pipefail
impressions=${1:-1000000}
runs=${2:-3}
intervals=${3:-100 1000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/ctrjoin
work=$(mktemp -d /tmp/ctrjoin-eos-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" gen --impressions-out imp.jsonl --clicks-out clk.jsonl --count "$impressions" --seed 7 \
  >/dev/null 2>&1
events=$(($(wc -l <imp.jsonl) + $(wc -l <clk.jsonl)))
echo "trace: $events events ($impressions impressions), $(nproc) cores"
common="source: {type: files, files: {impressions: imp.jsonl, clicks: clk.jsonl}}
join: {window_ms: 60000, allowed_lateness_ms: 10000}
state: {dir: st, memory_budget_mb: 1024}
dead_letter: {type: file, path: dl.jsonl}
pipeline: {shards: 2}"
printf '%s\nsink: {type: file, path: plain.jsonl}\n' "$common" >plain.yaml
for ms in $intervals; do
  printf '%s\nsink: {type: file, path: out%s}\ncheckpoint: {enabled: true, interval_ms: %s}\n' \
    "$common" "$ms" "$ms" >eos$ms.yaml
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in plain $(for ms in $intervals; do printf 'eos%s ' "$ms"; done); do
  rates=()
  for _ in $(seq "$runs"); do
    rm -rf st out* plain.jsonl dl.jsonl
    start=$(date +%s.%N)
    "$bin" run --config $mode.yaml >log.txt 2>&1
    end=$(date +%s.%N)
    rates+=("$(echo "$events / ($end - $start)" | bc)")
  done
  echo "$mode: events/s ${rates[*]} -> median $(printf '%s\n' "${rates[@]}" | median)"
  grep -o "checkpoints [0-9]* .*" log.txt | sed 's/^/  /' || true
done
