#!/usr/bin/env bash
# Reference vectors for the encoder tests (run by hand, not by CI): token ids
# and raw mean / CLS / pooler vectors of every sentence of
# tests/data/encoder/sentences.json, computed with transformers (PyTorch) from
# the model folders that scripts/fetch-models.sh makes. Writes
#   tests/data/encoder/reference-all-MiniLM-L6-v2.json
#   tests/data/encoder/reference-multilingual-e5-small.json
# Each file records the sha256 of the model.safetensors it was made from.
#
#   scripts/fetch-models.sh && scripts/reference-vectors.sh
#   MODELS_DIR=/srv/models scripts/reference-vectors.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS_DIR=${MODELS_DIR:-models}
OUT=tests/data/encoder
source scripts/encoder/venv-torch.sh

ref() { # ref MODEL [PREFIX]
  local dir="$MODELS_DIR/$1"
  for f in config.json tokenizer.json model.safetensors; do
    [ -f "$dir/$f" ] || { echo "missing $dir/$f: run scripts/fetch-models.sh first" >&2; exit 1; }
  done
  "$VENV_PY" scripts/encoder/reference_vectors.py --model-dir "$dir" --name "$1" \
    --sentences "$OUT/sentences.json" --out "$OUT/reference-$1.json" --prefix "${2:-}"
}
ref all-MiniLM-L6-v2
ref multilingual-e5-small "query: "   # e5 expects "query: " (or "passage: ") before every input
ls -l "$OUT"/reference-*.json
