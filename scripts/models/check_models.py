#!/usr/bin/env python3
"""Check the folders made by scripts/fetch-models.sh with the reference
implementation (PyTorch + transformers), not with graft: each loads with
transformers.AutoModel, no weight is missing or unexpected (except the pooler
the e5 image does not have), and masked-mean-pooled, L2-normalised
embeddings rank paraphrases above unrelated pairs.

Needs torch and transformers (not a CI dependency), e.g.:
    python3 -m venv data/venv-torch
    data/venv-torch/bin/pip install torch transformers
    data/venv-torch/bin/python scripts/models/check_models.py [models]
Prints one JSON object per model; exits 1 if a check fails.
"""
import json
import os
import sys

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast

torch.set_num_threads(2)
ROOT = sys.argv[1] if len(sys.argv) > 1 else "models"


def embed(model, tok, texts):
    enc = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
    v = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(v, dim=-1)


def check(name, prefix, related, unrelated, allowed_missing):
    path = os.path.join(ROOT, name)
    model, info = AutoModel.from_pretrained(path, output_loading_info=True)
    model.eval()
    missing = sorted(k for k in info["missing_keys"] if k not in allowed_missing)
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.endswith("position_ids"))
    tok = AutoTokenizer.from_pretrained(path)
    raw = PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"))
    sample = prefix + related[0][0]
    same_ids = tok(sample)["input_ids"] == raw(sample)["input_ids"]

    def cos(pairs):
        out = []
        for a, b in pairs:
            e = embed(model, tok, [prefix + a, prefix + b])
            out.append(round(float(e[0] @ e[1]), 4))
        return out

    rel, unrel = cos(related), cos(unrelated)
    # Batched (padded) and one-at-a-time embeddings must agree (masking works).
    texts = [prefix + t for t in (related[0][0], related[0][1], unrelated[0][1])]
    batched = embed(model, tok, texts)
    single = torch.cat([embed(model, tok, [t]) for t in texts])
    pad_ok = bool(torch.allclose(batched, single, atol=1e-4))
    cfg = model.config
    report = {
        "model": name,
        "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
        "heads": cfg.num_attention_heads, "vocab": cfg.vocab_size,
        "positions": cfg.max_position_embeddings,
        "params": sum(p.numel() for p in model.parameters()),
        "missing_keys": missing, "unexpected_keys": unexpected,
        "pooler_missing": sorted(set(info["missing_keys"]) & set(allowed_missing)),
        "tokens": tok.convert_ids_to_tokens(tok(sample)["input_ids"]),
        "tokenizers_agree": same_ids, "padding_ok": pad_ok,
        "related": dict(zip([f"{a} | {b}" for a, b in related], rel)),
        "unrelated": dict(zip([f"{a} | {b}" for a, b in unrelated], unrel)),
    }
    ok = not missing and not unexpected and same_ids and pad_ok and min(rel) > max(unrel)
    report["ok"] = ok
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return ok


POOLER = {"pooler.dense.weight", "pooler.dense.bias"}
ok = check(
    "multilingual-e5-small", "query: ",
    related=[("How do I reset my password?", "如何重置我的密码？"),
             ("How do I reset my password?", "Wie setze ich mein Passwort zurück?"),
             ("How do I reset my password?", "I forgot my password and need a new one."),
             ("The central bank raised interest rates.", "La banque centrale a relevé ses taux d'intérêt.")],
    unrelated=[("How do I reset my password?", "The weather in Paris is sunny today."),
               ("如何重置我的密码？", "Die Katze schläft auf dem Sofa."),
               ("How do I reset my password?", "The central bank raised interest rates."),
               ("The central bank raised interest rates.", "我喜欢吃苹果。")],
    allowed_missing=POOLER)
ok &= check(
    "all-MiniLM-L6-v2", "",
    related=[("How do I reset my password?", "I forgot my password and need a new one."),
             ("The central bank raised interest rates.", "The Fed increased the cost of borrowing.")],
    unrelated=[("How do I reset my password?", "The weather in Paris is sunny today."),
               ("How do I reset my password?", "The central bank raised interest rates."),
               ("The central bank raised interest rates.", "A cat is sleeping on the sofa.")],
    allowed_missing=set())
sys.exit(0 if ok else 1)
