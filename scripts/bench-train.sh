#!/usr/bin/env bash
# Full fine-tuning speed (not a test): graft's training step (benches/train.rs)
# and PyTorch doing the same step (scripts/encoder/bench_train_peer.py), on
# all-MiniLM-L6-v2 at batch 16 × 128 tokens, 2 threads, in one run; prints
# both and the ratio, writes data/bench-train/result.json and the table in
# docs/benchmarks.md.
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
doc = "docs/benchmarks.md"
text = open(doc).read()
begin, end = "<!-- train:begin -->", "<!-- train:end -->"
if begin not in text:
    text += ("\n## Fine-tuning speed beside PyTorch\n\nMade by `scripts/bench-train.sh`: one full training step "
             "(dropout, mean pooling, linear head, cross-entropy, backward, clipping, AdamW) on all-MiniLM-L6-v2, "
             "batch 16 × 128 tokens, 2 threads, median of 12 steps.\n\n" + begin + "\n" + end + "\n")
table = ("| graft (examples/s) | PyTorch " + r["torch"] + " (examples/s) | graft / PyTorch |\n|---:|---:|---:|\n"
         f"| {r['graft']} | {r['pytorch']} | **{r['ratio']}×** |")
head, rest = text.split(begin)
_, tail = rest.split(end)
open(doc, "w").write(head + begin + "\n" + table + "\n" + end + tail)
PY
