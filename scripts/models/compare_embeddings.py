#!/usr/bin/env python3
"""How far two encoders' sentence embeddings of the same texts are apart.

    python3 scripts/models/compare_embeddings.py A.json B.json

A.json and B.json are what `graft embed --normalize --input FILE` printed
for the same FILE with two model folders ({"embeddings": [[...]], "dim": N},
rows L2-normalised). Prints the mean and the least cosine between a text's
two vectors, and the share of texts whose nearest other text (by cosine)
is the same under both encoders.
"""
import json
import sys


def nearest(rows):
    out = []
    for i, u in enumerate(rows):
        best = max((sum(x * y for x, y in zip(u, v)), j) for j, v in enumerate(rows) if j != i)
        out.append(best[1])
    return out


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    a, b = (json.load(open(p, encoding="utf-8"))["embeddings"] for p in argv[1:])
    if len(a) != len(b) or len(a) < 2:
        sys.exit(f"{argv[1]} has {len(a)} rows, {argv[2]} {len(b)}: give the same texts, at least 2")
    dims = {len(r) for r in a} | {len(r) for r in b}
    if len(dims) != 1:
        sys.exit(f"the vectors have {sorted(dims)} dimensions: give two outputs of the same width")
    norms = [sum(x * x for x in r) for r in a + b]
    if any(abs(n - 1) > 1e-3 for n in norms):
        sys.exit("the vectors are not L2-normalised: run graft embed with --normalize")
    cos = [sum(x * y for x, y in zip(u, v)) for u, v in zip(a, b)]
    same = sum(x == y for x, y in zip(nearest(a), nearest(b)))
    print(json.dumps({"texts": len(a), "mean_cosine": round(sum(cos) / len(cos), 4),
                      "min_cosine": round(min(cos), 4),
                      "same_nearest_neighbour": round(same / len(a), 4)}))


if __name__ == "__main__":
    main(sys.argv)
