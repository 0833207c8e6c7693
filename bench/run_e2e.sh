#!/usr/bin/env bash
# The full end-to-end benchmark in one command: installs what is missing,
# builds e2e_bench, runs every configuration (a few minutes to half an hour:
# the 10M-pending memory run dominates), and writes
#   bench/results/e2e.json   every figure, machine-readable
#   bench/results/e2e.txt    the tables printed
#   bench/results/*.png      throughput and latency against offered load,
#                            memory against pending impressions
# Extra arguments go to e2e_bench (e.g. --quick, --events N, --only NAME).
# Environment: CTRJOIN_BUILD_DIR (default build), CTRJOIN_BUILD_JOBS
# (default: all cores). On a shared machine run it under nice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup
scripts/setup-bench
build_dir=${CTRJOIN_BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${CTRJOIN_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
fi
cmake --build "$build_dir" --target e2e_bench -j "${CTRJOIN_BUILD_JOBS:-$(nproc)}"
mkdir -p bench/results
"$build_dir/bench/e2e_bench" --out bench/results/e2e.json "$@" | tee bench/results/e2e.txt
/usr/bin/python3 bench/plot.py bench/results/e2e.json bench/results
