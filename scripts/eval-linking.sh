#!/usr/bin/env bash
# Scores `graft link` on the hand-labelled set (tests/data/linking/gold.jsonl)
# over the built graphs and writes the tables to docs/linking-eval.md.
#
#   scripts/build-graphs.sh && scripts/eval-linking.sh
#   GRAFT_DATA_DIR=/srv/graft scripts/eval-linking.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${GRAFT_DATA_DIR:-./data}
GRAFT=${GRAFT:-target/release/graft}
[ -x "$GRAFT" ] || cargo build --release
OUT=docs/linking-eval.md
TABLES=$(mktemp)
python3 scripts/eval_linking.py --gold tests/data/linking/gold.jsonl \
  --graft "$GRAFT" --data-dir "$DATA_DIR" --markdown "$TABLES" >/dev/null
{
  echo "# Entity linking on the hand-labelled set"
  echo
  echo "Made by \`scripts/eval-linking.sh\` on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD),"
  echo "with the default settings, over the graphs of \`scripts/build-graphs.sh\`. The set and its"
  echo "labelling rules: \`tests/data/linking/README.md\`; the scoring: \`scripts/eval_linking.py\`."
  echo "How linking works and why it errs where it does: \`docs/linking.md\`."
  echo
  cat "$TABLES"
} > "$OUT"
rm -f "$TABLES"
echo "wrote $OUT"
