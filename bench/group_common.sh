# Sourced by the mode-group benchmarks (group_scale.sh, group_restore.sh, group_trim.sh):
# the binaries, a work directory under /tmp (kept with KEEP=1) that the
# script moves into, the pids to kill at exit, and free_port.
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/ctrjoin
broker_bin=$root/build/tests/support/kafka_broker/ctrjoin-testbroker
work=$(mktemp -d "/tmp/ctrjoin-$(basename "$0" .sh).XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# What a `ctrjoin tasks` report (file $1) says the changelog topic keeps:
# "K of T offsets (P%)", summed over its "<start>..<end>" cells.
changelog_kept() {
  awk '$1 ~ /^[0-9]+$/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+\.\.[0-9]*$/) {
         split($i, r, /\.\./); e = (r[2] == "" ? r[1] : r[2]); k += e - r[1]; t += e } }
       END { printf "%d of %d offsets (%.1f%%)", k, t, (t > 0 ? 100 * k / t : 0) }' "$1"
}

# Runs `ctrjoin run --config second.yaml` until its log (second.log) shows
# $1 tasks restored (at most 60 s), then stops it.
restore_all() {
  "$bin" run --config second.yaml >second.log 2>&1 &
  local second=$!
  pids+=($second)
  for _ in $(seq 1 600); do
    [ "$(grep -c ' restored .* entries from ' second.log || true)" -ge "$1" ] && break
    sleep 0.1
  done
  kill -TERM "$second"
  wait "$second" || true
}
