#!/usr/bin/env bash
# Full fine-tuning speed (not a test): graft's training step (benches/train.rs)
# and PyTorch doing the same step (scripts/encoder/bench_train_peer.py), on
# all-MiniLM-L6-v2 at batch 16 × 128 tokens, 2 threads, in one run; prints
# both and the ratio, and writes data/bench-train/result.json.
# Run on an idle machine. PyTorch comes from PyPI into data/venv-torch.
#
#   scripts/fetch-models.sh minilm && scripts/bench-train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=models/all-MiniLM-L6-v2
WORK=data/bench-train
mkdir -p "$WORK"
cargo bench --bench train --no-run
cargo bench -q --bench train -- --model "$MODEL" > "$WORK/graft.json"
source scripts/encoder/venv-torch.sh
"$VENV_PY" scripts/encoder/bench_train_peer.py --model-dir "$MODEL" --inputs benches/encoder-inputs.json > "$WORK/pytorch.json"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
g = json.load(open(f"{w}/graft.json")); p = json.load(open(f"{w}/pytorch.json"))
r = {"graft": g["examples_per_s"], "pytorch": p["examples_per_s"], "ratio": round(g["examples_per_s"] / p["examples_per_s"], 2), "torch": p["torch"]}
json.dump(r, open(f"{w}/result.json", "w"))
print(json.dumps(r))
PY
