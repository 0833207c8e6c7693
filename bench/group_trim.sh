#!/usr/bin/env bash
# The changelog topic of a job that keeps up (txn/README.md, "Several
# processes on one job"): input produced in real time, one slice of RATE
# impressions a second for SECONDS seconds (`ctrjoin gen --brokers`, event
# time = now, clicks at most 2 x MEAN_CLICK_DELAY_MS after their impression),
# read by one `ctrjoin run` process (mode group, checkpoints every 100 ms,
# Kafka sink, 1 shard, W = WINDOW_MS, L = 0). Then `ctrjoin tasks` says what
# trimming left of the topic, and a second process with an empty state
# directory restores every task from it (what a moved task reads).
#
#   bench/group_trim.sh [seconds=60] [rate=5000] [partitions=4]
# Environment: WINDOW_MS (default 10000), MEAN_CLICK_DELAY_MS (default 1000).
set -euo pipefail
seconds=${1:-60}
rate=${2:-5000}
partitions=${3:-4}
window_ms=${WINDOW_MS:-10000}
click_delay_ms=${MEAN_CLICK_DELAY_MS:-1000}
# shellcheck source=bench/group_common.sh
source "$(dirname "$0")/group_common.sh"

job() {  # name
  cat >"$1.yaml" <<YAML
source:
  type: kafka
  kafka: {brokers: "$brokers", group_id: trim, mode: group, start: earliest}
join: {window_ms: $window_ms, allowed_lateness_ms: 0}
sink:
  type: kafka
  kafka: {brokers: "$brokers", topic: samples, transactional_id_prefix: trim}
dead_letter: {type: file, path: dl-$1.jsonl}
state: {dir: st-$1, memory_budget_mb: 1024}
checkpoint: {enabled: true, interval_ms: 100}
pipeline: {shards: 1}
http: {enabled: false}
YAML
}

broker_port=$(free_port)
"$broker_bin" --port "$broker_port" --default-partitions "$partitions" --log-level 0 \
  >broker.log 2>&1 &
pids+=($!)
sleep 0.5
brokers=127.0.0.1:$broker_port
job first
"$bin" run --config first.yaml >first.log 2>&1 &
first=$!
pids+=($first)
for i in $(seq 1 "$seconds"); do
  started=$(date +%s%N)
  "$bin" gen --brokers "$brokers" --count "$rate" --rate "$rate" --seed "$i" \
    --start-ms $(( started / 1000000 )) --mean-click-delay-ms "$click_delay_ms" \
    --click-delay uniform >>gen.log 2>&1
  left=$(( 1000000000 - ($(date +%s%N) - started) ))
  [ "$left" -gt 0 ] && sleep "$(printf '0.%09d' "$left")"
  if [ $(( i % 10 )) -eq 0 ]; then
    "$bin" tasks --config first.yaml >tasks.txt 2>/dev/null
    echo "after $(printf '%3d' "$i") s: changelog topic keeps $(changelog_kept tasks.txt)"
  fi
done
sleep 3
kill -TERM "$first"
wait "$first" || true
"$bin" tasks --config first.yaml >tasks.txt 2>tasks.log
echo "$((seconds * rate)) impressions over $seconds s in real time, W = $window_ms ms, $partitions tasks:"
echo "  changelog topic kept at the end: $(changelog_kept tasks.txt)"

job second
restore_all "$partitions"
grep ' restored .* entries from ' second.log |
  sed -E 's/.*task ([0-9]+) restored ([0-9]+) entries from ([0-9]+) bytes .* in ([0-9.]+) s.*/\1 \2 \3 \4/' |
  awk -v n="$((seconds * rate))" '
    { printf "  task %d: restored %d entries from %d bytes in %.2f s\n", $1, $2, $3, $4
      entries += $2; bytes += $3; if ($4 > max) max = $4 }
    END { printf "  all: %d entries from %d bytes = %.1f B per impression of the run; slowest task %.2f s\n",
            entries, bytes, bytes / n, max }'
