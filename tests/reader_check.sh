#!/usr/bin/env bash
# The reader in the repo (scripts/ctrjoin_reader.py) trains a logistic
# regression in PyTorch on ctrjoin's exactly-once, rolled, gzipped TFRecord
# output of the synthetic workload (whose click probability is known, so
# the best possible AUC is too) and must come within 0.03 of it (label slow:
# it installs python3-torch with scripts/setup-python, which needs root and
# Debian's package mirror). Usage: tests/reader_check.sh CTRJOIN_BINARY
set -euo pipefail
binary=$1
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup-python" python3-torch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$binary" gen --impressions-out imp.jsonl --clicks-out clk.jsonl --features-out feat.jsonl \
  --truth-out truth.jsonl --count 80000 --users 20000 --items 5000 --seed 7
cat > job.yaml <<'YAML'
source: {type: files, files: {impressions: imp.jsonl, clicks: clk.jsonl}}
join: {window_ms: 600000, allowed_lateness_ms: 600000}
state: {dir: state, memory_budget_mb: 256}
lookups:
  - {name: user, table: user_features, key_field: user_id, columns: {ctr_7d: float}}
  - {name: item, table: item_features, key_field: item_id, columns: {popularity: float}}
feature_store: {type: embedded, embedded: {path: features, load: feat.jsonl}}
schema: {features: {position: int64, device: string, ctx: float_list}}
checkpoint: {enabled: true, interval_ms: 200}
http: {enabled: false}
sink: {type: file, format: tf_example, path: out, compression: gzip, roll_bytes: 1000000}
dead_letter: {type: file, path: dead.jsonl}
YAML
"$binary" --log-level warn run --config job.yaml
/usr/bin/python3 "$root/scripts/ctrjoin_reader.py" out --truth truth.jsonl | tee report.txt
auc=$(sed -n 's/^AUC: //p' report.txt)
best=$(sed -n 's/^best AUC (true probabilities): //p' report.txt)
/usr/bin/python3 - "$auc" "$best" <<'PY'
import sys
auc, best = map(float, sys.argv[1:])
if not (best - auc <= 0.03 and best > 0.6):
    sys.exit(f"reader_check: trained AUC {auc:.4f} is not within 0.03 of the best {best:.4f}")
print(f"reader_check: trained AUC {auc:.4f}, best {best:.4f}")
PY
