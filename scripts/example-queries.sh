#!/usr/bin/env bash
# Runs the example SPARQL queries of docs/queries/*.rq on the built graphs
# (scripts/build-graphs.sh) and writes them with their real output to
# docs/example-queries.md.
#
#   scripts/example-queries.sh            # store in ./data
#   GRAFT_DATA_DIR=/srv/graft scripts/example-queries.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${GRAFT_DATA_DIR:-./data}
GRAFT=${GRAFT:-target/release/graft}
OUT=docs/example-queries.md
{
  echo "# Example SPARQL queries over the built graphs"
  echo
  echo "Made by \`scripts/example-queries.sh\` on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD),"
  echo "over the graphs that \`scripts/build-graphs.sh\` builds. Each query is a file in \`docs/queries/\`;"
  echo "run one yourself with \`graft graph query --format tsv --file docs/queries/NAME.rq\`, or send it to"
  echo "\`/sparql\` with curl (README)."
  for q in docs/queries/*.rq; do
    echo
    echo "## $(basename "$q" .rq)"
    echo
    echo '```sparql'
    cat "$q"
    echo '```'
    echo
    echo "Output (TSV):"
    echo
    echo '```'
    "$GRAFT" --data-dir "$DATA_DIR" graph query --format tsv --file "$q" 2>&1
    echo '```'
  done
} > "$OUT"
echo "wrote $OUT"
