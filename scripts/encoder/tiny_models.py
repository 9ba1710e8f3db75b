"""Tiny random encoder checkpoints and their transformers reference outputs.

Run by hand, from the repository root, with the PyTorch virtualenv
(scripts/encoder/venv-torch.sh creates data/venv-torch):

    data/venv-torch/bin/python scripts/encoder/tiny_models.py [--out tests/data/encoder/tiny]

It writes, deterministically (fixed seeds, one thread), small committed test
fixtures for graft's loading plumbing (the real-model tests live elsewhere):

  bert-bin/   random BertModel with pooler (hidden 32, 2 layers, 4 heads,
              intermediate 64, 64 positions, 2 segments, exact GELU) saved
              as PyTorch `pytorch_model.bin` (torch.save, zip format) with
              every key prefixed `bert.` as BertForSequenceClassification
              checkpoints have, no model.safetensors; config.json;
              tokenizer.json (BERT WordPiece, [CLS] $A [SEP]).
  roberta/    random XLMRobertaModel without pooler (pad_token_id 1, so
              positions count from 2; 66 position rows = 64 usable; one
              segment; layer_norm_eps 1e-5 as XLM-R has) saved as
              `model.safetensors` with unprefixed keys; config.json;
              tokenizer.json (the same WordPiece vocabulary with XLM-R style
              special tokens <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4, so word
              ids are identical in both tokenizers; <s> $A </s>).
  reference.json  {"bert-bin": {...}, "roberta": {...}}: for three fixed
              sentences, tokenised one at a time with truncation at the
              model's usable maximum (64) and no padding, the token ids, the
              full last_hidden_state [tokens, 32], its mean over the tokens,
              pooler_output (bert-bin) and the position ids transformers used
              (roberta). Floats rounded to 7 significant digits.

Both tokenizer.json files have padding (fixed 16) and truncation (16) switched
on, as tokenizer.json files shipped with models often do, so that graft's reset
of both is exercised: graft must not emit 16 ids for any of the sentences.

Every parameter, layer norms and biases included, is drawn at random (not the
transformers initialisation, which leaves layer norms at 1/0 and biases at 0),
so a loader that mixes up or skips a tensor changes the outputs.

Afterwards both folders are reloaded with transformers.AutoModel.from_pretrained
and must reproduce the reference outputs; the script fails otherwise.
"""

import os

# Keep CPU use tiny (set before torch / tokenizers start their thread pools).
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import collections  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    BertConfig,
    BertModel,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaModel,
)
from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaEmbeddings  # noqa: E402

SEED = 20240611
SIGNIFICANT_DIGITS = 7
BAKED_IN_LENGTH = 16  # padding and truncation written into tokenizer.json
HIDDEN = 32
MAX_TOKENS = 64  # usable positions of both models

# Lower-case words and ## continuation pieces, enough for SENTENCES (checked
# below: only the deliberately unknown word "zebras" becomes the unknown token,
# also in the part of the long sentence cut off by truncation).
WORDS = [
    "the", "a", "and", "in", "on", "of", "it", "was", "were", "is",
    "hello", "world", "small", "old", "red", "dog", "cat", "children", "ball", "park",
    "garden", "tree", "sun", "cafe", "home", "morning", "play", "sleep", "walk", "watch",
    "slow", "quiet", "sat", "went", "near", "from", "with", "while", "across", "them",
    "until", "again", "later", "or",
    "##s", "##ing", "##ed", "##ly",
    ".", ",", "!", "?",
]
BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
ROBERTA_SPECIALS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}

SENTENCES = [
    # short: 5 tokens with the special tokens
    {"id": "short", "text": "Hello world!"},
    # more than the 16 baked into tokenizer.json, fewer than 60; upper case,
    # an accent (the normaliser strips it), ## pieces, one unknown word
    {"id": "medium", "text": "The small dogs were playing in the old Café, and the zebras watched."},
    # longer than the 64 usable positions: cut at 64 (the last position row
    # of both tables is used)
    {"id": "long", "text": "The old dog was sleeping in the sun while the children were playing "
                           "with a red ball in the garden. A small cat walked slowly across the park "
                           "and sat near the tree. Later the children went home, and the garden was "
                           "quiet again until the morning. Hello, world! Was it a dog or a cat? "
                           "The dogs and the cats were sleeping in the sun."},
]


