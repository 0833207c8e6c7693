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
