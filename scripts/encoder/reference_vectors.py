"""Reference vectors of a BERT encoder folder, computed with transformers.

Run by scripts/reference-vectors.sh (not by CI). For every sentence of
tests/data/encoder/sentences.json, one at a time (no padding), truncated at
512 tokens, it writes the token ids and three raw (not normalised) vectors of
the last layer: `mean` (masked mean over the tokens), `cls` (the first token)
and, only where the checkpoint really has pooler weights, `pooler`
(pooler_output = tanh(W · cls + b)).

    python reference_vectors.py --model-dir models/all-MiniLM-L6-v2 \
        --sentences tests/data/encoder/sentences.json --out reference.json [--prefix "query: "]
"""

import argparse
import hashlib
import json
import os
import sys

import torch
import transformers
from transformers import AutoModel, PreTrainedTokenizerFast

MAX_LENGTH = 512
SIGNIFICANT_DIGITS = 7


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rounded(values):
    return [float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in values]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sentences", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", help="model name written to the file (default: the folder's name)")
    ap.add_argument("--prefix", default="", help='text put before every sentence, e.g. "query: " for e5')
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)
    name = args.name or os.path.basename(os.path.normpath(args.model_dir))
    model_file = os.path.join(args.model_dir, "model.safetensors")
    tokenizer_file = os.path.join(args.model_dir, "tokenizer.json")

    # The tokenizer exactly as tokenizer.json defines it (normaliser, model,
    # post-processor adding the special tokens); truncation and padding are
    # set per call below, overriding whatever tokenizer.json itself says.
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=tokenizer_file)
    with open(tokenizer_file, encoding="utf-8") as f:
        tok_json = json.load(f)
    print(f"[{name}] tokenizer.json: model {tok_json['model']['type']}, "
          f"truncation {tok_json.get('truncation')}, padding {tok_json.get('padding')}", file=sys.stderr)

    # transformers itself reports missing weights (a random pooler) on stderr.
    model, info = AutoModel.from_pretrained(
        args.model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    model.eval()
    missing = sorted(info.get("missing_keys", []))
    unexpected = sorted(info.get("unexpected_keys", []))
    has_pooler = getattr(model, "pooler", None) is not None and not any(k.startswith("pooler.") for k in missing)
    print(f"[{name}] {type(model).__name__}; missing weights {missing}; unused weights {unexpected}; "
          f"pooler {'from the checkpoint' if has_pooler else 'absent or randomly initialised: not written'}",
          file=sys.stderr)

    with open(args.sentences, encoding="utf-8") as f:
        sentences = json.load(f)["sentences"]

    items = []
    with torch.inference_mode():
        for s in sentences:
            text = args.prefix + s["text"]
            full = tokenizer(text, truncation=False, padding=False)["input_ids"]
            enc = tokenizer(text, truncation=True, max_length=MAX_LENGTH, padding=False, return_tensors="pt")
            ids = enc["input_ids"]
            mask = enc["attention_mask"]
            kwargs = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in enc:
                kwargs["token_type_ids"] = enc["token_type_ids"]
            out = model(**kwargs)
            hidden = out.last_hidden_state[0]  # [tokens, hidden]
            m = mask[0].to(torch.float64).unsqueeze(-1)
            mean = (hidden.to(torch.float64) * m).sum(0) / m.sum()
            item = {
                "id": s["id"],
                "text": text,
                "num_tokens": int(ids.shape[1]),
                "untruncated_num_tokens": len(full),
                "truncated": len(full) > ids.shape[1],
                "input_ids": ids[0].tolist(),
                "mean": rounded(mean.tolist()),
                "cls": rounded(hidden[0].tolist()),
            }
            if has_pooler:
                item["pooler"] = rounded(out.pooler_output[0].tolist())
            items.append(item)
            print(f"[{name}] {s['id']}: {item['num_tokens']} tokens"
                  f"{' (truncated from %d)' % len(full) if item['truncated'] else ''}", file=sys.stderr)

    doc = {
        "model": name,
        "source": f"transformers {transformers.__version__} / torch {torch.__version__}",
        "model_sha256": sha256(model_file),
        "tokenizer_sha256": sha256(tokenizer_file),
        "max_length": MAX_LENGTH,
        "prefix": args.prefix,
        "hidden_size": model.config.hidden_size,
        "has_pooler": has_pooler,
        "notes": "One sentence at a time, no padding, truncation at max_length (special tokens included). "
                 "Raw last-layer vectors, not normalised: mean = masked mean over the tokens, cls = first token, "
                 "pooler = pooler_output (only where the checkpoint has pooler weights). "
                 f"Floats rounded to {SIGNIFICANT_DIGITS} significant digits; AutoModel in float32, eager attention, 2 threads.",
        "items": items,
    }
    # One line per item keeps the file small and its diffs readable.
    head = json.dumps({k: v for k, v in doc.items() if k != "items"}, ensure_ascii=False, indent=1)
    lines = [json.dumps(it, ensure_ascii=False, separators=(",", ":")) for it in items]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(head[:-2] + ',\n "items": [\n' + ",\n".join(lines) + "\n ]\n}\n")
    json.load(open(args.out, encoding="utf-8"))  # still valid JSON
    print(f"[{name}] wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
