#!/usr/bin/env python3
"""A seeded random sample of a model's errors, to read by hand.

    python3 scripts/classify/sample_errors.py GOLD.jsonl PREDICTIONS.jsonl [N] [SEED]

GOLD.jsonl is a data set split (`id`, `text`, `label` per line, as
scripts/fetch-datasets.sh writes them); PREDICTIONS.jsonl is what
`graft classify --input` printed for the same texts (`id`, `label` per
line). Prints the error count, the error rate by text length (in Unicode
scalars: under 20, 20-39, 40-79, 80-149, 150-249, 250 and more), then N (default 40) errors drawn with
Python's `random.seed(SEED)` (default 3): id, gold label -> predicted label,
text. Single-label models only; a fallback answer (`out_of_scope`, with
`--threshold`) counts as an error.
"""
import json
import random
import sys

# Lower bounds of the length buckets, in Unicode scalars.
BUCKETS = (0, 20, 40, 80, 150, 250)


def main(argv):
    if len(argv) not in (3, 4, 5):
        sys.exit(__doc__)
    try:
        n = int(argv[3]) if len(argv) > 3 else 40
        seed = int(argv[4]) if len(argv) > 4 else 3
    except ValueError:
        sys.exit(f"N and SEED are whole numbers\n{__doc__}")
    gold = {}
    with open(argv[1], encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["id"] in gold:
                sys.exit(f"{argv[1]}:{number}: id {row['id']!r} appears twice")
            gold[row["id"]] = (row["label"], row["text"])
    errors, answered = [], set()
    with open(argv[2], encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            answer = json.loads(line)
            if "label" not in answer:
                sys.exit(f"{argv[2]}:{number}: no label (an error line?): {line.strip()[:200]}")
            id_ = answer.get("id")
            if id_ not in gold:
                sys.exit(f"{argv[2]}:{number}: id {id_!r} is not in {argv[1]}")
            if id_ in answered:
                sys.exit(f"{argv[2]}:{number}: id {id_!r} answered twice")
            answered.add(id_)
            label, text = gold[id_]
            if answer["label"] != label:
                errors.append((id_, label, answer["label"], text))
    if answered != gold.keys():
        sys.exit(f"{argv[2]} answers {len(answered)} of the {len(gold)} texts of {argv[1]}")
    print(f"{len(errors)} errors of {len(answered)}")
    wrong = {id_ for id_, *_ in errors}
    for i, low in enumerate(BUCKETS):
        high = BUCKETS[i + 1] if i + 1 < len(BUCKETS) else None
        ids = [k for k, (_, text) in gold.items()
               if len(text) >= low and (high is None or len(text) < high)]
        if ids:
            e = sum(1 for k in ids if k in wrong)
            span = f"{low}-{high - 1}" if high else f"{low}+"
            print(f"length {span}: {e} errors of {len(ids)} ({100 * e / len(ids):.1f} %)")
    random.seed(seed)
    for id_, label, predicted, text in random.sample(errors, min(n, len(errors))):
        print(f"{id_}\t{label} -> {predicted}\t{text}")


if __name__ == "__main__":
    main(sys.argv)
