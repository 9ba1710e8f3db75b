"""PyTorch doing graft's fine-tuning step (benches/train.rs): all-MiniLM-L6-v2
in training mode (dropout), masked mean pooling, a linear head over 5 labels,
cross-entropy, backward, clipping to global norm 1, AdamW (lr 2e-5, weight
decay 0.01 on weight matrices only), at batch 16 x 128 tokens (the first 16 "long" texts of
benches/encoder-inputs.json). 2 threads, eager. Prints one JSON object."""
import argparse
import json
import statistics
import time

import torch
from transformers import AutoModel, PreTrainedTokenizerFast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(1)
    texts = json.load(open(a.inputs))["long"][:16]
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{a.model_dir}/tokenizer.json")
    enc = tok(texts, padding="longest", truncation=True, max_length=128, return_tensors="pt")
    model = AutoModel.from_pretrained(a.model_dir)
    model.train()
    head = torch.nn.Linear(model.config.hidden_size, 5)
    named = list(model.named_parameters()) + [("classifier." + n, p) for n, p in head.named_parameters()]
    params = [p for _, p in named]
    # Two groups, as graft train (and Hugging Face's Trainer): no weight
    # decay on biases and LayerNorm parameters.
    plain = [p for n, p in named if n.endswith("bias") or "LayerNorm." in n]
    decayed = [p for n, p in named if not (n.endswith("bias") or "LayerNorm." in n)]
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.01},
                             {"params": plain, "weight_decay": 0.0}], lr=2e-5)
    targets = torch.tensor([i % 5 for i in range(16)])

    def step():
        opt.zero_grad()
        types = enc.get("token_type_ids", torch.zeros_like(enc["input_ids"]))
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                  token_type_ids=types).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        loss = torch.nn.functional.cross_entropy(head(pooled), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step()
    step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"examples_per_s": round(16 / med, 1), "median_step_s": med, "steps": a.steps,
                      "torch": torch.__version__, "tokens": int(enc["input_ids"].shape[1])}))


if __name__ == "__main__":
    main()
