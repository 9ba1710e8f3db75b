#!/usr/bin/env bash
# Encoder speed benchmark (not a test): graft beside PyTorch and ONNX Runtime
# in one run, on all-MiniLM-L6-v2 with 2 threads, sentences/s end to end
# (tokenisation + encoder + mean pooling) for the rows of
# benches/encoder-inputs.json: b1x16, b32x16, b32x128. Writes the table of
# docs/performance.md (scripts/encoder/perf_report.py).
#
#   scripts/fetch-models.sh minilm && scripts/bench-encoder.sh
#
# Run it on an otherwise idle machine: a build on the other core halves the
# figures. The peers' timing windows wait for the CPU to be free (see
# scripts/encoder/bench_peers.py); PyTorch and ONNX Runtime are installed
# from PyPI into the throwaway virtualenv data/venv-torch (≈ 6 GB, once).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS_DIR=${MODELS_DIR:-models}
WORK=data/bench-encoder
MODEL="$MODELS_DIR/all-MiniLM-L6-v2"
[ -f "$MODEL/model.safetensors" ] || { echo "missing $MODEL: run scripts/fetch-models.sh first" >&2; exit 1; }
mkdir -p "$WORK"
cargo bench --bench encoder --no-run
for path in fused tensor; do
  echo "graft ($path path)" >&2
  cargo bench -q --bench encoder -- --model "$MODEL" --path "$path" > "$WORK/graft-$path.json"
done
source scripts/encoder/venv-torch.sh
"$VENV_PY" scripts/encoder/bench_peers.py --model-dir "$MODEL" --inputs benches/encoder-inputs.json \
  --work "$WORK" --wait-idle-s 120 "$@" > "$WORK/peers.json.tmp"
mv "$WORK/peers.json.tmp" "$WORK/peers.json"
python3 scripts/encoder/perf_report.py "$WORK" docs/performance.md
