# Sourced by the encoder scripts (run from the repository root): makes sure the
# throw-away virtualenv data/venv-torch (git-ignored) exists with PyTorch,
# transformers, ONNX and ONNX Runtime, and sets VENV_PY to its python.
# Creation is serialised with flock, so scripts run side by side create it once
# and then reuse it. `pip install torch` brings PyPI's CUDA build (~6 GB); it
# runs on the CPU as well.
VENV_DIR=${VENV_DIR:-data/venv-torch}
VENV_PY=$VENV_DIR/bin/python
VENV_PACKAGES=(torch transformers onnx onnxscript onnxruntime numpy)
mkdir -p "$(dirname "$VENV_DIR")"
(
  flock 9
  if ! "$VENV_PY" -c 'import torch, transformers, onnx, onnxscript, onnxruntime, numpy' 2>/dev/null; then
    echo "setting up $VENV_DIR (torch, transformers, onnx, onnxruntime; several GB) ..." >&2
    [ -x "$VENV_PY" ] || python3 -m venv "$VENV_DIR"
    "$VENV_PY" -m pip install --quiet --upgrade pip
    "$VENV_PY" -m pip install --quiet "${VENV_PACKAGES[@]}"
  fi
) 9>"$VENV_DIR.lock"
