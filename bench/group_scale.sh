#!/usr/bin/env bash
# Scale-out in mode group (src/README.md, "Scaling out"): IMPRESSIONS
# impressions and their clicks, keyed by impression id, in two PARTITIONS-
# partition topics on ctrjoin's test broker (`ctrjoin gen --brokers`); then
# for each process count in COUNTS, that many `ctrjoin run` processes of one
# job (mode group, no checkpoints, file sinks, 1 shard each) read them all.
#
# Prints per process count: the wall time from the start to the last event
# read (sum of ctrjoin_events_in_total over the processes' /metrics, which
# then stops growing for 2 s), the events read (more than the input when a
# moved task is read again), the rate over that time, and how long each
# rebalance stopped the job (from the first "revoked" log line of any
# process to the last "assigned" line that follows).
# Everything shares this machine's cores with the broker: read the rates
# against `nproc`.
#
# With STAGGER seconds, the processes start that far apart, so that each
# new one rebalances a job that is running.
#
#   bench/group_scale.sh [impressions=1000000] [partitions=4] [counts="1 2 4"] [stagger=0]
set -euo pipefail
impressions=${1:-1000000}
partitions=${2:-4}
counts=${3:-1 2 4}
stagger=${4:-0}
# shellcheck source=bench/group_common.sh
source "$(dirname "$0")/group_common.sh"
now() { date +%s.%N; }

broker_port=$(free_port)
"$broker_bin" --port "$broker_port" --default-partitions "$partitions" --log-level 0 >broker.log 2>&1 &
pids+=($!)
sleep 0.5
brokers=127.0.0.1:$broker_port
start_ms=$(( $(date +%s) * 1000 - 7200000 ))
"$bin" gen --brokers "$brokers" --count "$impressions" --seed 7 --rate 100000 \
  --start-ms "$start_ms" >gen.log 2>&1
echo "input: $impressions impressions and their clicks in 2 x $partitions partitions; $(nproc) cores shared with the broker"

events_in() {  # the sum over the processes' /metrics
  local sum=0 port v
  for port in "$@"; do
    v=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null |
      awk '/^ctrjoin_events_in_total/ {s += $2} END {printf "%d", s}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

for n in $counts; do
  ports=()
  run_pids=()
  t0=$(now)
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    ports+=("$port")
    cat >"job-$n-$i.yaml" <<EOF
source:
  type: kafka
  kafka: {brokers: "$brokers", group_id: scale-$n, mode: group}
join: {window_ms: 600000, allowed_lateness_ms: 60000}
sink: {type: file, path: out-$n-$i.jsonl}
dead_letter: {type: file, path: dl-$n-$i.jsonl}
state: {dir: st-$n-$i}
pipeline: {shards: 1}
http: {enabled: true, address: "127.0.0.1:$port"}
EOF
    "$bin" run --config "job-$n-$i.yaml" >"run-$n-$i.log" 2>&1 &
    run_pids+=($!)
    pids+=($!)
    if [ "$i" -lt "$n" ]; then sleep "$stagger"; fi
  done
  last=0
  last_t=$t0
  still=0
  while [ "$still" -lt 20 ]; do  # 20 x 100 ms without growth
    sleep 0.1
    cur=$(events_in "${ports[@]}")
    if [ "$cur" -gt "$last" ]; then
      last=$cur
      last_t=$(now)
      still=0
    elif [ "$cur" -gt 0 ]; then
      still=$((still + 1))
    fi
  done
  for pid in "${run_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${run_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  secs=$(echo "$last_t - $t0" | bc)
  printf '%d process(es): %d events read in %.2f s = %.0f events/s\n' "$n" "$last" "$secs" \
    "$(echo "$last / $secs" | bc -l)"
  # A rebalance stops the job from the first "revoked" line of any process
  # to the last "assigned" line that follows it (before the stop).
  cat run-"$n"-*.log | grep -E ' source\.kafka: (revoked|assigned) ' | sort |
    awk '
      function secs(ts) { split(substr(ts, 12), t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
      / revoked / { if (open && end && secs($1) - end > 1) { print_pause(); open = 0 }
                    if (!open) { open = 1; begin = secs($1); end = 0 } }
      / assigned / { if (open) end = secs($1) }
      function print_pause() { printf "  rebalance: the job stopped %.0f ms\n", (end - begin) * 1000 }
      END { if (open && end) print_pause() }'
done
