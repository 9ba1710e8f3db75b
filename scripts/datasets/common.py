"""Helpers shared by scripts/datasets/build.py: text normalisation, exact and
near-duplicate removal, fixed stratified splits, JSON Lines output and the
MANIFEST.json of a data set folder. Standard library only.
"""
import collections
import hashlib
import json
import math
import os
import random
import re
import statistics
import unicodedata

# The seed of every split and of the line order of every split file. Changing
# it changes every split (and every hash in docs/datasets.md).
SEED = 20060625
RATIOS = (("train", 0.8), ("dev", 0.1), ("test", 0.1))
SPLITS = tuple(name for name, _ in RATIOS)

# Near-duplicates: Jaccard similarity of shingle sets at or above this.
NEAR_DUP_JACCARD = 0.8
# A shingle shared by more texts than this is too common to propose candidates
# (keeps the candidate search linear); similarity itself is computed exactly.
NEAR_DUP_MAX_POSTINGS = 50

_WS = re.compile(r"\s+")


def clean_text(s):
    """The text as written to the files: whitespace runs (newlines, tabs,
    ideographic spaces) become one space; nothing else changes."""
    return _WS.sub(" ", s).strip()


def dedup_key(s):
    """The key two texts are duplicates by: NFKC, lower-case, whitespace
    collapsed. NFKC also folds full-width ASCII (，！ＡＢ) into plain forms."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", s)).strip().casefold()


def word_shingles(key, n=5):
    words = re.findall(r"\w+", key)
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def char_shingles(key, n=4):
    chars = "".join(c for c in key if c.isalnum())
    if len(chars) < n:
        return {chars}
    return {chars[i:i + n] for i in range(len(chars) - n + 1)}


def dedup(items, key_of, label_of, shingles_of=None):
    """Remove duplicates from items (a list of dicts, in source order).

    Exact: texts with the same key_of(item) are one text; the first in source
    order is kept. If their labels (label_of) differ, every copy is dropped
    as a conflict. Near (when shingles_of is given): an item whose shingle set
    has Jaccard >= NEAR_DUP_JACCARD with an earlier kept item is dropped; if
    the labels differ, the earlier one is dropped too (a conflict).

    Returns (kept, stats, dropped) where dropped lists
    {"id", "reason", "of"} records (of = the id it duplicates/conflicts with).
    """
    stats = collections.Counter(raw=len(items))
    dropped = []
    groups = collections.OrderedDict()
    for it in items:
        groups.setdefault(key_of(it), []).append(it)
    stats["unique_by_key"] = len(groups)
    survivors = []
    for group in groups.values():
        first = group[0]
        if len({label_of(it) for it in group}) > 1:
            stats["exact_conflict_texts"] += 1
            stats["exact_conflict_items"] += len(group)
            dropped += [{"id": it["id"], "reason": "conflict", "of": first["id"]} for it in group]
            continue
        stats["exact_duplicates_dropped"] += len(group) - 1
        dropped += [{"id": it["id"], "reason": "duplicate", "of": first["id"]} for it in group[1:]]
        survivors.append(first)
    if shingles_of is None:
        stats["kept"] = len(survivors)
        return survivors, dict(stats), dropped

    index = collections.defaultdict(list)  # shingle -> positions in `kept`
    kept, sets, conflicted = [], [], set()
    for it in survivors:
        sh = shingles_of(key_of(it))
        shared = collections.Counter()
        for g in sh:
            posting = index.get(g)
            if posting and len(posting) <= NEAR_DUP_MAX_POSTINGS:
                shared.update(posting)
        match = None
        # Candidates in source order so that the result does not depend on
        # hash order; the first one similar enough wins.
        for j in sorted(shared):
            if shared[j] < NEAR_DUP_JACCARD * min(len(sh), len(sets[j])) / 2:
                continue
            inter = len(sh & sets[j])
            if inter / (len(sh) + len(sets[j]) - inter) >= NEAR_DUP_JACCARD:
                match = j
                break
        if match is None:
            for g in sh:
                index[g].append(len(kept))
            kept.append(it)
            sets.append(sh)
            continue
        other = kept[match]
        if label_of(other) != label_of(it) or match in conflicted:
            stats["near_conflict_items"] += 1 + (match not in conflicted)
            if match not in conflicted:
                dropped.append({"id": other["id"], "reason": "near-conflict", "of": it["id"]})
            conflicted.add(match)
            dropped.append({"id": it["id"], "reason": "near-conflict", "of": other["id"]})
        else:
            stats["near_duplicates_dropped"] += 1
            dropped.append({"id": it["id"], "reason": "near-duplicate", "of": other["id"]})
    result = [it for j, it in enumerate(kept) if j not in conflicted]
    stats["kept"] = len(result)
    return result, dict(stats), dropped


def _round_half_up(x):
    return int(math.floor(x + 0.5))


def stratified_split(items, stratum_of, seed=SEED):
    """Split items into train/dev/test by RATIOS within each stratum.

    Strata are visited in sorted order and each is shuffled with one
    random.Random(seed), so the split depends only on the items, their
    strata and the seed. Per stratum of n items, dev and test each get
    round(n * 0.1) items, and at least one each when n >= 3; train gets the
    rest. Strata of 1 or 2 items go to train.
    """
    rng = random.Random(seed)
    strata = collections.defaultdict(list)
    for it in sorted(items, key=lambda it: it["id"]):
        strata[stratum_of(it)].append(it)
    out = {name: [] for name in SPLITS}
    for s in sorted(strata):
        group = strata[s]
        rng.shuffle(group)
        n = len(group)
        n_dev = _round_half_up(n * dict(RATIOS)["dev"])
        n_test = _round_half_up(n * dict(RATIOS)["test"])
        if n >= 3:
            n_dev, n_test = max(1, n_dev), max(1, n_test)
        out["test"] += group[:n_test]
        out["dev"] += group[n_test:n_test + n_dev]
        out["train"] += group[n_test + n_dev:]
    # A fixed line order with the labels interleaved (a prefix of a file is a
    # fair sample): sort by id, then shuffle with a seed of its own.
    for i, name in enumerate(SPLITS):
        out[name].sort(key=lambda it: it["id"])
        random.Random(seed + 1 + i).shuffle(out[name])
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def split_summary(path, records, label_field="label"):
    lengths = [len(r["text"]) for r in records]
    return {
        "file": os.path.basename(path),
        "count": len(records),
        "labels": dict(sorted(collections.Counter(r[label_field] for r in records).items())),
        "chars_mean": round(statistics.mean(lengths), 1) if lengths else 0,
        "chars_median": round(float(statistics.median(lengths)), 1) if lengths else 0,
        "sha256": sha256_file(path),
    }


def check_splits(splits, key_of, label_of, name):
    """Fail if a text is in two splits or an id repeats; return the labels
    missing from some split as {label: [splits without it]}."""
    seen_keys, seen_ids = {}, set()
    for split, records in splits.items():
        for r in records:
            if r["id"] in seen_ids:
                raise SystemExit(f"{name}: id {r['id']} occurs twice")
            seen_ids.add(r["id"])
            k = key_of(r)
            if k in seen_keys and seen_keys[k] != split:
                raise SystemExit(f"{name}: text of {r['id']} is in {seen_keys[k]} and {split}")
            seen_keys[k] = split
    labels = {label_of(r) for rs in splits.values() for r in rs}
    missing = {}
    for lab in sorted(labels):
        without = [s for s, rs in splits.items() if not any(label_of(r) == lab for r in rs)]
        if without:
            missing[lab] = without
    return missing


def write_dataset(out_dir, name, splits, manifest, dropped, project):
    """Write <out_dir>/{train,dev,test}.jsonl, SHA256SUMS (of the three),
    MANIFEST.json and dropped.jsonl (what dedup removed and why).

    project(record) gives the JSON object written for a record (field order
    as given). Returns the manifest."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = dict(manifest)
    manifest["splits"] = {}
    for split in SPLITS:
        records = [project(r) for r in splits[split]]
        path = os.path.join(out_dir, f"{split}.jsonl")
        write_jsonl(path, records)
        manifest["splits"][split] = split_summary(path, records)
    manifest["total"] = sum(s["count"] for s in manifest["splits"].values())
    write_jsonl(os.path.join(out_dir, "dropped.jsonl"), dropped)
    manifest["label_set"] = sorted({lab for s in manifest["splits"].values() for lab in s["labels"]})
    with open(os.path.join(out_dir, "SHA256SUMS"), "w", encoding="utf-8") as f:
        for split in SPLITS:
            f.write(f"{manifest['splits'][split]['sha256']}  {split}.jsonl\n")
    with open(os.path.join(out_dir, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return manifest
