"""Writes the classification table of docs/benchmarks.md from the runs of
scripts/bench-classify.sh (each run folder's graft.json), between the markers
<!-- classify:begin --> and <!-- classify:end -->."""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

GRAPH = {"bbc": "finance", "trec6": "WordNet", "trec50": "WordNet", "sentiment": "finance (Chinese labels)"}
NAME = {"bbc": "BBC News (5)", "trec6": "TREC-6", "trec50": "TREC-50", "sentiment": "Chinese reviews (2)"}
PUBLISHED = {
    "bbc": "≈ 97–98 % accuracy (fine-tuned BERT / strong linear models; no standard split)",
    "trec6": "≈ 97 % accuracy, BERT-base on the official 500-question test set (ours is a random split)",
    "trec50": "≈ 90–92 % accuracy reported for fine-tuned BERT (official test set)",
    "sentiment": "no standard split; ChnSentiCorp with BERT ≈ 94–95 % (other data); K-BERT: +0–2 points over BERT on its Chinese tasks",
}


def regime_name(regime):
    """frozen, full, topN (the top N encoder layers fine-tuned), optionally
    followed by +lrX (peak learning rate X), +lrdX (layer-wise learning-rate
    decay X), +epN (N epochs), +lenN (N text tokens), +taptN (N epochs of
    masked-LM pre-training on the training texts first; with +headM, M
    head-only passes before them, +fullvocab over the whole vocabulary)
    and +grouped
    (batches grouped by length), e.g.
    top12+lr0.0001+ep5 or full+grouped+len256 (as scripts/bench-classify.sh)."""
    base, *options = regime.split("+")
    if base.startswith("top") and base[3:].isdigit():
        name = f"top {base[3:]} layers"
    elif base in ("frozen", "full"):
        name = base
    else:
        return regime
    for option in options:
        if option.startswith("tapt") and option[4:].isdigit():
            n = int(option[4:])
            name += f", after {n} epoch{'s' if n > 1 else ''} of masked-LM pre-training"
        elif option.startswith("head") and option[4:].isdigit():
            n = int(option[4:])
            name += f" ({n} head-only pass{'es' if n != 1 else ''} first)" if n else " (no head-only pass)"
        elif option == "fullvocab":
            name += " over the whole vocabulary"
        elif option.startswith("lrd"):
            name += f", layer lr decay {float(option[3:]):g}"
        elif option.startswith("lr"):
            name += f", lr {float(option[2:]):g}"
        elif option.startswith("ep") and option[2:].isdigit():
            name += f", {int(option[2:])} epochs"
        elif option.startswith("len") and option[3:].isdigit():
            name += f", {int(option[3:])} tokens"
        elif option == "grouped":
            name += ", grouped by length"
        else:
            return regime
    return name


def mean_sd(xs):
    if not xs:
        return "–"
    m = statistics.mean(xs) * 100
    sd = statistics.stdev(xs) * 100 if len(xs) > 1 else 0.0
    return f"{m:.1f} ± {sd:.1f}"


def main(runs, doc):
    groups = defaultdict(list)
    for card_path in sorted(Path(runs).glob("*/graft.json")):
        # <dataset>-<fusion>-<regime>-<seed>; no data set or fusion name has a '-'.
        ds, fusion, rest = card_path.parent.name.split("-", 2)
        regime, seed = rest.rsplit("-", 1)
        card = json.loads(card_path.read_text())
        if "test" not in card.get("metrics", {}):
            continue
        groups[(ds, regime, fusion)].append(card)
    lines = [
        "| data set (graph) | regime | fusion | seeds | test accuracy % | test macro-F1 % | facts: train / test coverage | training time s | training examples/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {"none": 0, "append": 1, "kbert": 2}
    for (ds, regime, fusion) in sorted(groups, key=lambda k: (k[0], k[1], order.get(k[2], 9))):
        cards = groups[(ds, regime, fusion)]
        acc = [c["metrics"]["test"]["accuracy"] for c in cards]
        f1 = [c["metrics"]["test"]["macro_avg"]["f1"] for c in cards]
        cov_train = statistics.mean([(c.get("graph") or {}).get("coverage", 0.0) for c in cards])
        cov_test = statistics.mean([c["metrics"].get("test_coverage", 0.0) for c in cards])
        # The slowest seed is the one that encoded (later frozen seeds read the feature cache).
        walls = [c["training"].get("wall_s", float("nan")) for c in cards]
        wall = max(walls)
        slowest = cards[walls.index(wall)]
        epochs = len(slowest["history"])
        speed = slowest["training"]["data"]["train"]["examples"] * epochs / wall
        lines.append(
            f"| {NAME.get(ds, ds)} ({GRAPH.get(ds, '?')}) | {regime_name(regime)} | {fusion} | {len(cards)} | {mean_sd(acc)} | {mean_sd(f1)} "
            f"| {cov_train:.0%} / {cov_test:.0%} | {wall:.0f} | {speed:.0f} |"
        )
    lines.append("")
    lines.append("Mean ± standard deviation over the seeds. Published reference figures (not comparable splits):")
    lines.append("")
    for ds in sorted({k[0] for k in groups}):
        lines.append(f"- {NAME.get(ds, ds)}: {PUBLISHED.get(ds, '–')}")
    lines.append("")
    lines.append(
        "Coverage: share of examples that got at least one fact injected. Training time: the slowest seed's whole "
        "`graft train` run (linking, encoding, all epochs, test evaluation); with a frozen encoder the other seeds "
        "read the vectors from the feature cache. Training examples/s: training examples × epochs run / that time."
    )
    text = Path(doc).read_text()
    begin, end = "<!-- classify:begin -->", "<!-- classify:end -->"
    if begin not in text:
        text += f"\n## Classification: data sets × fusion modes\n\nMade by `scripts/bench-classify.sh`.\n\n{begin}\n{end}\n"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    Path(doc).write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
