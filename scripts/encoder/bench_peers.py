"""Encoder speed of the Python peers: PyTorch (eager) and ONNX Runtime.

Sentences per second for all-MiniLM-L6-v2, end to end: tokenisation (fast
tokenizer, padding to the longest row, truncation at 128), the encoder and
masked mean pooling, on 2 threads. Three rows, from benches/encoder-inputs.json:

    b1x16    short[i], one sentence per call (i cycling)   ~16 tokens
    b32x16   all 32 short sentences as one batch           ~16 tokens
    b32x128  all 32 long texts as one batch                128 tokens (truncated)

Each row: a warm-up, then 5 timing windows, each of at least --window-s
seconds and one call; the figure is the median over the windows. The CPU that
other processes used meanwhile is recorded (checks.other_load_max, in cores):
figures taken beside a build are not worth much (--wait-idle-s helps). The ONNX
model is exported once into --work (dynamic batch and sequence axes; mean
pooling is inside the graph) and reused while the model file is unchanged.
Prints JSON to stdout: {"pytorch": {...}, "onnxruntime": {...}, "versions": {...}, ...}.

    python bench_peers.py --model-dir models/all-MiniLM-L6-v2 [--only pytorch|onnxruntime]
"""

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import transformers
from transformers import AutoModel, AutoTokenizer

THREADS = 2
MAX_LENGTH = 128


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class MeanPooled(torch.nn.Module):
    """The encoder followed by masked mean pooling: [batch, seq] ids -> [batch, hidden]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        # transformers 5 wants keyword arguments (also for the ONNX export).
        hidden = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def rows_of(inputs):
    short, long = inputs["short"], inputs["long"]
    return {
        # name: (list of calls cycled through, sentences per call)
        "b1x16": ([[s] for s in short], 1),
        "b32x16": ([short], len(short)),
        "b32x128": ([long], len(long)),
    }


def cpu_ticks():
    """(busy ticks of the whole machine, ticks of this process), from /proc."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v) - v[3] - v[4]  # all but idle and iowait
    with open("/proc/self/stat") as f:
        w = f.read().rsplit(")", 1)[1].split()
    return busy, int(w[11]) + int(w[12])  # utime + stime, all threads


def other_load(before, after, wall):
    """Cores' worth of CPU that other processes used meanwhile (0 on an idle machine)."""
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / hz / wall)


