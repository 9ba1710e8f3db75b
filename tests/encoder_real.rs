//! The encoder on the real models, against vectors PyTorch computed
//! (`scripts/reference-vectors.sh` wrote `tests/data/encoder/reference-*.json`
//! with transformers' `AutoModel`, one sentence at a time, no padding).
//! graft runs the same sentences as ONE padded batch of mixed lengths (7 to
//! 512 tokens), so padding, masking and truncation are exercised too.
//!
//! The models come from `scripts/fetch-models.sh` (run by `scripts/test.sh`).

use graft::encoder::{Batch, Encoder, Mode, Pooling, Sequence};
use serde::Deserialize;
use std::path::PathBuf;

/// Largest difference allowed per vector component (the bound).
const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    model_sha256: String,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    text: String,
    input_ids: Vec<u32>,
    truncated: bool,
    mean: Vec<f32>,
    cls: Vec<f32>,
    #[serde(default)]
    pooler: Option<Vec<f32>>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(model: &str) -> (Encoder, Reference) {
    let dir = root().join("models").join(model);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run scripts/fetch-models.sh",
        dir.display()
    );
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(root().join(format!("tests/data/encoder/reference-{model}.json")))
            .unwrap(),
    )
    .unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let sha = sha256_hex(&weights);
    assert_eq!(
        sha, reference.model_sha256,
        "{model}: the weights differ from those the references were made with"
    );
    (Encoder::load(&dir).unwrap(), reference)
}

fn sha256_hex(bytes: &[u8]) -> String {
    // `sha256sum` is on every machine this runs on; no hashing crate needed for a test.
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_model(model: &str) {
    let (encoder, reference) = load(model);
    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    let tokenized = encoder.tokenizer().encode(&texts).unwrap();
    for (item, t) in reference.items.iter().zip(&tokenized) {
        assert_eq!(t.ids, item.input_ids, "{model} {}: token ids", item.id);
        assert_eq!(
            t.truncated, item.truncated,
            "{model} {}: truncation",
            item.id
        );
    }
    assert!(
        reference.items.iter().any(|i| i.truncated),
        "the set exercises truncation"
    );
    let mut poolings = vec![(Pooling::Mean, "mean"), (Pooling::Cls, "cls")];
    if encoder.model().has_pooler() {
        poolings.push((Pooling::Pooler, "pooler"));
    }
    let mut worst = 0f32;
    for (pooling, name) in poolings {
        let out = encoder.embed(&texts, pooling, false).unwrap();
        assert_eq!(out.dim, 384);
        for (item, (got, truncated)) in reference
            .items
            .iter()
            .zip(out.vectors.iter().zip(&out.truncated))
        {
            assert_eq!(*truncated, item.truncated);
            let want = match pooling {
                Pooling::Mean => &item.mean,
                Pooling::Cls => &item.cls,
                Pooling::Pooler => item.pooler.as_ref().expect("pooler reference"),
            };
            let diff = max_abs_diff(got, want);
            worst = worst.max(diff);
            assert!(
                diff <= TOLERANCE,
                "{model} {} {name}: max-abs difference {diff:e} > {TOLERANCE:e}",
                item.id
            );
        }
    }
    eprintln!("{model}: largest difference from PyTorch {worst:e}");
    let normalized = encoder.embed(&texts[..2], Pooling::Mean, true).unwrap();
    for v in &normalized.vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "normalised vector has norm {norm}"
        );
    }
}

#[test]
fn minilm_matches_pytorch() {
    check_model("all-MiniLM-L6-v2");
}

#[test]
fn multilingual_e5_matches_pytorch() {
    check_model("multilingual-e5-small");
}

#[test]
fn e5_links_a_question_across_languages() {
    let (encoder, _) = load("multilingual-e5-small");
    let out = encoder
        .embed(
            &[
                "query: How do I reset my password?",
                "query: 如何重置我的密码？",
                "query: 今天股市大跌",
            ],
            Pooling::Mean,
            true,
        )
        .unwrap();
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let same = cos(&out.vectors[0], &out.vectors[1]);
    let other = cos(&out.vectors[0], &out.vectors[2]);
    assert!(same > 0.85, "translation pair cosine {same}");
    assert!(
        same > other + 0.05,
        "translation {same} vs unrelated {other}"
    );
}

