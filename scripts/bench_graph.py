#!/usr/bin/env python3
"""Benchmark: graft's loader and SPARQL HTTP layer against oxigraph's own server.

Run through scripts/bench-graph.sh (it builds the graphs and the oxigraph venv).
Standard library only.

1. Load: the same gzip N-Triples files, into the same named graphs, once with
   `graft graph load` (a fresh data dir) and once with `oxigraph load` (a fresh
   location); wall time of each command, triples/s, ratio.
2. Queries: `graft serve` and `oxigraph serve` over those two stores, both with
   the union default graph, on free loopback ports. A fixed set of queries, each
   warmed up, then run N times on each server with the requests interleaved
   (graft, oxigraph, oxigraph, graft, ...) over one keep-alive connection per
   server. Latency is client-side: from sending the request until the whole body
   is read. Both servers must return the same number of rows for every query.
3. Prints a table and writes it to docs/benchmarks.md (only the section
   "Graph: load and SPARQL latency vs oxigraph serve"; other sections are kept).

The target (graft adds at most 10 % to oxigraph's latency: ratio <= 1.10) is
reported per query and as the geometric mean of the ratios; missing it does not
fail the run. Differing row counts, HTTP errors or a server that does not come
up do (exit status 1). Both servers are stopped and the temporary stores removed
at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import http.client
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NS = "https://w3id.org/graft/graph/"
SECTION = "Graph: load and SPARQL latency vs oxigraph serve"
TARGET = 1.10

PREFIXES = """\
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX schema: <https://schema.org/>
PREFIX gv: <https://w3id.org/graft/vocab#>
PREFIX co: <https://w3id.org/graft/company/>
PREFIX idx: <https://w3id.org/graft/index/>
PREFIX ctry: <https://w3id.org/graft/country/>
PREFIX wn: <https://w3id.org/graft/wordnet/synset/>
"""

# (name, what it exercises, query body). Every query runs with PREFIXES in front.
QUERIES = [
    ("label", "point lookup: label of one IRI (WordNet synset 'dog')",
     "SELECT ?label WHERE { wn:02084071-n rdfs:label ?label }"),
    ("apple_facts", "point lookup: every fact of Apple's node",
     "SELECT ?p ?o WHERE { co:US0378331005 ?p ?o }"),
    ("exact_literal", 'label search by exact literal "Apple"@en',
     'SELECT ?s ?p WHERE { ?s ?p "Apple"@en }'),
    ("zh_label_ticker", "Chinese label of a CSI 300 member, with its tickers",
     'SELECT ?company ?ticker WHERE { ?company rdfs:label "宁德时代"@zh ; '
     "schema:memberOf idx:csi-300 ; schema:tickerSymbol ?ticker }"),
    ("dax_germany", "German companies in the DAX, English names, ordered",
     "SELECT ?company ?name WHERE { ?company schema:memberOf idx:dax ; gv:country ctry:DE ; "
     'rdfs:label ?name FILTER(LANG(?name) = "en") } ORDER BY ?name'),
    ("hypernyms", "WordNet hypernym chain of 'dog' (skos:broader+)",
     "SELECT ?hypernym ?label WHERE { wn:02084071-n skos:broader+ ?hypernym . "
     "?hypernym skos:prefLabel ?label }"),
    ("count_by_country", "aggregate: companies per country, top 10",
     "SELECT ?country ?name (COUNT(?company) AS ?companies) WHERE { ?company a schema:Corporation ; "
     'gv:country ?country . ?country rdfs:label ?name FILTER(LANG(?name) = "en") } '
     "GROUP BY ?country ?name ORDER BY DESC(?companies) LIMIT 10"),
    ("regex_scan", "FILTER REGEX scan over all company labels (/bank/i)",
     "SELECT ?company ?name WHERE { ?company a schema:Corporation ; rdfs:label ?name "
     'FILTER(REGEX(?name, "bank", "i")) }'),
    ("ask", "ASK: is Apple in the Nasdaq-100?",
     "ASK { co:US0378331005 schema:memberOf idx:nasdaq-100 }"),
    ("sp500_members", "large result: S&P 500 members with names and tickers (~300 KiB JSON)",
     "SELECT ?company ?name ?ticker WHERE { ?company schema:memberOf idx:s-p-500 ; "
     "rdfs:label ?name ; schema:tickerSymbol ?ticker }"),
]

# Not in the geometric mean: the smallest possible request, to show the fixed
# per-request cost of each HTTP layer.
PROBE = ("empty_ask", "probe: ASK {} (no data touched; fixed per-request cost)", "ASK {}")

ACCEPT = "application/sparql-results+json"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes

class Servers:
    """Every child process started here; all are stopped by stop_all()."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name, cmd, log_path):
        log_file = open(log_path, "wb")
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        log_file.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self):
        for _, proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_timed(cmd, what):
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise BenchError(f"{what} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return elapsed, res.stdout + res.stderr


# ---------------------------------------------------------------- HTTP

class Endpoint:
    def __init__(self, name, port, path):
        self.name = name
        self.port = port
        self.path = path
        self.conn = None

    def connect(self):
        """Opens a new connection now, so no timed request pays for it."""
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.connect()

    def query(self, text):
        """GET path?query=...; returns (seconds, status, headers, body)."""
        url = self.path + "?" + urllib.parse.urlencode({"query": text})
        if self.conn is None:
            self.connect()
        start = time.perf_counter()
        try:
            self.conn.request("GET", url, headers={"Accept": ACCEPT})
            resp = self.conn.getresponse()
            body = resp.read()
        except (http.client.HTTPException, OSError):
            # A dropped keep-alive connection: reconnect once, outside the clock.
            self.conn.close()
            self.connect()
            start = time.perf_counter()
            self.conn.request("GET", url, headers={"Accept": ACCEPT})
            resp = self.conn.getresponse()
            body = resp.read()
        elapsed = time.perf_counter() - start
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return elapsed, resp.status, resp.getheaders(), body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def delayed_acks():
    """Linux's count of delayed ACKs sent (TcpExt DelayedACKs), or None. Read
    around each timed request: a request that made it grow was held up by the
    delayed-ACK timer (40 ms on Linux), the signature of Nagle's algorithm on
    the server side of a response written in several pieces."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            names, values = head.split(), vals.split()
            if "DelayedACKs" in names:
                return int(values[names.index("DelayedACKs")])
    return None


def rows_of(endpoint, name, status, body):
    if status != 200:
        raise BenchError(f"{endpoint.name}: query {name} answered {status}: {body[:500]!r}")
    doc = json.loads(body)
    if "boolean" in doc:
        return 1 if doc["boolean"] else 0
    return len(doc["results"]["bindings"])


def wait_up(endpoint, proc, log_path, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{endpoint.name} exited ({proc.returncode}):\n{Path(log_path).read_text(errors='replace')}")
        try:
            _, status, _, body = endpoint.query("ASK {}")
            if status == 200:
                return
        except OSError:
            endpoint.close()
        time.sleep(0.2)
    raise BenchError(f"{endpoint.name} did not answer on port {endpoint.port} within {timeout} s")


def graft_background_ready(endpoint, proc, timeout=600):
    """Waits while graft's /health says its label index is still `building`
    (it is built in the background after the server starts answering)."""
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"graft exited ({proc.returncode}) while building its label index")
            conn.request("GET", "/health")
            resp = conn.getresponse()
            body = resp.read()
            try:
                state = json.loads(body).get("label_index")
            except ValueError:
                state = None
            if state != "building":
                return state
            time.sleep(1)
    finally:
        conn.close()
    raise BenchError(f"graft's label index still building after {timeout} s")


def settle(procs, window=1.0, idle=0.05, timeout=300):
    """Waits until every server process uses less than `idle` of a CPU over
    `window` seconds: no startup work (index builds, compactions) left to
    compete with the timed requests."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            return 0.0

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = [cpu(p.pid) for p in procs]
        time.sleep(window)
        busy = [(cpu(p.pid) - b) / window for p, b in zip(procs, before)]
        if all(x < idle for x in busy):
            return
    log(f"warning: the servers did not settle within {timeout} s; timing anyway")


# ---------------------------------------------------------------- statistics

def pct(samples, p):
    s = sorted(samples)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p
    lo = math.floor(k)
    hi = math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


# ---------------------------------------------------------------- steps

def count_triples(path):
    n = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith(b"#"):
                n += 1
    return n


def load_step(args, graphs, graft_dir, oxi_dir):
    """Loads every graph into fresh stores, args.load_repeats times; the last
    repetition's stores are the ones served afterwards."""
    triples = {name: count_triples(path) for name, path in graphs}  # also warms the page cache
    times = {name: {"graft": [], "oxigraph": []} for name, _ in graphs}
    for rep in range(args.load_repeats):
        shutil.rmtree(graft_dir, ignore_errors=True)
        shutil.rmtree(oxi_dir, ignore_errors=True)
        for name, path in graphs:
            iri = NS + name

            def graft_load():
                t, out = run_timed([args.graft, "--data-dir", str(graft_dir), "graph", "load", "--graph", iri, str(path)],
                                   f"graft graph load {path}")
                m = re.search(r"loaded .*?: (\d+) quads", out)
                if not m or int(m.group(1)) != triples[name]:
                    raise BenchError(f"graft loaded {m.group(1) if m else '?'} quads from {path}, "
                                     f"the file has {triples[name]}:\n{out}")
                times[name]["graft"].append(t)

            def oxigraph_load():
                t, _ = run_timed([args.oxigraph, "load", "--location", str(oxi_dir), "--file", str(path), "--graph", iri],
                                 f"oxigraph load {path}")
                times[name]["oxigraph"].append(t)

            # Alternate who goes first, so neither always meets a warmer machine.
            for step in ((graft_load, oxigraph_load) if rep % 2 == 0 else (oxigraph_load, graft_load)):
                step()
            log(f"load {name} (run {rep + 1}/{args.load_repeats}): {triples[name]} triples, "
                f"graft {times[name]['graft'][-1]:.2f} s, oxigraph {times[name]['oxigraph'][-1]:.2f} s")
    results = []
    for name, path in graphs:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        results.append({"graph": name, "file": str(rel), "triples": triples[name],
                        "graft_s": statistics.median(times[name]["graft"]),
                        "oxigraph_s": statistics.median(times[name]["oxigraph"])})
    return results


def check_same_content(graft, oxi):
    q = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g"
    counts = []
    for ep in (graft, oxi):
        _, status, _, body = ep.query(q)
        rows_of(ep, "graph_counts", status, body)
        counts.append({b["g"]["value"]: int(b["n"]["value"]) for b in json.loads(body)["results"]["bindings"]})
    if counts[0] != counts[1]:
        raise BenchError(f"the two stores differ: graft {counts[0]}, oxigraph {counts[1]}")
    return counts[0]


def query_step(args, graft, oxi, oxi_b):
    """Times every query on graft and oxigraph; `oxi_b` is a second connection
    to the same oxigraph server, timed as a third party (A/A control): the
    ratio oxigraph-b/oxigraph shows how far two identical servers drift apart
    in this setup. The three are interleaved in a rotating order and reconnect
    every args.reconnect_every rounds, so that no one keeps a lucky (or
    unlucky) server thread / CPU placement for the whole run."""
    queries = [q for q in QUERIES if not args.only or q[0] in args.only]
    if not args.only:
        queries = queries + [PROBE]
    eps = [graft, oxi] + ([oxi_b] if oxi_b else [])
    orders = list(itertools.permutations(eps))
    results = []
    for name, what, body in queries:
        text = PREFIXES + body
        info = {}
        for ep in eps:
            ep.connect()
            for _ in range(args.warmup):
                _, status, headers, resp = ep.query(text)
                rows = rows_of(ep, name, status, resp)
            info[ep.name] = {"rows": rows, "bytes": len(resp), "headers": headers}
        if info["graft"]["rows"] != info["oxigraph"]["rows"]:
            raise BenchError(f"query {name}: graft returned {info['graft']['rows']} rows, "
                             f"oxigraph {info['oxigraph']['rows']}")
        expected = info["graft"]["rows"]
        samples = {ep.name: [] for ep in eps}
        dacks = {ep.name: 0 for ep in eps}
        for i in range(args.n):
            if i > 0 and args.reconnect_every and i % args.reconnect_every == 0:
                for ep in eps:
                    ep.connect()
            for ep in orders[i % len(orders)]:
                d0 = delayed_acks()
                t, status, _, resp = ep.query(text)
                d1 = delayed_acks()
                if d0 is not None and d1 is not None and d1 > d0:
                    dacks[ep.name] += 1
                rows = rows_of(ep, name, status, resp)
                if rows != expected:
                    raise BenchError(f"query {name}: {ep.name} returned {rows} rows on run {i}, "
                                     f"{expected} during warm-up")
                samples[ep.name].append(t * 1000)
        g, o = samples["graft"], samples["oxigraph"]
        r = {
            "name": name, "what": what, "query": body, "rows": expected,
            "bytes_graft": info["graft"]["bytes"], "bytes_oxigraph": info["oxigraph"]["bytes"],
            "graft_median": statistics.median(g), "oxigraph_median": statistics.median(o),
            "graft_p95": pct(g, 0.95), "oxigraph_p95": pct(o, 0.95),
            "graft_min": min(g), "oxigraph_min": min(o),
            "probe": (name, what, body) == PROBE,
            "headers_graft": info["graft"]["headers"], "headers_oxigraph": info["oxigraph"]["headers"],
            "dack_graft": dacks["graft"], "dack_oxigraph": dacks["oxigraph"],
        }
        r["ratio"] = r["graft_median"] / r["oxigraph_median"]
        r["aa_ratio"] = statistics.median(samples["oxigraph-b"]) / r["oxigraph_median"] if oxi_b else None
        results.append(r)
        aa = f"  A/A {r['aa_ratio']:.3f}" if oxi_b else ""
        log(f"{name:18} rows {r['rows']:5}  graft {r['graft_median']:8.3f} ms  oxigraph {r['oxigraph_median']:8.3f} ms  "
            f"ratio {r['ratio']:.3f}{aa}  delayed-ACK stalls {r['dack_graft']}/{r['dack_oxigraph']}")
    return results


# ---------------------------------------------------------------- report

def machine():
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or str(os.cpu_count())
    kernel = os.uname().release
    return nproc, model, kernel


def git_commit():
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def tool_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def framing(headers):
    h = {k.lower(): v for k, v in headers}
    if "chunked" in h.get("transfer-encoding", ""):
        return "chunked"
    return "length" if "content-length" in h else "close"


def fmt_ms(x):
    return f"{x:.2f}" if x >= 10 else f"{x:.3f}"


def render(meta, loads, queries):
    out = []
    out.append(f"## {SECTION}\n")
    out.append(f"Made by `{meta['command']}` on {meta['date']}.\n")
    out.append(f"- Machine: {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}; {meta['loadavg']}")
    out.append(f"- graft: `{meta['graft_version']}`, commit {meta['commit']} (release build), "
               f"`graft serve --union-default-graph --workers {meta['workers']}`")
    out.append(f"- oxigraph: `{meta['oxigraph_version']}` (PyPI `oxigraph=={meta['oxigraph_pin']}`, its prebuilt server), "
               f"`oxigraph serve --union-default-graph` (no worker-count flag: one thread per connection)")
    control = (" A second connection to the same oxigraph server (*oxigraph-b*) is timed as if it were a third "
               "server: the A/A column (oxigraph-b/oxigraph) is the noise floor of this comparison." if meta["control"] else "")
    reconnect = (f"fresh connections every {meta['reconnect_every']} rounds (outside the clock)"
                 if meta["reconnect_every"] else "one connection per server throughout")
    out.append(f"- Client: Python http.client, keep-alive, {reconnect}, `GET /sparql` (graft) and `GET /query` "
               f"(oxigraph) with `Accept: {ACCEPT}`; latency from sending the request to having read the whole body. "
               f"{meta['warmup']} warm-up requests, then N = {meta['n']} timed requests per query and server, "
               f"interleaved in rotating order.{control}")
    data = ", ".join(f"{l['file']} → <{NS}{l['graph']}>" for l in loads)
    out.append(f"- Data: {data}; "
               f"both stores checked to hold the same triples per graph before timing. Timing starts once both "
               f"servers are idle (graft's background label index built).\n")

    out.append("### Load (bulk loader, one file per command, fresh store)\n")
    out.append("| graph | triples | graft s | graft triples/s | oxigraph s | oxigraph triples/s | graft/oxigraph time |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    tg = to = tt = 0
    for l in loads:
        tg += l["graft_s"]; to += l["oxigraph_s"]; tt += l["triples"]
        out.append(f"| {l['graph']} | {l['triples']:,} | {l['graft_s']:.2f} | {l['triples'] / l['graft_s']:,.0f} | "
                   f"{l['oxigraph_s']:.2f} | {l['triples'] / l['oxigraph_s']:,.0f} | {l['graft_s'] / l['oxigraph_s']:.2f} |")
    out.append(f"| **total** | {tt:,} | {tg:.2f} | {tt / tg:,.0f} | {to:.2f} | {tt / to:,.0f} | {tg / to:.2f} |")
    out.append("")
    out.append("Wall time of each command (`graft graph load --graph G F` / `oxigraph load --location D --file F --graph G`), "
               "process start and store open/close included; the files were read once beforehand, so both read from the page cache.\n")

    main = [q for q in queries if not q["probe"]]
    gm = geomean([q["ratio"] for q in main])
    met = sum(1 for q in main if q["ratio"] <= TARGET)
    out.append("### SPARQL query latency (ms, client-side)\n")
    aa_head, aa_rule = (" A/A |", "---:|") if meta["control"] else ("", "")
    out.append("| query | rows | bytes | graft median | oxigraph median | ratio graft/oxigraph | Δ median | "
               f"graft p95 | oxigraph p95 | ≤ 1.10 |{aa_head} delayed-ACK stalls graft / oxigraph | body framing graft / oxigraph |")
    out.append(f"|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|{aa_rule}---:|---|")
    for q in queries:
        b = f"{q['bytes_graft']:,}" if q["bytes_graft"] == q["bytes_oxigraph"] else f"{q['bytes_graft']:,} / {q['bytes_oxigraph']:,}"
        name = f"*{q['name']}*" if q["probe"] else q["name"]
        ok = "–" if q["probe"] else ("yes" if q["ratio"] <= TARGET else "**no**")
        out.append(f"| {name} | {q['rows']:,} | {b} | {fmt_ms(q['graft_median'])} | {fmt_ms(q['oxigraph_median'])} | "
                   f"{q['ratio']:.3f} | {q['graft_median'] - q['oxigraph_median']:+.3f} | "
                   f"{fmt_ms(q['graft_p95'])} | {fmt_ms(q['oxigraph_p95'])} | {ok} |"
                   + (f" {q['aa_ratio']:.3f} |" if meta["control"] else "")
                   + f" {q['dack_graft']} / {q['dack_oxigraph']} |"
                   + f" {framing(q['headers_graft'])} / {framing(q['headers_oxigraph'])} |")
    aa_gm = f" {geomean([q['aa_ratio'] for q in main]):.3f} |" if meta["control"] else ""
    out.append(f"| **geometric mean** (without the probe) | | | | | **{gm:.3f}** | | | | "
               f"{'yes' if gm <= TARGET else '**no**'} |{aa_gm} | |")
    out.append("")
    out.append(f"Target: graft's HTTP layer adds at most 10 % to oxigraph's own latency (ratio ≤ {TARGET:.2f}). "
               f"Met by {met} of {len(main)} queries; overall (geometric mean {gm:.3f}) "
               f"**{'met' if gm <= TARGET else 'not met'}**. "
               f"The probe row (*{PROBE[0]}*) is not in the mean; it shows the fixed cost of one request on each server. "
               f"*Delayed-ACK stalls*: timed requests (of N = {meta['n']}) during which the kernel's TcpExt DelayedACKs "
               "counter grew, i.e. the response was held up by the client's 40 ms delayed-ACK timer "
               "(Nagle's algorithm on a response written in several pieces). The counter is machine-wide, so it is only "
               "telling for requests much shorter than 40 ms: during a longer query the server's own delayed ACK of the "
               "request counts too.\n")
    if meta.get("notes"):
        out.append(meta["notes"].rstrip() + "\n")

    out.append("### Queries\n")
    out.append("Every query is sent with these prefixes:\n")
    out.append("```sparql\n" + PREFIXES.rstrip() + "\n```\n")
    for q in queries:
        out.append(f"- **{q['name']}** — {q['what']}:")
        out.append(f"  ```sparql\n  {q['query']}\n  ```")
    out.append("")
    return "\n".join(out)


def write_docs(path, section_md):
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasurements of graft, with the command that made each.\n"
    heading = f"## {SECTION}"
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section_md.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + section_md.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    path.write_text(new)


def print_table(loads, queries):
    print()
    print(f"{'load':12} {'triples':>10} {'graft s':>9} {'graft t/s':>11} {'oxi s':>9} {'oxi t/s':>11} {'ratio':>7}")
    for l in loads:
        print(f"{l['graph']:12} {l['triples']:>10,} {l['graft_s']:>9.2f} {l['triples'] / l['graft_s']:>11,.0f} "
              f"{l['oxigraph_s']:>9.2f} {l['triples'] / l['oxigraph_s']:>11,.0f} {l['graft_s'] / l['oxigraph_s']:>7.2f}")
    print()
    control = any(q["aa_ratio"] is not None for q in queries)
    print(f"{'query':18} {'rows':>6} {'graft med':>10} {'oxi med':>10} {'ratio':>7} {'delta':>8} "
          f"{'graft p95':>10} {'oxi p95':>10}  <=1.10" + ("    A/A" if control else "") + "  dACK g/o")
    main = [q for q in queries if not q["probe"]]
    for q in queries:
        ok = "-" if q["probe"] else ("yes" if q["ratio"] <= TARGET else "NO")
        aa = f" {q['aa_ratio']:>6.3f}" if control else ""
        print(f"{q['name']:18} {q['rows']:>6} {q['graft_median']:>10.3f} {q['oxigraph_median']:>10.3f} {q['ratio']:>7.3f} "
              f"{q['graft_median'] - q['oxigraph_median']:>+8.3f} {q['graft_p95']:>10.3f} {q['oxigraph_p95']:>10.3f}  {ok:>6}{aa}"
              f"  {q['dack_graft']:>3}/{q['dack_oxigraph']}")
    gm = geomean([q["ratio"] for q in main])
    aa = f" {geomean([q['aa_ratio'] for q in main]):>6.3f}" if control else ""
    print(f"{'geometric mean':18} {'':>6} {'':>10} {'':>10} {gm:>7.3f} {'':>8} {'':>10} {'':>10}  "
          f"{'met' if gm <= TARGET else 'NOT':>6}{aa}")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graft", default=str(ROOT / "target/release/graft"))
    ap.add_argument("--oxigraph", required=True, help="the oxigraph CLI (from PyPI oxigraph)")
    ap.add_argument("--oxigraph-pin", default="0.5.13")
    ap.add_argument("--graphs-dir", default=str(ROOT / "data/graphs"))
    ap.add_argument("--graph", action="append", dest="graphs", help="graph name (file GRAPHS_DIR/NAME.nt.gz); default finance, wordnet")
    ap.add_argument("-n", type=int, default=30, help="timed requests per query and server (default 30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed requests per query and server first (default 5)")
    ap.add_argument("--workers", type=int, default=0, help="graft serve --workers (default: nproc)")
    ap.add_argument("--reconnect-every", type=int, default=10,
                    help="open fresh connections every K rounds (0: one connection per server throughout; default 10)")
    ap.add_argument("--no-control", action="store_true",
                    help="skip the A/A control (a second oxigraph connection timed like a third server)")
    ap.add_argument("--load-repeats", type=int, default=1, help="load each file this many times, report the median")
    ap.add_argument("--only", action="append", help="run only this query (repeatable); docs are not written")
    ap.add_argument("--docs", default=str(ROOT / "docs/benchmarks.md"))
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary stores (their paths are printed)")
    ap.add_argument("--command", default=os.environ.get("BENCH_COMMAND"), help="command line to record in the docs")
    args = ap.parse_args()

    nproc, cpu, kernel = machine()
    workers = args.workers or int(nproc)
    graphs = [(g, Path(args.graphs_dir) / f"{g}.nt.gz") for g in (args.graphs or ["finance", "wordnet"])]
    for _, p in graphs:
        if not p.is_file():
            raise BenchError(f"{p} is missing: build it first (scripts/bench-graph.sh does)")
    for exe in (args.graft, args.oxigraph):
        if not os.access(exe, os.X_OK):
            raise BenchError(f"{exe} is not an executable")

    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        log(f"warning: load average {load_before[0]:.2f} before the run: other work on this machine skews the numbers")
    tmp = Path(tempfile.mkdtemp(prefix="graft-bench-"))
    graft_dir, oxi_dir = tmp / "graft", tmp / "oxigraph"
    servers = Servers()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    try:
        log(f"stores under {tmp}")
        loads = load_step(args, graphs, graft_dir, oxi_dir)

        gport, oport = free_port(), free_port()
        while oport == gport:
            oport = free_port()
        glog, olog = tmp / "graft-serve.log", tmp / "oxigraph-serve.log"
        gproc = servers.start("graft", [args.graft, "--data-dir", str(graft_dir), "serve", "--bind", f"127.0.0.1:{gport}",
                                        "--union-default-graph", "--workers", str(workers)], glog)
        oproc = servers.start("oxigraph", [args.oxigraph, "serve", "--location", str(oxi_dir), "--bind",
                                           f"127.0.0.1:{oport}", "--union-default-graph"], olog)
        graft = Endpoint("graft", gport, "/sparql")
        oxi = Endpoint("oxigraph", oport, "/query")
        wait_up(graft, gproc, glog)
        wait_up(oxi, oproc, olog)
        index = graft_background_ready(graft, gproc)
        if index:
            log(f"graft label index: {index}")
        settle([gproc, oproc])
        counts = check_same_content(graft, oxi)
        log("both stores hold: " + ", ".join(f"{g} {n}" for g, n in counts.items()))

        oxi_b = None if args.no_control else Endpoint("oxigraph-b", oport, "/query")
        queries = query_step(args, graft, oxi, oxi_b)
        for ep in (graft, oxi, oxi_b):
            if ep:
                ep.close()
        servers.stop_all()

        print_table(loads, queries)
        if args.only or args.no_docs:
            return 0
        meta = {
            "command": args.command or " ".join([sys.executable, *sys.argv]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": nproc, "cpu": cpu, "kernel": kernel, "commit": git_commit(),
            "graft_version": tool_version([args.graft, "--version"]),
            "oxigraph_version": tool_version([args.oxigraph, "--version"]),
            "oxigraph_pin": args.oxigraph_pin, "workers": workers, "n": args.n, "warmup": args.warmup,
            "reconnect_every": args.reconnect_every, "control": not args.no_control,
            "notes": os.environ.get("BENCH_NOTES", ""),
            "loadavg": f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after (1-minute load average)",
        }
        write_docs(Path(args.docs), render(meta, loads, queries))
        log(f"wrote {args.docs}")
        return 0
    finally:
        servers.stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"bench-graph: FAILED: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("bench-graph: interrupted")
        sys.exit(130)
