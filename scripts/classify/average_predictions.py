#!/usr/bin/env python3
"""Accuracy of several models' answers to one split, each alone and
averaged (an ensemble: the mean of their label scores, the top label
taken; ties go to the label first in the first answer's ranking).

    python3 scripts/classify/average_predictions.py GOLD.jsonl ANSWERS.jsonl ANSWERS.jsonl [...]

GOLD.jsonl is a data set split and each ANSWERS.jsonl what
`graft classify --input` printed for its texts (scripts/classify/predictions.py).
Prints each file's accuracy (right of all), the average's, and how many
texts every model gives the same label. Single-label models only.
"""
import sys

from predictions import read_answers, read_gold


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    gold = read_gold(argv[1])
    models = [read_answers(path, gold, argv[1]) for path in argv[2:]]
    for path, answers in zip(argv[2:], models):
        right = sum(answers[i]["label"] == gold[i][0] for i in gold)
        print(f"{path}: {right} of {len(gold)} ({100 * right / len(gold):.2f} %)")
    right = agree = 0
    for i in gold:
        scores = {}
        for answers in models:
            for r in answers[i]["ranking"]:
                scores[r["label"]] = scores.get(r["label"], 0.0) + r["score"] / len(models)
        right += max(scores, key=scores.get) == gold[i][0]
        agree += len({answers[i]["label"] for answers in models}) == 1
    print(f"average of {len(models)}: {right} of {len(gold)} ({100 * right / len(gold):.2f} %)")
    print(f"same label from every model: {agree} of {len(gold)}")


if __name__ == "__main__":
    main(sys.argv)
