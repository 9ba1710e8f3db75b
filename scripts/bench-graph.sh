#!/usr/bin/env bash
# Benchmark: graft's bulk loader and SPARQL HTTP layer against oxigraph's own
# server (`oxigraph serve`, PyPI oxigraph 0.5.13, the same engine graft embeds)
# on the same content. Writes the section "Graph: load and SPARQL latency vs
# oxigraph serve" of docs/benchmarks.md. A benchmark, not a test: it fails only
# on errors (a server does not start, the two disagree on a result).
#
#   scripts/bench-graph.sh             # N = 30 timed requests per query and server
#   scripts/bench-graph.sh -n 100      # more samples
#   scripts/bench-graph.sh --only hypernyms --only ask -n 200   # a few queries, docs untouched
#   scripts/bench-graph.sh --help      # every option (scripts/bench_graph.py)
#
# Builds data/graphs/{finance,wordnet}.nt.gz when missing (scripts/graphs/*.py),
# and a venv with oxigraph's CLI in data/bench-venv (override: BENCH_VENV).
# Uses target/release/graft (override: GRAFT), building it when absent.
# Stores are created in a temporary directory and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

GRAFT=${GRAFT:-target/release/graft}
VENV=${BENCH_VENV:-data/bench-venv}
OXIGRAPH_VERSION=0.5.13
GRAPHS=data/graphs
DOWNLOADS=data/downloads

mkdir -p "$GRAPHS" "$DOWNLOADS"
[ -f "$GRAPHS/finance.nt.gz" ] ||
  python3 scripts/graphs/finance.py --downloads "$DOWNLOADS" --out "$GRAPHS/finance.nt.gz"
[ -f "$GRAPHS/wordnet.nt.gz" ] ||
  python3 scripts/graphs/wordnet.py --downloads "$DOWNLOADS" --out "$GRAPHS/wordnet.nt.gz"

if [ ! -x "$VENV/bin/oxigraph" ] ||
  [ "$("$VENV/bin/oxigraph" --version 2>/dev/null)" != "oxigraph $OXIGRAPH_VERSION" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "oxigraph==$OXIGRAPH_VERSION"
fi

if [ ! -x "$GRAFT" ]; then
  cargo build --release
fi

CMD="scripts/bench-graph.sh${*:+ $*}"
[ "$GRAFT" = target/release/graft ] || CMD="GRAFT=$GRAFT $CMD"
BENCH_COMMAND=$CMD exec python3 scripts/bench_graph.py \
  --graft "$GRAFT" --oxigraph "$VENV/bin/oxigraph" --oxigraph-pin "$OXIGRAPH_VERSION" "$@"
