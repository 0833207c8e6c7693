#!/usr/bin/env bash
# Runs the full micro-benchmark suite (bench/micro_*.cc) niced, keeps the
# results as JSON and prints Google Benchmark's table.
#
#   bench/run_micro.sh [out.json] [extra micro_bench flags...]
#
# out.json defaults to micro_bench.json in the build directory
# (CTRJOIN_BUILD_DIR, default build). Extra flags go to micro_bench, e.g.
# --benchmark_filter=LabelJoin or --benchmark_min_time=0.01. The full suite
# holds up to 10 million pending impressions: about 3 GB of memory and ten
# minutes on a 2-core machine. Build first:
#   cmake --build build --target micro_bench
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${CTRJOIN_BUILD_DIR:-build}
binary="$build_dir/bench/micro_bench"
if [[ ! -x "$binary" ]]; then
  echo "run_micro: $binary not found; build it: cmake --build $build_dir --target micro_bench" >&2
  exit 1
fi
out=${1:-$build_dir/micro_bench.json}
shift || true

echo "run_micro: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The table goes to the console, the JSON (with the same figures and the
# context: cpus, caches, build type of the library) to $out.
nice -n 10 "$binary" --benchmark_out="$out" --benchmark_out_format=json \
  --benchmark_counters_tabular=true "$@"
echo "run_micro: results in $out" >&2
