#!/usr/bin/env bash
# The classification service under load (a benchmark, not a test): wrk
# against POST /v1/classify of `graft serve` on loopback, with the
# quickstart's store and model (data/quickstart, models/bbc-news), in three
# scenarios, each at 8 and 32 connections, 2 wrk threads, 20 s:
#
#   uncached  server with --no-cache; every request a different sentence
#   cached    the cache warmed with a hot set of 32 sentences, then only those
#   mix       80 % from the (warmed) hot set, 20 % sentences never sent before
#             (a fresh server and an empty cache per row, so "never sent" holds)
#
# plus two references on the same sentences: the encoder alone (`graft embed
# --input`) and the same pipeline without HTTP (`graft classify --input`). Writes data/bench-serve/ (wrk output, runs.jsonl) and the table
# between <!-- serve:begin --> and <!-- serve:end --> in docs/benchmarks.md.
# Run on an idle machine: wrk shares the cores with the server.
#
#   scripts/quickstart.sh --no-serve && scripts/bench-serve.sh
#   CONNECTIONS="8" DURATION=10s scripts/bench-serve.sh     # shorter
#   GRAFT=/path/to/graft scripts/bench-serve.sh              # that binary, no cargo build
#
# Needs wrk (apt-get install wrk). Stop any `graft serve` on data/quickstart
# first: only one process may open a store. The answer cache persists in
# data/quickstart/cache: this empties it before each cached server.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/quickstart}
MODEL=${MODEL:-models/bbc-news}
ENCODER=${ENCODER:-models/all-MiniLM-L6-v2}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-"8 32"}
THREADS=${THREADS:-2}
HOT=${HOT:-32}
FRESH_SHARE=${FRESH_SHARE:-0.2}
SCENARIOS=${SCENARIOS:-"uncached cached mix"}
CACHE_FLAGS=${CACHE_FLAGS:-} # e.g. "--cache-mb 64" for the cached and mix servers
WORK=${WORK:-data/bench-serve}
DOC=${DOC:-docs/benchmarks.md}
LUA=scripts/serve/classify.lua
HELPER=scripts/serve/bench_serve.py
say() { printf 'bench-serve: %s\n' "$*"; }
die() { printf 'bench-serve: error: %s\n' "$*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
if [ -z "${GRAFT:-}" ]; then
  GRAFT=target/release/graft
  cargo build --release --locked
fi
if [ ! -f "$MODEL/graft.json" ] || [ ! -d "$DATA/store" ]; then
  die "no $MODEL or $DATA: run scripts/quickstart.sh --no-serve first"
fi
mkdir -p "$WORK"
rm -f "$WORK/runs.jsonl"
python3 - "$WORK/env.json" "$0 $*" "$THREADS" "$DURATION" "$FRESH_SHARE" <<'PY'
import json, sys
out, cmd, threads, duration, share = sys.argv[1:]
json.dump({"command": cmd.strip(), "wrk_threads": int(threads), "duration": duration, "fresh_share": float(share)}, open(out, "w"))
PY

# The texts: request bodies for wrk, plain lines for graft embed.
python3 "$HELPER" texts data/datasets/bbc/test.jsonl "$WORK" --hot "$HOT"

# The reference: the encoder alone, batched, on the same sentences; the
# one-text run's time (process start, model load) is subtracted.
secs() { # secs CMD...: its wall time in seconds, output dropped
  python3 -c 'import subprocess, sys, time
t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(time.perf_counter() - t)' "$@"
}
head -n 1 "$WORK/all.txt" > "$WORK/one.txt"
"$GRAFT" embed --model "$ENCODER" --input "$WORK/one.txt" >/dev/null # warm the page cache
t1=$(secs "$GRAFT" embed --model "$ENCODER" --input "$WORK/one.txt")
tn=$(secs "$GRAFT" embed --model "$ENCODER" --input "$WORK/all.txt")
python3 - "$WORK" "$t1" "$tn" <<'PY'
import json, sys
work, t1, tn = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
n = sum(1 for _ in open(f"{work}/all.txt"))
r = {"texts": n, "seconds": round(tn - t1, 3), "startup_s": round(t1, 3), "sentences_per_s": round(n / (tn - t1), 1)}
json.dump(r, open(f"{work}/encoder.json", "w"))
print(f"bench-serve: encoder alone: {n} sentences in {tn - t1:.2f} s (+ {t1:.2f} s start-up): {r['sentences_per_s']} sentences/s")
PY

# The second reference: the whole classification pipeline without HTTP
# (linking, fusion, batched encoding: `graft classify --input`, batches of
# 64), its set-up (model load, label index) excluded by its own timing.
"$GRAFT" --data-dir "$DATA" classify --model "$MODEL" --input "$WORK/all.jsonl" --timing \
  2>"$WORK/pipeline.err" >/dev/null || { cat "$WORK/pipeline.err" >&2; die "graft classify --input failed"; }
grep '^{"seconds"' "$WORK/pipeline.err" | tail -n 1 > "$WORK/pipeline.json"
say "pipeline without HTTP: $(cat "$WORK/pipeline.json")"

PID=
stop() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi
}
trap stop EXIT
start() { # start LOG FLAGS...: graft serve on a free port; sets URL and PID
  local log=$1 port
  shift
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  URL=http://127.0.0.1:$port
  "$GRAFT" --data-dir "$DATA" serve --bind "127.0.0.1:$port" --model "bbc=$MODEL" "$@" >"$log" 2>&1 &
  PID=$!
  python3 "$HELPER" wait "$URL" "$PID" || { tail -n 20 "$log" >&2; exit 1; }
}
empty_cache() { # the answer cache persists on disk (DATA/cache): start each cached server from nothing
  rm -rf "${DATA:?}/cache"
  say "emptied the answer cache $DATA/cache"
}
run() { # run SCENARIO CONNECTIONS POOL [FRESH SHARE]: one wrk row into runs.jsonl
  local name=$1 c=$2 pool=$3 out=$WORK/wrk-$1-c$2.txt
  shift 3
  say "wrk $name, $c connections, $DURATION"
  wrk -t"$THREADS" -c"$c" -d"$DURATION" --latency -s "$LUA" "$URL/v1/classify" -- "$pool" "$THREADS" "$@" >"$out" 2>&1 \
    || { cat "$out" >&2; die "wrk failed"; }
  grep -q '^BENCH ' "$out" || { cat "$out" >&2; die "no BENCH line in $out"; }
  sed -n 's/^BENCH //p' "$out" | python3 -c 'import json, sys
r = json.loads(sys.stdin.read()); r.update(scenario=sys.argv[1], connections=int(sys.argv[2]))
bad = r["non2xx"] + r["socket_errors"]
print("bench-serve:   %(rps).0f requests/s, p50 %(p50_ms).1f ms, p99 %(p99_ms).1f ms, %(cached_hits)d from the cache, %(non2xx)d non-2xx, %(socket_errors)d socket errors" % r)
open(sys.argv[3], "a").write(json.dumps(r) + "\n")
if bad > 0.01 * max(r["requests"], 1): sys.exit("bench-serve: more than 1 %% of the requests failed; see " + sys.argv[4])' \
    "$name" "$c" "$WORK/runs.jsonl" "$out"
}

for scenario in $SCENARIOS; do
  case $scenario in
    uncached)
      start "$WORK/serve-uncached.log" --no-cache
      for c in $CONNECTIONS; do run uncached "$c" "$WORK/all.jsonl"; done
      stop ;;
    cached)
      empty_cache
      # shellcheck disable=SC2086 # CACHE_FLAGS is a list of flags
      start "$WORK/serve-cached.log" $CACHE_FLAGS
      python3 "$HELPER" warm "$URL" "$WORK/hot.jsonl"
      for c in $CONNECTIONS; do run cached "$c" "$WORK/hot.jsonl"; done
      stop ;;
    mix)
      for c in $CONNECTIONS; do
        empty_cache
        # shellcheck disable=SC2086
        start "$WORK/serve-mix-c$c.log" $CACHE_FLAGS
        python3 "$HELPER" warm "$URL" "$WORK/hot.jsonl"
        run mix "$c" "$WORK/hot.jsonl" "$WORK/fresh.jsonl" "$FRESH_SHARE"
        stop
      done ;;
    *) die "unknown scenario '$scenario' (want uncached, cached, mix)" ;;
  esac
done
python3 "$HELPER" table "$WORK" "$DOC"
