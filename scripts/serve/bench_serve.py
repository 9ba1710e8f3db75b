#!/usr/bin/env python3
"""Helpers of scripts/bench-serve.sh (standard library only).

    bench_serve.py texts TEST_JSONL WORK [--hot N]   # request bodies for wrk + plain text for graft embed
    bench_serve.py wait URL PID [--timeout S]        # until /health says label_index "ready" and a model is loaded
    bench_serve.py warm URL BODIES                   # POST each body once; then check the repeats are cached
    bench_serve.py table WORK DOC                    # the Markdown table between <!-- serve:begin/end --> in DOC

Texts: the sentences of BBC News test articles (title left out), 6 to 40
words, distinct; each article's first body sentence comes first (those are
the hot set), the rest after. WORK/all.jsonl holds one request body a line
({"text": ...}, JSON-encoded here so the Lua side never escapes anything),
WORK/all.txt the same texts one a line, WORK/hot.jsonl the first N bodies and
WORK/fresh.jsonl the others.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request


def texts(args):
    firsts, rest, seen = [], [], set()
    with open(args.test) as f:
        for line in f:
            sentences = re.split(r"(?<=[.!?])\s+", json.loads(line)["text"].strip())
            first = True
            for s in sentences[1:]:  # [0] is the title
                s = " ".join(s.split())
                if not 6 <= len(s.split()) <= 40 or s.lower() in seen:
                    continue
                seen.add(s.lower())
                (firsts if first else rest).append(s)
                first = False
    every = firsts + rest
    if len(firsts) < args.hot:
        sys.exit(f"bench_serve: only {len(firsts)} first sentences, fewer than --hot {args.hot}")
    os.makedirs(args.work, exist_ok=True)

    def write(name, items, body=True):
        with open(os.path.join(args.work, name), "w") as f:
            for t in items:
                f.write((json.dumps({"text": t}, ensure_ascii=False) if body else t) + "\n")

    write("all.jsonl", every)
    write("all.txt", every, body=False)
    write("hot.jsonl", every[: args.hot])
    write("fresh.jsonl", every[args.hot:])
    words = sorted(len(t.split()) for t in every)
    meta = {"texts": len(every), "first_sentences": len(firsts), "hot": args.hot,
            "fresh": len(every) - args.hot, "median_words": words[len(words) // 2]}
    json.dump(meta, open(os.path.join(args.work, "texts.json"), "w"))
    print(f"bench-serve: {meta['texts']} distinct sentences ({meta['first_sentences']} first sentences, "
          f"median {meta['median_words']} words); hot set {args.hot}, fresh pool {meta['fresh']}")


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def post(url, body, timeout=60):
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait(args):
    deadline, last = time.time() + args.timeout, None
    while time.time() < deadline:
        if not alive(args.pid):
            sys.exit("bench-serve: graft serve exited during start-up (the end of its log follows)")
        try:
            h = get(args.url + "/health")
            last = h
            if h.get("label_index") == "failed":
                sys.exit(f"bench-serve: /health says the label index failed: {h}")
            if h.get("label_index") == "ready":
                models = get(args.url + "/v1/models")
                m = models["models"][0]
                # One request outside the texts, so that no row measures a lazy first load.
                status, answer = post(args.url + "/v1/classify", json.dumps({"text": "bench-serve: a first request."}))
                if status != 200 or "label" not in answer:
                    sys.exit(f"bench-serve: POST /v1/classify -> {status} {str(answer)[:300]}")
                print(f"bench-serve: ready ({h.get('triples')} triples); default model {models['default']} "
                      f"{m.get('fingerprint', '')[:12]}, fusion {m.get('fusion')}; first answer {answer['label']}")
                return
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.25)
    sys.exit(f"bench-serve: not ready after {args.timeout} s (last /health: {last})")


def warm(args):
    bodies = [l.rstrip("\n") for l in open(args.bodies) if l.strip()]
    t0 = time.time()
    for b in bodies:
        status, answer = post(args.url + "/v1/classify", b)
        if status != 200 or "label" not in answer:
            sys.exit(f"bench-serve: POST /v1/classify {b[:80]} -> {status} {str(answer)[:300]}")
    took = time.time() - t0
    # The repeats must now come from the cache, or the "cached" runs measure nothing.
    repeats = [post(args.url + "/v1/classify", b)[1] for b in bodies[:8]]
    cached = sum(1 for a in repeats if isinstance(a, dict) and a.get("cached") is True)
    print(f"bench-serve: warmed {len(bodies)} texts in {took:.1f} s; {cached}/{min(8, len(bodies))} repeats answered from the cache")
    if cached == 0:
        sys.exit("bench-serve: no repeat was answered from the cache (\"cached\": true); is the cache on?")


def table(args):
    work = args.work
    runs = [json.loads(l) for l in open(os.path.join(work, "runs.jsonl"))]
    ref = json.load(open(os.path.join(work, "encoder.json")))
    pipe_path = os.path.join(work, "pipeline.json")
    pipe = json.load(open(pipe_path)) if os.path.exists(pipe_path) and os.path.getsize(pipe_path) else None
    meta = json.load(open(os.path.join(work, "texts.json")))
    env = json.load(open(os.path.join(work, "env.json")))
    names = {"uncached": "uncached (`--no-cache`, every request a new text)",
             "cached": f"cached (warm, {meta['hot']} texts)",
             "mix": f"mix: {100 - round(100 * env['fresh_share'])} % of {meta['hot']} hot texts, "
                    f"{round(100 * env['fresh_share'])} % new ones"}
    lines = ["| scenario | connections | requests/s | p50 ms | p99 ms | answered from cache | non-2xx / socket errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    by = {}
    for r in runs:
        by[(r["scenario"], r["connections"])] = r
        hit = r["cached_hits"] / r["requests"] if r["requests"] else 0
        lines.append(f"| {names[r['scenario']]} | {r['connections']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {100 * hit:.0f} % | {r['non2xx']} / {r['socket_errors']} |")
    enc = ref["sentences_per_s"]
    unc = max((r["rps"] for r in runs if r["scenario"] == "uncached"), default=0)
    ratios = []
    for c in sorted({r["connections"] for r in runs}):
        u, k = by.get(("uncached", c)), by.get(("cached", c))
        if u and k and u["rps"]:
            ratios.append(f"{k['rps'] / u['rps']:.1f}× at {c} connections")
    wrapped = sum(r.get("fresh_wrapped", 0) for r in runs)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    body = "\n".join([
        f"Made by `{env['command']}` on {datetime.date.today()} at commit {commit}; {os.cpu_count()} cores ({cpu}), "
        f"wrk {env['wrk_threads']} threads on the same cores as the server, {env['duration']} per row, loopback.",
        f"Model `bbc` = models/bbc-news (scripts/quickstart.sh: K-BERT, frozen all-MiniLM-L6-v2, max-len 160) over the "
        f"finance graph. Texts: {meta['texts']:,} distinct sentences of the BBC News test articles (6–40 words, "
        f"median {meta['median_words']}), one `{{\"text\": ...}}` per request.",
        "",
        *lines,
        "",
        f"- **Cached / uncached: {', '.join(ratios) or 'n/a'}** (target ≥ 10×).",
        f"- Encoder alone (`graft embed --input` on the same {ref['texts']:,} sentences, batched, model load subtracted): "
        f"**{enc:,.0f} sentences/s**; the uncached service reaches **{100 * unc / enc:.0f} %** of it "
        f"(it also links entities and encodes the injected facts: up to 32 more tokens a text).",
    ] + ([f"- The same pipeline without HTTP (`graft classify --input` on the same sentences: linking, fusion, "
          f"encoder passes of 64 texts; set-up excluded): **{pipe['texts_per_s']:,.0f} texts/s**; the uncached "
          f"service reaches **{100 * unc / pipe['texts_per_s']:.0f} %** of it."] if pipe else []) + ([f"- {wrapped:,} \"new\" texts of the mix rows were repeats (the fresh pool ran out); "
          "the cache column shows what the server actually answered from its cache."] if wrapped else []))
    doc = args.doc
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    begin, end = "<!-- serve:begin -->", "<!-- serve:end -->"
    if begin not in text:
        text = text.rstrip("\n") + ("\n\n## Classification service under load\n\n"
                                    "POST /v1/classify on loopback under wrk (a load benchmark, not a test): "
                                    "requests/s and client-side latency without and with the answer cache.\n\n"
                                    f"{begin}\n{end}\n")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(doc, "w").write(head + begin + "\n" + body + "\n" + end + tail)
    print(body)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("texts"); s.add_argument("test"); s.add_argument("work"); s.add_argument("--hot", type=int, default=32)
    s = sub.add_parser("wait"); s.add_argument("url"); s.add_argument("pid", type=int); s.add_argument("--timeout", type=float, default=120)
    s = sub.add_parser("warm"); s.add_argument("url"); s.add_argument("bodies")
    s = sub.add_parser("table"); s.add_argument("work"); s.add_argument("doc")
    a = p.parse_args()
    {"texts": texts, "wait": wait, "warm": warm, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