# ---------------------------------------------------------------- helpers

def log(msg):
    print(f"[tiny_models] {msg}", file=sys.stderr)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rounded(values):
    return [float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in values]


def vocab(specials):
    """Special tokens at ids 0-4 (in the order given), then WORDS."""
    tokens = list(specials.values()) + WORDS
    assert len(set(tokens)) == len(tokens), "duplicate vocabulary entry"
    return {t: i for i, t in enumerate(tokens)}


def build_tokenizer(specials, roberta):
    v = vocab(specials)
    tok = Tokenizer(models.WordPiece(v, unk_token=specials["unk"], continuing_subword_prefix="##",
                                     max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if roberta:
        bos, eos = specials["bos"], specials["eos"]
        # RoBERTa style: one segment (type id 0 throughout; type_vocab_size 1).
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}",
            pair=f"{bos} $A {eos} {eos} $B {eos}",
            special_tokens=[(bos, v[bos]), (eos, v[eos])],
        )
    else:
        cls, sep = specials["cls"], specials["sep"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, v[cls]), (sep, v[sep])],
        )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(list(specials.values()))  # already in the vocab: same ids
    # Switched on on purpose (graft resets both).
    tok.enable_padding(direction="right", pad_id=v[specials["pad"]], pad_type_id=0,
                       pad_token=specials["pad"], length=BAKED_IN_LENGTH)
    tok.enable_truncation(max_length=BAKED_IN_LENGTH, stride=0, strategy="longest_first", direction="right")
    for name, token in specials.items():
        assert tok.token_to_id(token) == v[token], (name, token)
    return tok, v


