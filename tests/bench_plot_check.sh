#!/usr/bin/env bash
# `ctrjoin bench --plot` draws its two PNG plots (label slow: it installs
# python3-matplotlib with scripts/setup-bench first, which needs root and
# Debian's package mirror). Usage: tests/bench_plot_check.sh CTRJOIN_BINARY
set -euo pipefail
binary=$1
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup-bench"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$binary" bench --demo --events 20000 --loads 0.5,1 --seconds-per-load 0.5 --progress log \
  --json "$out/bench.json" --plot "$out/plots"
for png in bench_load_throughput.png bench_load_latency.png; do
  # A PNG file starts with \x89PNG.
  if [[ "$(head -c 4 "$out/plots/$png" | tail -c 3)" != PNG ]]; then
    echo "bench_plot_check: $png is missing or not a PNG" >&2
    exit 1
  fi
done
echo "bench_plot_check: both plots drawn"
