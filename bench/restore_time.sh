#!/usr/bin/env bash
# Restore time after kill -9: a generated trace whose windows stay open (W =
# 1 day, so every impression is pending) runs through `ctrjoin run` (file
# source and sink, checkpoints every 100 ms, 2 shards) until the hook kills
# it (SIGKILL) after the commit of epoch `kill_at_epoch`; the restart then
# restores that epoch from the changelogs. Prints the pending entries
# restored, the changelog's size on disk, and the restore time per shard
# (the restart's "restored ... in ... s" lines), then lets the restart end.
#
#   bench/restore_time.sh [impressions=1000000] [kill_at_epoch=20] [budget_mb=2048]
set -euo pipefail
impressions=${1:-1000000}
kill_at=${2:-20}
budget=${3:-2048}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/ctrjoin
work=$(mktemp -d /tmp/ctrjoin-restore-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" gen --impressions-out imp.jsonl --clicks-out clk.jsonl --count "$impressions" --seed 7 \
  --rate 100000 >/dev/null 2>&1
echo "trace: $impressions impressions, $(nproc) cores, state budget $budget MiB"
cat >job.yaml <<EOF
source: {type: files, files: {impressions: imp.jsonl, clicks: clk.jsonl}}
join: {window_ms: 86400000, allowed_lateness_ms: 0}
state: {dir: st, memory_budget_mb: $budget}
dead_letter: {type: file, path: dl.jsonl}
sink: {type: file, path: out}
checkpoint: {enabled: true, interval_ms: 100}
pipeline: {shards: 2}
EOF
CTRJOIN_CRASH_AT="after_commit:$kill_at" "$bin" run --config job.yaml >killed.log 2>&1 || true
grep -q "checkpoint: epoch" killed.log || { echo "the run ended before epoch $kill_at"; exit 1; }
log_bytes=$(du -sb st/checkpoints/changelog | cut -f1)
start=$(date +%s.%N)
"$bin" run --config job.yaml >restart.log 2>&1
end=$(date +%s.%N)
grep -o "checkpoint: restoring epoch [0-9]*" restart.log
grep -o "shard [0-9]* restored [0-9]* entries of epoch [0-9]* in [0-9.]* s" restart.log
echo "changelog on disk at the kill: $((log_bytes / 1048576)) MiB"
echo "restart to the end of the input: $(echo "$end - $start" | bc) s"
