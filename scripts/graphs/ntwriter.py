"""Shared N-Triples writing for graft's graph-building scripts.

Every graph script writes gzip-compressed N-Triples through `NTriplesWriter`
so that escaping of IRIs and literals is done in one place, exactly as the
N-Triples grammar (W3C RDF 1.1 N-Triples, section 2.4 "Grammar") asks.
Standard library only.
"""
import gzip
import re
import urllib.parse

#: The project's own namespace: every node a script mints lives under it.
GRAFT = "https://w3id.org/graft/"
#: Vocabulary terms of graft's own (predicates and classes no standard vocabulary has).
GRAFT_VOCAB = GRAFT + "vocab#"

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
SCHEMA = "https://schema.org/"
XSD = "http://www.w3.org/2001/XMLSchema#"

_LANG = re.compile(r"^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$")


def slug(text):
    """A stable IRI path segment for `text`: lower-case, spaces to '-', the rest percent-encoded."""
    s = re.sub(r"\s+", "-", text.strip().lower())
    return urllib.parse.quote(s, safe="-._~")


def _iri(value):
    if any(c in value for c in '<>"{}|^`\\ ') or any(ord(c) < 0x21 for c in value):
        raise ValueError("not a valid IRI: %r" % value)
    return "<" + value + ">"


def _literal_body(value):
    out = []
    for c in value:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\u%04X" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


class NTriplesWriter:
    """Writes distinct triples to a gzip N-Triples file; counts what it wrote."""

    def __init__(self, path):
        self._f = gzip.open(path, "wt", encoding="utf-8", newline="\n")
        self._seen = set()
        self.count = 0

    def _emit(self, line):
        if line in self._seen:
            return
        self._seen.add(line)
        self._f.write(line)
        self.count += 1

    def iri(self, s, p, o):
        """Adds the triple <s> <p> <o>."""
        self._emit("%s %s %s .\n" % (_iri(s), _iri(p), _iri(o)))

    def literal(self, s, p, value, lang=None, datatype=None):
        """Adds <s> <p> "value"@lang (or ^^datatype). Empty values are skipped."""
        if value is None:
            return
        value = str(value).strip()
        if not value:
            return
        obj = _literal_body(value)
        if lang:
            if not _LANG.match(lang):
                raise ValueError("bad language tag: %r" % lang)
            obj += "@" + lang
        elif datatype:
            obj += "^^" + _iri(datatype)
        self._emit("%s %s %s .\n" % (_iri(s), _iri(p), obj))

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
