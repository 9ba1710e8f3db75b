"""Writes the classification table of docs/benchmarks.md, between the markers
<!-- classify:begin --> and <!-- classify:end -->, from the runs of
scripts/bench-classify.sh: each run folder's graft.json is merged into a
committed record file (JSON Lines, one run a line) and the table is made from
that file, so runs made on other machines keep their rows.

    python3 scripts/classify/bench_table.py RUNS_DIR DOC RECORDS.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

#: The graph each data set is paired with (scripts/bench-classify.sh), by the
#: store name a run's graft.json records in training.graph.
GRAPH = {"bbc": "finance", "trec6": "wordnet", "trec50": "wordnet", "sentiment": "sentiment-zh"}
#: The graph of runs made before graft.json named it: the pairing then.
EARLIER_GRAPH = {"sentiment": "finance"}
#: What the table calls a graph, by (data set, store) or by store.
GRAPH_NAME = {
    ("sentiment", "finance"): "finance (Chinese labels)",
    "finance": "finance",
    "wordnet": "WordNet",
    "sentiment-zh": "HowNet sentiment words",
}


NAME = {"bbc": "BBC News (5)", "trec6": "TREC-6", "trec50": "TREC-50", "sentiment": "Chinese reviews (2)"}
PUBLISHED = {
    "bbc": "≈ 97–98 % accuracy (fine-tuned BERT / strong linear models; no standard split)",
    "trec6": "≈ 97 % accuracy, BERT-base on the official 500-question test set (ours is a random split)",
    "trec50": "≈ 90–92 % accuracy reported for fine-tuned BERT (official test set)",
    "sentiment": "no standard split; ChnSentiCorp with BERT ≈ 94–95 % (other data); K-BERT: +0–2 points over BERT on its Chinese tasks",
}


def graph_of(ds, fusion, graph):
    """The store whose facts a run of data set `ds` used, from the graph its
    graft.json names (None: made before it did, so the pairing then). No
    fact enters a `none` run: it counts as made with the current pairing,
    and its row is shown with it."""
    if fusion == "none":
        return GRAPH.get(ds, "?")
    return graph or EARLIER_GRAPH.get(ds) or GRAPH.get(ds, "?")


def reusable(card_path, fusion, ds, graph):
    """Whether scripts/bench-classify.sh may reuse a finished run instead of
    making it again: it has test metrics and used the store `graph`."""
    card = json.loads(Path(card_path).read_text())
    if "test" not in card.get("metrics", {}):
        return False
    return graph_of(ds, fusion, card["training"].get("graph")) == graph_of(ds, fusion, graph)


def regime_name(regime):
    """frozen, full, topN (the top N encoder layers fine-tuned), optionally
    followed by +lrX (peak learning rate X), +lrdX (layer-wise learning-rate
    decay X), +lsX (label smoothing X), +epN (N epochs), +lenN (N text tokens), +headtail or +tail
    (which part of a longer text is kept), +taptN (N epochs of
    masked-LM pre-training on the training texts first; with +headM, M
    head-only passes before them, +fullvocab over the whole vocabulary),
    +grouped (batches grouped by length) and +q4 (the encoder's big
    matrices sent through 4-bit Q4_0 and back first), e.g.
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
        elif option == "headtail":
            name += ", head+tail truncation"
        elif option == "tail":
            name += ", tail truncation"
        elif option.startswith("head") and option[4:].isdigit():
            n = int(option[4:])
            name += f" ({n} head-only pass{'es' if n != 1 else ''} first)" if n else " (no head-only pass)"
        elif option == "fullvocab":
            name += " over the whole vocabulary"
        elif option.startswith("lrd"):
            name += f", layer lr decay {float(option[3:]):g}"
        elif option.startswith("ls"):
            name += f", label smoothing {float(option[2:]):g}"
        elif option.startswith("lr"):
            name += f", lr {float(option[2:]):g}"
        elif option.startswith("ep") and option[2:].isdigit():
            name += f", {int(option[2:])} epochs"
        elif option.startswith("len") and option[3:].isdigit():
            name += f", {int(option[3:])} tokens"
        elif option == "grouped":
            name += ", grouped by length"
        elif option == "q4":
            name += ", encoder through Q4_0"
        else:
            return regime
    return name