def randomise(model, seed):
    """Draws every parameter afresh, in name order, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:  # Linear [out, in]: keep activations of order one
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def float_state(model, prefix):
    """The float tensors of the state dict (integer buffers such as
    embeddings.position_ids dropped), each in its own storage."""
    out = collections.OrderedDict()
    for k, t in model.state_dict().items():
        if not t.is_floating_point():
            log(f"dropping non-float buffer {k}")
            continue
        out[prefix + k] = t.detach().to(torch.float32).contiguous().clone()
    return out


def write_config(config, path, architectures):
    config.architectures = architectures
    config.to_json_file(path, use_diff=False)


def run(model, ids, token_type_ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                     token_type_ids=torch.tensor([token_type_ids]))


def reference_items(name, model, tokenizer_file, roberta):
    tok = Tokenizer.from_file(tokenizer_file)
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    full_tok = Tokenizer.from_file(tokenizer_file)
    full_tok.no_padding()
    full_tok.no_truncation()
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=tokenizer_file)
    items, raw = [], []
    for s in SENTENCES:
        enc = tok.encode(s["text"])
        ids, types = enc.ids, enc.type_ids
        full_ids = full_tok.encode(s["text"]).ids
        n_full = len(full_ids)
        unk = tok.token_to_id(tok.model.unk_token)
        assert full_ids.count(unk) == (1 if s["id"] == "medium" else 0), f"{s['id']}: unknown word, extend WORDS"
        hf_ids = hf_tok(s["text"], truncation=True, max_length=MAX_TOKENS, padding=False)["input_ids"]
        assert hf_ids == ids, f"{name} {s['id']}: tokenizers and transformers disagree"
        out = run(model, ids, types)
        hidden = out.last_hidden_state[0]
        mean = hidden.to(torch.float64).mean(0)
        item = {
            "id": s["id"],
            "text": s["text"],
            "num_tokens": len(ids),
            "untruncated_num_tokens": n_full,
            "truncated": n_full > len(ids),
            "tokens": enc.tokens,
            "input_ids": ids,
            "token_type_ids": types,
        }
        if roberta:
            pos = XLMRobertaEmbeddings.create_position_ids_from_input_ids(
                torch.tensor([ids]), padding_idx=model.config.pad_token_id)
            item["position_ids"] = pos[0].tolist()
        item["mean"] = rounded(mean.tolist())
        if getattr(out, "pooler_output", None) is not None:
            item["pooler_output"] = rounded(out.pooler_output[0].tolist())
        item["last_hidden_state"] = [rounded(row) for row in hidden.tolist()]
        items.append(item)
        raw.append(out)
        log(f"{name} {s['id']}: {len(ids)} tokens (untruncated {n_full})")
    return items, raw


def check_reload(name, folder, raw, items, expect_missing=(), **kwargs):
    """Reloads `folder` with AutoModel and compares with the reference run."""
    model, info = AutoModel.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                            output_loading_info=True, **kwargs)
    model.eval()
    missing = sorted(info.get("missing_keys", []))
    unexpected = sorted(info.get("unexpected_keys", []))
    mismatched = list(info.get("mismatched_keys", []))
    assert sorted(expect_missing) == missing, f"{name}: missing {missing}"
    assert not unexpected and not mismatched, f"{name}: unexpected {unexpected}, mismatched {mismatched}"
    worst = 0.0
    for item, ref in zip(items, raw):
        out = run(model, item["input_ids"], item["token_type_ids"])
        worst = max(worst, (out.last_hidden_state - ref.last_hidden_state).abs().max().item())
        if "pooler_output" in item:
            worst = max(worst, (out.pooler_output - ref.pooler_output).abs().max().item())
    assert worst == 0.0, f"{name}: reloaded model differs by {worst}"
    log(f"reload {name} {kwargs or ''}: {type(model).__name__}, missing {missing}, unexpected none, "
        f"outputs identical (max |diff| {worst})")
    return model


# ---------------------------------------------------------------- output

def dump(value, indent=0):
    """JSON with one matrix row / one key per line; number lists inline."""
    pad = " " * indent
    if isinstance(value, dict):
        inner = [f'{pad} {json.dumps(k)}: {dump(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(inner) + "\n" + pad + "}"
    if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        inner = [pad + " " + dump(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(inner) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- models

def make_bert(out_dir):
    folder = os.path.join(out_dir, "bert-bin")
    os.makedirs(folder, exist_ok=True)
    for stale in ("model.safetensors",):
        if os.path.exists(os.path.join(folder, stale)):
            os.remove(os.path.join(folder, stale))
    tok, v = build_tokenizer(BERT_SPECIALS, roberta=False)
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = BertConfig(
        vocab_size=len(v), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
        layer_norm_eps=1e-12, pad_token_id=v["[PAD]"], hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(SEED)
    model = BertModel(config, add_pooling_layer=True)
    randomise(model, SEED + 1)
    model.eval()
    state = float_state(model, "bert.")
    torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    write_config(config, os.path.join(folder, "config.json"), ["BertModel"])
    return folder, model, v, len(state)


def make_roberta(out_dir):
    folder = os.path.join(out_dir, "roberta")
    os.makedirs(folder, exist_ok=True)
    tok, v = build_tokenizer(ROBERTA_SPECIALS, roberta=True)
    assert v["<pad>"] == 1
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = XLMRobertaConfig(
        vocab_size=len(v), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", max_position_embeddings=MAX_TOKENS + 2, type_vocab_size=1,
        layer_norm_eps=1e-5, pad_token_id=v["<pad>"], bos_token_id=v["<s>"], eos_token_id=v["</s>"],
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(SEED + 2)
    model = XLMRobertaModel(config, add_pooling_layer=False)
    randomise(model, SEED + 3)
    model.eval()
    state = float_state(model, "")
    try:
        from safetensors.torch import save_file
    except ImportError:  # pragma: no cover - the venv has safetensors
        save_file = write_safetensors
    save_file(dict(state), os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    write_config(config, os.path.join(folder, "config.json"), ["XLMRobertaModel"])
    return folder, model, v, len(state)


def write_safetensors(tensors, path, metadata=None):
    """The safetensors format by hand (f32 only): u64 header length, JSON
    header, then the raw little-endian data."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for k in sorted(tensors):
        b = tensors[k].numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


# ---------------------------------------------------------------- main

