#!/usr/bin/env bash
# Moving state in mode group (txn/README.md, "Several processes on one job"):
# for each size in SIZES, IMPRESSIONS impressions and their clicks, keyed by
# impression id, in two PARTITIONS-partition topics on ctrjoin's test broker;
# one `ctrjoin run` process (mode group, checkpoints every 100 ms, Kafka sink,
# 1 shard, W = 1 day so every impression stays pending) reads them all and
# stops (SIGTERM: its last epoch commits); then a second process with an
# empty state directory (another host) takes every task over and restores it
# from the changelog topic.
#
# Prints per size: what the changelog topic keeps after the first process
# (`ctrjoin tasks`: the offsets left after trimming, of all written), the
# changelog bytes restored per impression, and per restored task the entries,
# bytes and time (the "restored ... in ... s" lines), and the time per entry.
#
#   bench/group_restore.sh [sizes="100000 400000"] [partitions=4]
# Environment: WINDOW_MS (join.window_ms, default 1 day: nothing expires, so
# nothing is trimmed) and RATE (impressions per second of event time, default
# 100000): with a window shorter than the trace, the topic is trimmed to about
# the last window's changes and the restore reads that much. READ_AHEAD_MS:
# source.kafka.max_read_ahead_ms (default: the config's default; 0 = off).
set -euo pipefail
sizes=${1:-100000 400000}
partitions=${2:-4}
window_ms=${WINDOW_MS:-86400000}
rate=${RATE:-100000}
read_ahead=${READ_AHEAD_MS:+, max_read_ahead_ms: $READ_AHEAD_MS}
# shellcheck source=bench/group_common.sh
source "$(dirname "$0")/group_common.sh"
metric() {  # the sum of a metric over one process's /metrics
  curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v m="$2" '$1 ~ "^"m"({|$)" {s += $2} END {printf "%d", s}'
}

job() {  # name port
  cat >"$1.yaml" <<EOF
source:
  type: kafka
  kafka: {brokers: "$brokers", group_id: restore, mode: group$read_ahead}
join: {window_ms: $window_ms, allowed_lateness_ms: 0}
sink:
  type: kafka
  kafka: {brokers: "$brokers", topic: samples, transactional_id_prefix: restore}
dead_letter: {type: file, path: dl-$1.jsonl}
state: {dir: st-$1, memory_budget_mb: 4096}
checkpoint: {enabled: true, interval_ms: 100}
pipeline: {shards: 1}
http: {enabled: true, address: "127.0.0.1:$2"}
EOF
}

for n in $sizes; do
  mkdir -p "size-$n" && cd "size-$n"
  broker_port=$(free_port)
  "$broker_bin" --port "$broker_port" --default-partitions "$partitions" --log-level 0 \
    >broker.log 2>&1 &
  broker_pid=$!
  pids+=($broker_pid)
  sleep 0.5
  brokers=127.0.0.1:$broker_port
  "$bin" gen --brokers "$brokers" --count "$n" --seed 7 --rate "$rate" \
    --start-ms $(( $(date +%s) * 1000 - 7200000 )) >gen.log 2>&1

  port=$(free_port)
  job first "$port"
  "$bin" run --config first.yaml >first.log 2>&1 &
  first=$!
  pids+=($first)
  last=0
  still=0
  most_paused=0
  started=$(date +%s.%N)
  while [ "$still" -lt 20 ]; do  # 20 x 100 ms without growth
    sleep 0.1
    cur=$(metric "$port" ctrjoin_events_in_total)
    paused=$(metric "$port" ctrjoin_source_paused_partitions)
    [ "$paused" -gt "$most_paused" ] && most_paused=$paused
    [ "$cur" -lt "$last" ] || [ "$cur" -eq "$last" ] || read_at=$(date +%s.%N)
    # Every impression read, and nothing more for 2 s (the clicks).
    if [ "$cur" -gt "$last" ]; then last=$cur; still=0; elif [ "$cur" -ge "$n" ]; then still=$((still + 1)); fi
  done
  kill -TERM "$first"
  wait "$first" || true
  # What trimming left of the changelog topic: "<start>..<end>" per task.
  "$bin" tasks --config first.yaml >tasks.txt 2>tasks.log
  kept=$(changelog_kept tasks.txt)

  port=$(free_port)
  job second "$port"
  restore_all "$partitions"
  kill -TERM "$broker_pid"
  wait "$broker_pid" 2>/dev/null || true

  echo "$n impressions ($last events), $partitions tasks, W = $window_ms ms, $rate impressions/s, $(nproc) cores shared with the broker:"
  echo "  first process: read every event in $(echo "$read_at - $started" | bc) s; at most $most_paused partitions paused at once (read alignment)"
  echo "  changelog topic kept after the first process: $kept"
  grep ' restored .* entries from ' second.log |
    sed -E 's/.*task ([0-9]+) restored ([0-9]+) entries from ([0-9]+) bytes .* in ([0-9.]+) s.*/\1 \2 \3 \4/' |
    awk -v n="$n" '
      { printf "  task %d: %d entries, %d bytes, %.2f s, %.2f us/entry\n", $1, $2, $3, $4,
          ($2 > 0 ? $4 * 1e6 / $2 : 0)
        entries += $2; bytes += $3; if ($4 > max) max = $4 }
      END { printf "  all: %d entries, %d bytes = %.0f B per impression; slowest task %.2f s\n",
              entries, bytes, bytes / n, max }'
  cd ..
done
