#!/usr/bin/env bash
# The classification benchmark of docs/benchmarks.md (not a test): for each
# data set × fusion mode (none, append, kbert) × regime (frozen encoder; full
# fine-tuning where time allows; topN: only the top N encoder layers
# fine-tuned, batches grouped by length; topN+lrX+epN: the same with peak
# learning rate X and N epochs, either option alone too) × seed, `graft train` on train/dev and the
# test split evaluated with the best checkpoint; then the table is written
# by scripts/classify/bench_table.py.
#
#   scripts/bench-classify.sh                      # frozen, every data set, 3 seeds
#   SEEDS="1" REGIMES="full" DATASETS="trec6" scripts/bench-classify.sh
#   SEEDS="1" REGIMES="top4 top4+lr0.0002 top12+ep5" DATASETS="sentiment" FUSIONS="none" scripts/bench-classify.sh
#
# Each data set is paired with the graph that fits it, in a store of its own
# under data/bench-classify/stores/: BBC News ↔ finance, TREC ↔ WordNet,
# Chinese sentiment ↔ finance (its Chinese labels). Results go to
# data/bench-classify/runs/<dataset>-<fusion>-<regime>-<seed>/ (graft.json
# holds the metrics, the coverage and the timings).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3"}
REGIMES=${REGIMES:-"frozen"}
DATASETS=${DATASETS:-"bbc trec6 sentiment"}
FUSIONS=${FUSIONS:-"none append kbert"}
WORK=data/bench-classify
GRAFT=target/release/graft
cargo build --release --locked
mkdir -p "$WORK/runs"
scripts/fetch-models.sh all
scripts/fetch-datasets.sh all
[ -s data/graphs/finance.nt.gz ] || python3 scripts/graphs/finance.py --downloads data/downloads --out data/graphs/finance.nt.gz
[ -s data/graphs/wordnet.nt.gz ] || python3 scripts/graphs/wordnet.py --downloads data/downloads --out data/graphs/wordnet.nt.gz

store() { # store NAME GRAPH: a data dir holding one graph
  local dir=$WORK/stores/$1
  if [ ! -f "$dir/.loaded" ]; then
    rm -rf "$dir"
    "$GRAFT" --data-dir "$dir" graph load --graph "https://w3id.org/graft/graph/$2" "data/graphs/$2.nt.gz"
    touch "$dir/.loaded"
  fi
  echo "$dir"
}

for ds in $DATASETS; do
  case $ds in
    bbc) graph=finance; model=models/all-MiniLM-L6-v2; len=128 ;;
    trec6|trec50) graph=wordnet; model=models/all-MiniLM-L6-v2; len=64 ;;
    sentiment) graph=finance; model=models/multilingual-e5-small; len=128 ;;
    *) echo "unknown data set $ds" >&2; exit 1 ;;
  esac
  data_dir=$(store "$graph" "$graph")
  extra=()
  [ "$ds" = trec50 ] && extra+=(--min-examples-per-label 1)
  for regime in $REGIMES; do
    for fusion in $FUSIONS; do
      # The same text budget in every mode: modes that inject get room for facts on top.
      case $fusion in none) max=$len ;; kbert) max=$((len + 32)) ;; append) max=$((len + 33)) ;; esac
      for seed in $SEEDS; do
        run=$WORK/runs/$ds-$fusion-$regime-$seed
        [ -f "$run/graft.json" ] && grep -q '"test"' "$run/graft.json" && { echo "reusing $run"; continue; }
        flags=(--fusion "$fusion" --max-len "$max" --seed "$seed")
        case $regime in
          frozen) flags+=(--freeze-encoder --feature-cache "$WORK/features") ;;
          full) ;;
          *-*) echo "regime $regime: no '-' in a regime (run names split on it; write a learning rate as a decimal)" >&2; exit 1 ;;
          top[0-9]*)
            layers=${regime#top}
            flags+=(--train-layers "${layers%%+*}" --group-by-length)
            # Options after '+': lrX, a peak learning rate X (a decimal: run
            # names split on '-'); epN, N epochs.
            IFS=+ read -r -a parts <<< "$regime"
            for option in "${parts[@]:1}"; do
              case $option in
                lr?*) flags+=(--lr "${option#lr}") ;;
                ep[0-9]*) flags+=(--epochs "${option#ep}") ;;
                *) echo "regime $regime: unknown option +$option (+lrX, +epN)" >&2; exit 1 ;;
              esac
            done ;;
          *) echo "unknown regime $regime (frozen, full, topN, topN+lrX+epN)" >&2; exit 1 ;;
        esac
        echo "== $ds $fusion $regime seed $seed" >&2
        start=$(date +%s.%N)
        "$GRAFT" --data-dir "$data_dir" train --model "$model" \
          --train "data/datasets/$ds/train.jsonl" --dev "data/datasets/$ds/dev.jsonl" --test "data/datasets/$ds/test.jsonl" \
          --out "$run" "${flags[@]}" "${extra[@]}" > "$run.stdout"
        end=$(date +%s.%N)
        python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['training']['wall_s']=float(sys.argv[3])-float(sys.argv[2]); json.dump(c,open(p,'w'),indent=1)" \
          "$run/graft.json" "$start" "$end"
      done
    done
  done
done
python3 scripts/classify/bench_table.py "$WORK/runs" docs/benchmarks.md
