#!/usr/bin/env python3
"""A seeded random sample of a model's errors, to read by hand.

    python3 scripts/classify/sample_errors.py GOLD.jsonl PREDICTIONS.jsonl [N] [SEED]

GOLD.jsonl is a data set split (`id`, `text`, `label` per line, as
scripts/fetch-datasets.sh writes them); PREDICTIONS.jsonl is what
`graft classify --input` printed for the same texts (`id`, `label` per
line). Prints the error count, then N (default 40) errors drawn with
Python's `random.seed(SEED)` (default 3): id, gold label -> predicted label,
text. Single-label models only.
"""
import json
import random
import sys


def main(argv):
    if len(argv) not in (3, 4, 5):
        sys.exit(__doc__)
    n = int(argv[3]) if len(argv) > 3 else 40
    seed = int(argv[4]) if len(argv) > 4 else 3
    gold = {}
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gold[row["id"]] = (row["label"], row["text"])
    errors, seen = [], 0
    with open(argv[2], encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            answer = json.loads(line)
            if "label" not in answer:
                sys.exit(f"{argv[2]}:{number}: no label (an error line?): {line.strip()[:200]}")
            label, text = gold[answer["id"]]
            seen += 1
            if answer["label"] != label:
                errors.append((answer["id"], label, answer["label"], text))
    if seen != len(gold):
        sys.exit(f"{argv[2]} answers {seen} of the {len(gold)} texts of {argv[1]}")
    print(f"{len(errors)} errors of {seen}")
    random.seed(seed)
    for id_, label, predicted, text in random.sample(errors, min(n, len(errors))):
        print(f"{id_}\t{label} -> {predicted}\t{text}")


if __name__ == "__main__":
    main(sys.argv)