def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "encoder", "tiny"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    os.makedirs(args.out, exist_ok=True)
    source = f"transformers {transformers.__version__} / torch {torch.__version__} / tokenizers " \
             f"{__import__('tokenizers').__version__}"

    reference = {}
    for name, make, roberta in (("bert-bin", make_bert, False), ("roberta", make_roberta, True)):
        folder, model, v, n_tensors = make(args.out)
        specials = ROBERTA_SPECIALS if roberta else BERT_SPECIALS
        weights = "model.safetensors" if roberta else "pytorch_model.bin"
        tokenizer_file = os.path.join(folder, "tokenizer.json")
        items, raw = reference_items(name, model, tokenizer_file, roberta)
        assert items[0]["num_tokens"] < BAKED_IN_LENGTH < items[1]["num_tokens"] < 60
        assert items[2]["truncated"] and items[2]["num_tokens"] == MAX_TOKENS

        # The baked-in padding / truncation really is in the file.
        baked = Tokenizer.from_file(tokenizer_file)
        assert baked.padding and baked.padding["length"] == BAKED_IN_LENGTH
        assert baked.truncation and baked.truncation["max_length"] == BAKED_IN_LENGTH
        assert all(len(baked.encode(s["text"]).ids) == BAKED_IN_LENGTH for s in SENTENCES)

        # Reload with transformers.
        if roberta:
            check_reload(name, folder, raw, items, add_pooling_layer=False)
            # Plain AutoModel builds a pooler the checkpoint lacks: random,
            # reported missing, last_hidden_state unaffected.
            check_reload(name + " (AutoModel default)", folder,
                         [type(r)(last_hidden_state=r.last_hidden_state) for r in raw],
                         [{k: x for k, x in it.items() if k != "pooler_output"} for it in items],
                         expect_missing=("pooler.dense.bias", "pooler.dense.weight"))
        else:
            loaded = check_reload(name, folder, raw, items)
            saved = torch.load(os.path.join(folder, "pytorch_model.bin"), weights_only=True)
            assert all(k.startswith("bert.") for k in saved), "a key without the bert. prefix"
            assert not any(k.endswith("position_ids") for k in saved)
            for k, t in loaded.state_dict().items():
                if t.is_floating_point():
                    assert torch.equal(t, saved["bert." + k]), k
            log(f"{name}: every reloaded tensor equals the saved bert.-prefixed one ({len(saved)} tensors)")
            assert not os.path.exists(os.path.join(folder, "model.safetensors"))

        c = model.config
        reference[name] = {
            "folder": name,
            "source": source,
            "model_class": type(model).__name__,
            "weights_file": weights,
            "weights_sha256": sha256(os.path.join(folder, weights)),
            "tokenizer_sha256": sha256(tokenizer_file),
            "num_tensors": n_tensors,
            "key_prefix": "" if roberta else "bert.",
            "model_type": c.model_type,
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "max_position_embeddings": c.max_position_embeddings,
            "position_offset": c.pad_token_id + 1 if roberta else 0,
            "max_tokens": MAX_TOKENS,
            "type_vocab_size": c.type_vocab_size,
            "layer_norm_eps": c.layer_norm_eps,
            "pad_token_id": c.pad_token_id,
            "special_tokens": {tok: v[tok] for tok in specials.values()},
            "has_pooler": not roberta,
            "tokenizer_json_padding": BAKED_IN_LENGTH,
            "tokenizer_json_truncation": BAKED_IN_LENGTH,
            "notes": "Random weights (seeded), float32, eval mode, eager attention, 1 thread. Each sentence on "
                     f"its own, no padding, truncated at max_tokens={MAX_TOKENS} (special tokens included), NOT at "
                     f"the {BAKED_IN_LENGTH} baked into tokenizer.json. mean = mean of last_hidden_state over all "
                     "tokens (special tokens included). "
                     + ("position_ids: as transformers' create_position_ids_from_input_ids made them "
                        "(pad_token_id + 1 + index). " if roberta else
                        "pooler_output = tanh(W * last_hidden_state[0] + b). ")
                     + f"Floats rounded to {SIGNIFICANT_DIGITS} significant digits.",
            "items": items,
        }

    path = os.path.join(args.out, "reference.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump(reference) + "\n")
    with open(path, encoding="utf-8") as f:
        assert set(json.load(f)) == {"bert-bin", "roberta"}

    total = 0
    for dirpath, _, files in sorted(os.walk(args.out)):
        for fn in sorted(files):
            p = os.path.join(dirpath, fn)
            total += os.path.getsize(p)
            log(f"wrote {os.path.relpath(p, root)} ({os.path.getsize(p)} bytes)")
    log(f"total {total} bytes ({total / 1024:.1f} KiB)")
    assert total < 300 * 1024


if __name__ == "__main__":
    main()