def mean_sd(xs):
    if not xs:
        return "–"
    m = statistics.mean(xs) * 100
    sd = statistics.stdev(xs) * 100 if len(xs) > 1 else 0.0
    return f"{m:.1f} ± {sd:.1f}"


def run_record(card_path):
    """One run's figures (what the table needs) from its folder's graft.json,
    or None when the run has no test metrics. The folder is named
    <dataset>-<fusion>-<regime>-<seed>; no data set or fusion name has a '-'."""
    ds, fusion, rest = card_path.parent.name.split("-", 2)
    regime, seed = rest.rsplit("-", 1)
    card = json.loads(card_path.read_text())
    test = card.get("metrics", {}).get("test")
    if not test:
        return None
    training = card["training"]
    return {
        "dataset": ds,
        "fusion": fusion,
        "regime": regime,
        "seed": int(seed),
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_avg"]["f1"],
        "train_coverage": (card.get("graph") or {}).get("coverage", 0.0),
        "test_coverage": card["metrics"].get("test_coverage", 0.0),
        "wall_s": training.get("wall_s"),
        "pretrain_s": training.get("pretrain_s"),
        "train_examples": training["data"]["train"]["examples"],
        "epochs": len(card["history"]),
        # The sha256 (12 hex digits) of the graft binary that made the run.
        "build": training.get("build"),
        # The store the facts came from (scripts/bench-classify.sh's pairing).
        "graph": training.get("graph"),
        # Seeds trained side by side (scripts/bench-classify.sh JOBS=N, N > 1).
        **({"jobs": training["jobs"]} if training.get("jobs", 1) > 1 else {}),
        "finished": datetime.fromtimestamp(card_path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
    }


def record_key(r):
    return (r["dataset"], graph_of(r["dataset"], r["fusion"], r.get("graph")), r["fusion"], r["regime"], r["seed"])


def update_records(runs, records_path):
    """Merges the runs found under `runs` into the committed record file (JSON
    Lines, one run a line): a run replaces the record of the same data set,
    fusion, regime and seed. The run folders stay on the machine that made
    them; the record file keeps their figures with the repository, so the
    table can be rebuilt on another machine."""
    records = {}
    if records_path.exists():
        for line in records_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                records[record_key(r)] = r
    for card_path in sorted(Path(runs).glob("*/graft.json")):
        r = run_record(card_path)
        if r is not None:
            records[record_key(r)] = r
    ordered = [records[k] for k in sorted(records)]
    records_path.parent.mkdir(parents=True, exist_ok=True)
    records_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
    return ordered


CARRIED = "†"
MIXED = " ‡"
SIDE = " §"


def table_rows(block):
    """The data rows of an earlier table (between the markers): a list of
    (cells, line), cells stripped of the carried-over mark."""
    rows = []
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith("| data set") and not line.startswith("|---"):
            cells = [c.strip().rstrip(CARRIED).strip() for c in line.strip().strip("|").split("|")]
            rows.append((cells, line))
    return rows


def main(runs, doc, records_file):
    records_path = Path(records_file)
    records = update_records(runs, records_path)
    groups = defaultdict(list)
    for r in records:
        groups[(r["dataset"], graph_of(r["dataset"], r["fusion"], r.get("graph")), r["regime"], r["fusion"])].append(r)
    order = {"none": 0, "append": 1, "kbert": 2}
    rows = []  # (sort key, line)
    made = set()
    for (ds, graph, regime, fusion), rs in groups.items():
        acc = [r["test_accuracy"] for r in rs]
        f1 = [r["test_macro_f1"] for r in rs]
        cov_train = statistics.mean([r["train_coverage"] for r in rs])
        cov_test = statistics.mean([r["test_coverage"] for r in rs])
        # The slowest seed is the one that encoded (later frozen seeds read the feature cache).
        walls = [r["wall_s"] if r["wall_s"] is not None else float("nan") for r in rs]
        wall = max(walls)
        slowest = rs[walls.index(wall)]
        speed = slowest["train_examples"] * slowest["epochs"] / wall
        builds = {r.get("build") for r in rs}
        mixed = MIXED if len(builds) > 1 else ""
        side = SIDE if any(r.get("jobs", 1) > 1 for r in rs) else ""
        graph_name = GRAPH_NAME.get((ds, graph)) or GRAPH_NAME.get(graph, graph)
        data_set = f"{NAME.get(ds, ds)} ({graph_name})"
        made.add((data_set, regime_name(regime), fusion))
        rows.append(
            (
                (data_set, regime_name(regime), order.get(fusion, 9)),
                f"| {data_set} | {regime_name(regime)} | {fusion} | {len(rs)}{mixed} | {mean_sd(acc)} | {mean_sd(f1)} "
                f"| {cov_train:.0%} / {cov_test:.0%} | {wall:.0f}{side} | {speed:.0f} |",
            )
        )
    text = Path(doc).read_text()
    begin, end = "<!-- classify:begin -->", "<!-- classify:end -->"
    if begin not in text:
        text += f"\n## Classification: data sets × fusion modes\n\nMade by `scripts/bench-classify.sh`.\n\n{begin}\n{end}\n"
    head, rest = text.split(begin)
    old, tail = rest.split(end)
    # Rows of the earlier table marked as carried over (runs made before the
    # record file existed, whose folders are gone) stay as they were until a
    # run of the same configuration replaces them. Any other row without a
    # record was deleted from the record file on purpose and goes.
    carried = 0
    for cells, line in table_rows(old):
        if (cells[0], cells[1], cells[2]) in made or CARRIED not in line:
            continue
        carried += 1
        rows.append(((cells[0], cells[1], order.get(cells[2], 9)), line))
    lines = [
        "| data set (graph) | regime | fusion | seeds | test accuracy % | test macro-F1 % | facts: train / test coverage | training time s | training examples/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [line for _, line in sorted(rows)]
    lines.append("")
    lines.append("Mean ± standard deviation over the seeds. Published reference figures (not comparable splits):")
    lines.append("")
    shown = {key[0] for key, _ in rows}
    for ds in sorted(NAME, key=lambda d: NAME[d]):
        if any(data_set.startswith(f"{NAME[ds]} (") for data_set in shown):
            lines.append(f"- {NAME[ds]}: {PUBLISHED.get(ds, '–')}")
    lines.append("")
    lines.append(
        "Coverage: share of examples that got at least one fact injected. Training time: the slowest seed's whole "
        "`graft train` run (linking, encoding, all epochs, test evaluation); with a frozen encoder the other seeds "
        "read the vectors from the feature cache. Training examples/s: training examples × epochs run / that time. "
        f"Each run's figures are kept in `{records_path.as_posix()}` (one JSON line a run), from which the table is made."
    )
    if any(MIXED in line for _, line in rows):
        lines.append("")
        lines.append(
            f"{MIXED.strip()} The seeds of this row come from more than one build of graft (see `build` in the record file)."
        )
    if any(SIDE in line for _, line in rows):
        lines.append("")
        lines.append(
            f"{SIDE.strip()} At least one seed of this row trained beside another (`JOBS=N scripts/bench-classify.sh`, "
            "one thread each): its time is its own wall time with the other core busy, not comparable with rows "
            "whose seeds trained one at a time."
        )
    if carried:
        lines.append("")
        lines.append(
            f"{CARRIED} Carried over from the table as the script last wrote it: runs made before the record file "
            "existed, whose run folders are no longer on this machine. A new run of the same configuration replaces the row."
        )
    Path(doc).write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
