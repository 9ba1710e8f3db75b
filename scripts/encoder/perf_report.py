"""Writes the measured table of docs/performance.md from one run of
scripts/bench-encoder.sh (graft's fused and tensor paths, PyTorch, ONNX
Runtime), between the markers <!-- bench:begin --> and <!-- bench:end -->.

FLOP count of all-MiniLM-L6-v2 for one sequence of T tokens (multiply-adds
counted as 2): 6 layers x (2*T*(4*384^2 + 2*384*1536) + 4*T^2*384) plus the
pooling, i.e. 21.2e6*T + 9216*T^2 (shared/MEASURED.md). The peak is 230
GFLOP/s: 2 cores x 32 FP32 FLOP/cycle (two 512-bit FMA pipes... measured with
an FMA loop at ~3.6 GHz boost, not the 2.6 GHz /proc/cpuinfo reports).
"""
import json
import sys
from pathlib import Path

PEAK = 230e9
ROWS = [("b1x16", "1 × ~16", 1), ("b32x16", "32 × ~16", 32), ("b32x128", "32 × 128", 32)]


def flop(tokens):
    return 21.2e6 * tokens + 9216 * tokens * tokens


def main(work, doc):
    work = Path(work)
    fused = json.loads((work / "graft-fused.json").read_text())
    tensor = json.loads((work / "graft-tensor.json").read_text())
    peers = json.loads((work / "peers.json").read_text())
    lines = [
        "| batch × tokens | graft (fused) | graft (tensor path) | PyTorch | ONNX Runtime | graft / PyTorch | graft / ONNX Runtime | graft, share of peak FP32 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label, _ in ROWS:
        g = fused[key]["sentences_per_s"]
        t = tensor[key]["sentences_per_s"]
        p = peers["pytorch"][key]
        o = peers["onnxruntime"][key]
        share = g * flop(fused[key]["mean_tokens"]) / PEAK
        lines.append(
            f"| {label} | {g:.1f} | {t:.1f} | {p:.1f} | {o:.1f} | **{g / p:.2f}×** | {g / o:.2f}× | {share:.0%} |"
        )
    v = peers.get("versions", {})
    lines.append("")
    lines.append(
        f"Sentences/s, end to end (tokenisation, encoder, masked mean pooling), all-MiniLM-L6-v2, "
        f"2 threads, median of 5 timing windows; PyTorch {v.get('torch', '?')} eager, ONNX Runtime "
        f"{v.get('onnxruntime', '?')} (CPU provider, exported graph), transformers {v.get('transformers', '?')}. "
        f"Share of peak: sentences/s × FLOP per sentence (21.2 M·T + 9216·T², T = mean tokens) / 230 GFLOP/s."
    )
    text = Path(doc).read_text()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    Path(doc).write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