/// The 3-D attention path (a `[batch, seq, seq]` visible matrix) with every
/// token visible gives exactly the plain padding-mask path's numbers.
#[test]
fn all_visible_matrix_equals_the_plain_path_exactly() {
    let (encoder, reference) = load("all-MiniLM-L6-v2");
    let texts: Vec<&str> = reference
        .items
        .iter()
        .take(6)
        .map(|i| i.text.as_str())
        .collect();
    let sequences: Vec<Sequence> = encoder
        .tokenizer()
        .encode(&texts)
        .unwrap()
        .into_iter()
        .map(|t| Sequence::plain(t.ids))
        .collect();
    let config = encoder.config();
    let plain = Batch::new(&sequences, config).unwrap();
    assert_eq!(
        plain.attention_bias.dims()[1],
        1,
        "plain batches use the padding mask"
    );
    let full = Batch::new_with_full_mask(&sequences, config).unwrap();
    assert_eq!(full.attention_bias.dims()[1], full.attention_bias.dims()[2]);
    let with_matrices: Vec<Sequence> = sequences
        .iter()
        .map(|s| Sequence {
            visible: Some(vec![true; s.len() * s.len()]),
            ..s.clone()
        })
        .collect();
    let explicit = Batch::new(&with_matrices, config).unwrap();
    let a = encoder.model().forward(&plain, Mode::Infer).unwrap();
    let b = encoder.model().forward(&full, Mode::Infer).unwrap();
    let c = encoder.model().forward(&explicit, Mode::Infer).unwrap();
    let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&a), flat(&b));
    assert_eq!(flat(&a), flat(&c));
}

/// The fused inference kernels (gemm straight into biased buffers, fused
/// attention over the real tokens only, fused add + layer norm) agree with the
/// plain tensor path that training uses.
#[test]
fn fused_kernels_agree_with_the_tensor_path() {
    let (encoder, reference) = load("all-MiniLM-L6-v2");
    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    let sequences: Vec<Sequence> = encoder
        .tokenizer()
        .encode(&texts)
        .unwrap()
        .into_iter()
        .map(|t| Sequence::plain(t.ids))
        .collect();
    let batch = Batch::new(&sequences, encoder.config()).unwrap();
    let fused = encoder.model().forward(&batch, Mode::Infer).unwrap();
    let plain = encoder.model().forward_unfused(&batch).unwrap();
    let real = |t: &candle_core::Tensor, b: usize, len: usize| {
        t.get(b)
            .unwrap()
            .narrow(0, 0, len)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    for (b, len) in batch.lengths.iter().enumerate() {
        let (f, p) = (real(&fused, b, *len), real(&plain, b, *len));
        let diff = max_abs_diff(&f, &p);
        assert!(
            diff < 2e-5,
            "sequence {b}: fused and plain paths differ by {diff}"
        );
    }
}

/// A visible matrix changes what a token sees: hiding an appended branch
/// from the sentence leaves the sentence's own tokens exactly as without the
/// branch (K-BERT's point), while a fully visible branch changes them.
#[test]
fn a_hidden_branch_does_not_disturb_the_sentence() {
    let (encoder, _) = load("all-MiniLM-L6-v2");
    let tok = encoder.tokenizer();
    let sentence = tok.encode(&["Apple shares fell"]).unwrap().remove(0).ids; // [CLS] .. [SEP]
    let branch = tok.encode_piece("company in california").unwrap().ids;
    let n = sentence.len();
    let m = branch.len();
    let mut ids = sentence.clone();
    ids.extend(&branch);
    // Positions: the branch continues from "apple" (position 1).
    let mut positions: Vec<u32> = (0..n as u32).collect();
    positions.extend((0..m as u32).map(|i| 2 + i));
    let len = n + m;
    let mut visible = vec![false; len * len];
    for i in 0..len {
        for j in 0..len {
            let (bi, bj) = (i >= n, j >= n);
            // Sentence tokens see the sentence; branch tokens see each other and "apple".
            visible[i * len + j] = bi == bj || (bi && j == 1) || (i == 1 && bj);
        }
    }
    let hidden_visible: Vec<bool> = (0..len * len)
        .map(|k| {
            let (i, j) = (k / len, k % len);
            visible[k] && !(i < n && j >= n)
        })
        .collect();
    let run = |visible: Option<Vec<bool>>, ids: Vec<u32>, positions: Option<Vec<u32>>| {
        let s = Sequence {
            token_type_ids: vec![0; ids.len()],
            input_ids: ids,
            position_ids: positions,
            visible,
        };
        let batch = Batch::new(&[s], encoder.config()).unwrap();
        encoder
            .model()
            .forward(&batch, Mode::Infer)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    };
    let alone = run(None, sentence.clone(), None);
    let hidden = run(Some(hidden_visible), ids.clone(), Some(positions.clone()));
    let seen = run(Some(visible), ids, Some(positions));
    for i in 0..n {
        assert!(
            max_abs_diff(&alone[i], &hidden[i]) < 1e-5,
            "token {i} changed although the branch is hidden"
        );
    }
    assert!(
        max_abs_diff(&alone[1], &seen[1]) > 1e-3,
        "a visible branch must change its entity's vector"
    );
}
