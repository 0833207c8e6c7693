#!/usr/bin/env bash
# Fails when a source file includes a header from a layer above its own
# (src/README.md, "Layers"). Usage: tests/layer_check.sh [ROOT] (default: the
# repository). CTest runs it on the repository, and on a small tree with an
# upward include that it must reject.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# What each folder may include, besides itself and third-party headers.
declare -A allowed=(
  [src/core]=""
  [src/ops]="src/core"
  [src/state]="src/core src/ops"
  [src/pipeline]="src/core src/ops"
  [src/io]="src/core src/ops src/pipeline"
  [txn]="src/core src/ops src/pipeline"
  [joins]="src/core src/ops src/state src/pipeline txn hbase"
  [sinks]="src/core src/ops src/pipeline src/io txn"
  [src/bench]="src/core src/ops src/state src/pipeline src/io txn joins sinks"
  # The demo embeds the project's Kafka-protocol broker (tests/support/
  # kafka_broker, which depends only on src/core); nothing else in src does.
  [src/app]="src/core src/ops src/state src/pipeline src/io txn joins sinks src/bench tests/support/kafka_broker"
)

# The folder (layer) a repo-relative path belongs to.
layer_of() {
  case "$1" in
    tests/support/kafka_broker/*) echo "tests/support/kafka_broker" ;;
    src/*/*) echo "${1%/*}" | cut -d/ -f1-2 ;;
    */*) echo "${1%%/*}" ;;
    *) echo "" ;;
  esac
}

violations=0
for layer in "${!allowed[@]}"; do
  [[ -d "$layer" ]] || continue
  while IFS= read -r file; do
    while IFS=: read -r line include; do
      target=$(layer_of "$include")
      [[ -z "$target" || "$target" == "$layer" ]] && continue
      ok=0
      for a in ${allowed[$layer]}; do [[ "$target" == "$a" ]] && ok=1; done
      if [[ $ok == 0 ]]; then
        echo "$file:$line: includes \"$include\": $layer may not depend on $target" >&2
        violations=$((violations + 1))
      fi
    done < <(grep -noE '^#include "[^"]+"' "$file" | sed -E 's/^([0-9]+):#include "(.*)"/\1:\2/')
  done < <(find "$layer" -maxdepth 1 -name '*.h' -o -maxdepth 1 -name '*.cc')
done

if [[ $violations -gt 0 ]]; then
  echo "layer_check: $violations include(s) cross a layer upward" >&2
  exit 1
fi
echo "layer_check: every include points down or sideways within its layer"