def wait_idle(max_s):
    """Waits (at most max_s) until other processes use less than 0.1 core for 2 s."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        a = cpu_ticks()
        time.sleep(2)
        if other_load(a, cpu_ticks(), 2) < 0.1:
            return True
    log(f"the machine did not become idle within {max_s:.0f} s; measuring anyway")
    return False


def measure(encode, calls, per_call, windows, window_s, warmup_s, wait_idle_s, loads):
    """Median-ready rates of `windows` timing windows. With wait_idle_s, a window
    during which other processes used more than 0.2 core is thrown away and
    taken again (up to 3 times per window)."""
    i = 0
    t_end = time.perf_counter() + warmup_s
    while True:  # warm-up: at least one pass over the calls
        encode(calls[i % len(calls)])
        i += 1
        if i >= len(calls) and time.perf_counter() >= t_end:
            break
    rates = []
    for _ in range(windows):
        for attempt in range(4):
            if wait_idle_s:
                wait_idle(wait_idle_s)
                encode(calls[i % len(calls)])  # thread pools awake again, caches warm
                i += 1
            n = 0
            ticks = cpu_ticks()
            t0 = time.perf_counter()
            while True:
                encode(calls[i % len(calls)])
                i += 1
                n += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= window_s:
                    break
            load = other_load(ticks, cpu_ticks(), elapsed)
            if not wait_idle_s or load <= 0.2 or attempt == 3:
                break
            log(f"  window disturbed (other processes used {load:.2f} cores): taken again")
        rates.append(n * per_call / elapsed)
        loads.append(load)
    return rates


def export_onnx(model_dir, work, tokenizer):
    """Exports MeanPooled(all-MiniLM-L6-v2) once; re-exports when the weights change."""
    path = os.path.join(work, "all-MiniLM-L6-v2.onnx")
    stamp = path + ".sha256"
    want = sha256(os.path.join(model_dir, "model.safetensors"))
    if os.path.exists(path) and os.path.exists(stamp) and open(stamp).read().strip() == want:
        return path
    log(f"exporting {path} ...")
    os.makedirs(work, exist_ok=True)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    wrapped = MeanPooled(model).eval()
    enc = tokenizer(["an example sentence for the export", "and a second, somewhat longer one, to get a batch of two"],
                    padding="longest", truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    kwargs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    batch, seq = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("sequence", min=1, max=512)
    axes = {0: batch, 1: seq}
    with torch.inference_mode():
        program = torch.onnx.export(
            wrapped, args=(), kwargs=kwargs, dynamo=True, external_data=False,
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["sentence_embedding"],
            dynamic_shapes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes},
        )
    program.save(path, external_data=False)
    with open(stamp, "w") as f:
        f.write(want + "\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--inputs", default="benches/encoder-inputs.json")
    ap.add_argument("--work", default="data/bench-encoder", help="where the ONNX export is kept")
    ap.add_argument("--only", choices=["pytorch", "onnxruntime"])
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--window-s", type=float, default=2.0, help="minimum length of one timing window")
    ap.add_argument("--warmup-s", type=float, default=1.0)
    ap.add_argument("--wait-idle-s", type=float, default=0,
                    help="before each window, wait up to this long for other processes to leave the CPU")
    args = ap.parse_args()

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    with open(args.inputs, encoding="utf-8") as f:
        inputs = json.load(f)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)  # the fast tokenizer, from tokenizer.json
    rows = rows_of(inputs)

    def tokenise(texts, kind):
        return tokenizer(texts, padding="longest", truncation=True, max_length=MAX_LENGTH, return_tensors=kind)

    # Tokens per row: real tokens (no padding) and the padded length fed to the model.
    tokens = {}
    for name, (calls, per_call) in rows.items():
        real = [len(tokenizer(t, truncation=True, max_length=MAX_LENGTH)["input_ids"]) for c in calls for t in c]
        padded = [tokenise(c, "np")["input_ids"].shape[1] for c in calls]
        tokens[name] = {"mean_tokens": round(statistics.mean(real), 2), "min": min(real), "max": max(real),
                        "mean_padded_length": round(statistics.mean(padded), 2)}
        log(f"{name}: {per_call} sentence(s) per call, mean {tokens[name]['mean_tokens']} tokens "
            f"(min {min(real)}, max {max(real)}), padded length {tokens[name]['mean_padded_length']}")

    result = {}
    check = {}
    probe = inputs["short"][:3] + inputs["long"][:2]

    model = AutoModel.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    pooled = MeanPooled(model).eval()

    def encode_torch(texts):
        enc = tokenise(texts, "pt")
        with torch.inference_mode():
            return pooled(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).numpy()

    reference = encode_torch(probe)

    if args.only in (None, "pytorch"):
        result["pytorch"] = {}
        for name, (calls, per_call) in rows.items():
            loads = []
            rates = measure(encode_torch, calls, per_call, args.windows, args.window_s, args.warmup_s, args.wait_idle_s, loads)
            check.setdefault("other_load_max", {})[f"pytorch {name}"] = round(max(loads), 2)
            if max(loads) > 0.2:
                log(f"warning: other processes used up to {max(loads):.2f} cores during pytorch {name}")
            result["pytorch"][name] = round(statistics.median(rates), 1)
            log(f"pytorch {name}: {result['pytorch'][name]} sentences/s (windows {[round(r, 1) for r in rates]})")

    if args.only in (None, "onnxruntime"):
        import onnxruntime as ort

        path = export_onnx(args.model_dir, args.work, tokenizer)
        so = ort.SessionOptions()
        so.intra_op_num_threads = THREADS
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def encode_ort(texts):
            enc = tokenise(texts, "np")
            return session.run(None, {n: enc[n].astype(np.int64) for n in names})[0]

        diff = float(np.abs(encode_ort(probe) - reference).max())
        check["onnxruntime_vs_pytorch_max_abs_diff"] = diff
        log(f"onnxruntime vs pytorch on {len(probe)} texts: max abs diff {diff:.2e}")
        result["onnxruntime"] = {}
        for name, (calls, per_call) in rows.items():
            loads = []
            rates = measure(encode_ort, calls, per_call, args.windows, args.window_s, args.warmup_s, args.wait_idle_s, loads)
            check.setdefault("other_load_max", {})[f"onnxruntime {name}"] = round(max(loads), 2)
            if max(loads) > 0.2:
                log(f"warning: other processes used up to {max(loads):.2f} cores during onnxruntime {name}")
            result["onnxruntime"][name] = round(statistics.median(rates), 1)
            log(f"onnxruntime {name}: {result['onnxruntime'][name]} sentences/s (windows {[round(r, 1) for r in rates]})")

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__}
    try:
        import tokenizers
        versions["tokenizers"] = tokenizers.__version__
    except ImportError:
        pass
    if "onnxruntime" in result:
        import onnx
        import onnxruntime
        versions["onnx"] = onnx.__version__
        versions["onnxruntime"] = onnxruntime.__version__
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    out = dict(result)
    out["versions"] = versions
    out["unit"] = "sentences/s, end to end (tokenisation + encoder + mean pooling), median of timing windows"
    out["setup"] = {
        "model": os.path.basename(os.path.normpath(args.model_dir)),
        "model_sha256": sha256(os.path.join(args.model_dir, "model.safetensors")),
        "threads": THREADS, "max_length": MAX_LENGTH, "padding": "longest",
        "pytorch": "eager (no compile), torch.inference_mode, default attention "
                   f"({model.config._attn_implementation})",
        "onnxruntime": "CPUExecutionProvider, intra_op 2, inter_op 1, ORT_ENABLE_ALL; "
                       "torch.onnx.export (dynamo) of encoder + mean pooling",
        "windows": args.windows, "window_s": args.window_s, "warmup_s": args.warmup_s,
        "cpu": cpu, "cores": os.cpu_count(),
    }
    out["tokens"] = tokens
    out["checks"] = check
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
