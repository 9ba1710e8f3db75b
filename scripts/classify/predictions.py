"""Reading a data set split and `graft classify --input` answers to it,
shared by the scripts of this folder.

A split is JSONL with `id`, `text` and `label` per line (as
scripts/fetch-datasets.sh writes them); an answers file is what
`graft classify --input` printed for the same texts (`id`, `label`,
`ranking` per line). Every problem ends the script with the file and line.
"""
import json
import sys


def json_lines(path):
    """(line number, value) of each non-blank line of a JSONL file."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{number}: not JSON: {e}")


def read_gold(path):
    """{id: (label, text)} of a split."""
    gold = {}
    for number, row in json_lines(path):
        if row["id"] in gold:
            sys.exit(f"{path}:{number}: id {row['id']!r} appears twice")
        gold[row["id"]] = (row["label"], row["text"])
    return gold


def read_answers(path, gold, gold_path):
    """{id: answer} of an answers file, one answer for each text of `gold`
    (read from `gold_path`) and none for another."""
    answers = {}
    for number, answer in json_lines(path):
        if "label" not in answer:
            sys.exit(f"{path}:{number}: no label (an error line?): {json.dumps(answer)[:200]}")
        id_ = answer.get("id")
        if id_ not in gold:
            sys.exit(f"{path}:{number}: id {id_!r} is not in {gold_path}")
        if id_ in answers:
            sys.exit(f"{path}:{number}: id {id_!r} answered twice")
        answers[id_] = answer
    if answers.keys() != gold.keys():
        sys.exit(f"{path} answers {len(answers)} of the {len(gold)} texts of {gold_path}")
    return answers
