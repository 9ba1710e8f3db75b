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
import random
import sys

from predictions import read_answers, read_gold

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
    gold = read_gold(argv[1])
    answers = read_answers(argv[2], gold, argv[1])
    errors = [(id_, gold[id_][0], a["label"], gold[id_][1])
              for id_, a in answers.items() if a["label"] != gold[id_][0]]
    print(f"{len(errors)} errors of {len(answers)}")
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
