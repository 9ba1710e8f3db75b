//! Loading and plumbing on two tiny random checkpoints that transformers
//! wrote (`scripts/encoder/tiny_models.py`): a BERT saved as PyTorch
//! `pytorch_model.bin` with a `bert.` prefix, and an XLM-RoBERTa (positions
//! offset by `pad_token_id + 1`, one token type, ε = 1e-5) in safetensors.
//! Both tokenizer.json files pad and truncate to 16, which graft must undo.
//! Then every bad model folder and bad input the encoder issue lists.

use graft::encoder::{Batch, Encoder, EncoderError, Mode, Pooling, Sequence};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Model {
    items: Vec<Item>,
    has_pooler: bool,
    num_tensors: usize,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    text: String,
    input_ids: Vec<u32>,
    truncated: bool,
    mean: Vec<f32>,
    last_hidden_state: Vec<Vec<f32>>,
    #[serde(default)]
    pooler_output: Option<Vec<f32>>,
}

fn tiny(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/encoder/tiny")
        .join(name)
}

fn reference(name: &str) -> Model {
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny("reference.json")).unwrap()).unwrap();
    serde_json::from_value(all[name].clone()).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(name: &str) {
    let model = reference(name);
    let encoder = Encoder::load(&tiny(name)).unwrap();
    assert_eq!(encoder.model().has_pooler(), model.has_pooler);
    let texts: Vec<&str> = model.items.iter().map(|i| i.text.as_str()).collect();
    let tokenized = encoder.tokenizer().encode(&texts).unwrap();
    assert!(model.items.iter().any(|i| i.truncated));
    for (item, t) in model.items.iter().zip(&tokenized) {
        assert_eq!(
            t.ids, item.input_ids,
            "{name} {}: the tokenizer's own padding/truncation must be off",
            item.id
        );
        assert_eq!(t.truncated, item.truncated);
    }
    // All sentences in one padded batch, hidden states token by token.
    let sequences: Vec<Sequence> = tokenized
        .iter()
        .map(|t| Sequence {
            input_ids: t.ids.clone(),
            token_type_ids: t.type_ids.clone(),
            position_ids: None,
            visible: None,
        })
        .collect();
    let batch = Batch::new(&sequences, encoder.config()).unwrap();
    for hidden in [
        encoder.model().forward(&batch, Mode::Infer).unwrap(),
        encoder.model().forward_unfused(&batch).unwrap(),
    ] {
        for (b, item) in model.items.iter().enumerate() {
            for (i, want) in item.last_hidden_state.iter().enumerate() {
                let got = hidden
                    .get(b)
                    .unwrap()
                    .get(i)
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let diff = max_abs_diff(&got, want);
                assert!(diff < 1e-5, "{name} {} token {i}: {diff}", item.id);
            }
        }
    }
    let mean = encoder.embed(&texts, Pooling::Mean, false).unwrap();
    for (item, got) in model.items.iter().zip(&mean.vectors) {
        assert!(max_abs_diff(got, &item.mean) < 1e-5);
    }
    if model.has_pooler {
        let pooled = encoder.embed(&texts, Pooling::Pooler, false).unwrap();
        for (item, got) in model.items.iter().zip(&pooled.vectors) {
            assert!(max_abs_diff(got, item.pooler_output.as_ref().unwrap()) < 1e-5);
        }
    }
}

#[test]
fn bert_from_pytorch_bin_with_prefix_matches_transformers() {
    check("bert-bin");
    // Every tensor of the checkpoint came through (39 with the pooler).
    let (encoder, _) = Encoder::load_with_weights(&tiny("bert-bin"), true).unwrap();
    assert_eq!(
        encoder.model().vars().len(),
        reference("bert-bin").num_tensors
    );
}

#[test]
fn xlm_roberta_positions_are_offset_like_transformers() {
    check("roberta");
    let encoder = Encoder::load(&tiny("roberta")).unwrap();
    assert_eq!(encoder.config().position_offset(), 2);
    assert_eq!(encoder.config().max_tokens(), 64);
}

/// A copy of a tiny model folder to break.
fn copy(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(tiny(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

fn edit_config(dir: &Path, f: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

fn load_err(dir: &Path) -> EncoderError {
    Encoder::load(dir).expect_err("the folder must be refused")
}

#[test]
fn missing_files_are_named() {
    for (file, folder) in [
        ("config.json", "roberta"),
        ("tokenizer.json", "roberta"),
        ("model.safetensors", "roberta"),
        ("pytorch_model.bin", "bert-bin"),
    ] {
        let dir = copy(folder);
        std::fs::remove_file(dir.path().join(file)).unwrap();
        let e = load_err(dir.path());
        assert!(matches!(e, EncoderError::MissingFile { .. }), "{file}: {e}");
        let expected = if file == "pytorch_model.bin" {
            "model.safetensors"
        } else {
            file
        };
        assert!(e.to_string().contains(expected), "{file}: {e}");
    }
    assert!(matches!(
        load_err(Path::new("/nonexistent/model")),
        EncoderError::MissingFile { .. }
    ));
}

#[test]
fn corrupt_and_truncated_weights_are_refused() {
    let dir = copy("roberta");
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(dir.path());
    assert!(matches!(e, EncoderError::Weights { .. }), "truncated: {e}");
    assert!(e.to_string().contains("model.safetensors"));

    std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    assert!(matches!(load_err(dir.path()), EncoderError::Weights { .. }));

    let dir = copy("bert-bin");
    let path = dir.path().join("pytorch_model.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let e = load_err(dir.path());
    assert!(
        matches!(e, EncoderError::Weights { .. }),
        "truncated .bin: {e}"
    );
}

#[test]
fn bad_configs_get_clear_errors() {
    let dir = copy("roberta");
    edit_config(dir.path(), |v| v["hidden_act"] = "swishy".into());
    let e = load_err(dir.path());
    assert!(
        matches!(e, EncoderError::UnknownActivation { ref found } if found == "swishy"),
        "{e}"
    );

    let dir = copy("roberta");
    edit_config(dir.path(), |v| v["model_type"] = "gpt2".into());
    assert!(matches!(
        load_err(dir.path()),
        EncoderError::UnsupportedArchitecture { .. }
    ));

    let dir = copy("bert-bin");
    edit_config(dir.path(), |v| v["intermediate_size"] = 48.into());
    let e = load_err(dir.path());
    match &e {
        EncoderError::ShapeMismatch {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "bert.encoder.layer.0.intermediate.dense.weight");
            assert_eq!(
                (expected.as_slice(), found.as_slice()),
                (&[48, 32][..], &[64, 32][..])
            );
        }
        other => panic!("expected a shape mismatch, got {other}"),
    }

    let dir = copy("roberta");
    edit_config(dir.path(), |v| v["num_hidden_layers"] = 3.into());
    let e = load_err(dir.path());
    assert!(
        matches!(&e, EncoderError::MissingTensor { name } if name == "encoder.layer.2.attention.self.query.weight"),
        "{e}"
    );

    let dir = copy("roberta");
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": \"bert\"").unwrap();
    assert!(matches!(load_err(dir.path()), EncoderError::Config { .. }));

    let dir = copy("roberta");
    std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    assert!(matches!(load_err(dir.path()), EncoderError::Tokenizer(_)));
}

#[test]
fn bad_inputs_get_clear_errors() {
    let mut encoder = Encoder::load(&tiny("roberta")).unwrap();
    assert!(matches!(
        encoder.embed(&[], Pooling::Mean, false),
        Err(EncoderError::EmptyInput)
    ));
    assert!(matches!(
        encoder.embed(&["hello", " \n"], Pooling::Mean, false),
        Err(EncoderError::EmptyText { index: 1 })
    ));
    let e = encoder
        .embed(&["hello"], Pooling::Pooler, false)
        .unwrap_err();
    assert!(e.to_string().contains("no pooler"), "{e}");
    assert!(matches!(
        encoder.set_max_tokens(65),
        Err(EncoderError::MaxLength { limit: 64, .. })
    ));
    encoder.set_max_tokens(8).unwrap();
    let out = encoder
        .embed(
            &["the dog sat in the park with the cat again"],
            Pooling::Mean,
            false,
        )
        .unwrap();
    assert_eq!((out.tokens[0], out.truncated[0]), (8, true));

    let config = encoder.config();
    let bad = |s: Sequence| Batch::new(&[s], config).unwrap_err().to_string();
    assert!(bad(Sequence::plain(vec![0, 999, 2])).contains("outside the vocabulary"));
    assert!(bad(Sequence::plain(vec![])).contains("no tokens"));
    assert!(bad(Sequence::plain(vec![0; 65])).contains("65 tokens"));
    assert!(bad(Sequence {
        visible: Some(vec![true; 5]),
        ..Sequence::plain(vec![0, 5, 2])
    })
    .contains("visible matrix"));
    assert!(bad(Sequence {
        position_ids: Some(vec![0, 1, 64]),
        ..Sequence::plain(vec![0, 5, 2])
    })
    .contains("position 64"));
    assert!(bad(Sequence {
        token_type_ids: vec![0, 1, 0],
        ..Sequence::plain(vec![0, 5, 2])
    })
    .contains("token type 1"));
    assert!(matches!(
        Batch::new(&[], config),
        Err(EncoderError::EmptyInput)
    ));
}

/// Many texts are split into bounded passes; the answer keeps the order.
#[test]
fn many_texts_keep_their_order_across_passes() {
    let encoder = Encoder::load(&tiny("bert-bin")).unwrap();
    let words = [
        "dog",
        "cat",
        "the red ball",
        "a small garden in the park",
        "sun",
    ];
    let texts: Vec<String> = (0..100)
        .map(|i| words[i % words.len()].repeat(1 + i % 3))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let all = encoder.embed(&refs, Pooling::Cls, false).unwrap();
    for i in [0, 37, 99] {
        let one = encoder.embed(&refs[i..=i], Pooling::Cls, false).unwrap();
        assert!(
            max_abs_diff(&all.vectors[i], &one.vectors[0]) < 1e-5,
            "text {i}"
        );
    }
}

/// Fine-tuning only the top layers splits the forward pass in two: the
/// lower part once per input (unpadded, then re-padded with zeros), the top
/// part per step. The two halves must give the whole pass, with padding and
/// K-BERT visible matrices, loaded for inference (fused) or for training.
#[test]
fn bottom_then_top_layers_equal_the_whole_pass() {
    let dir = tiny("bert-bin");
    let encoder = Encoder::load(&dir).unwrap();
    let (trainable, _) = Encoder::load_with_weights(&dir, true).unwrap();
    let tokens = encoder
        .tokenizer()
        .encode(&["the red dog walked in the park", "a cat"])
        .unwrap();
    let long = Sequence::plain(tokens[0].ids.clone());
    // A branch: tokens 3..5 see only each other and token 2.
    let mut tree = Sequence::plain(tokens[1].ids.clone());
    let n = tree.len();
    tree.visible = Some(
        (0..n * n)
            .map(|c| {
                let (i, j) = (c / n, c % n);
                let branch = |k: usize| (3..5).contains(&k);
                branch(i) == branch(j) || (branch(i) && j == 2) || (branch(j) && i == 2)
            })
            .collect(),
    );
    let seqs = [long, tree];
    let batch = Batch::new(&seqs, encoder.config()).unwrap();
    let layers = encoder.config().num_layers;
    for (name, model) in [("fused", &encoder), ("trainable", &trainable)] {
        let whole = model.model().forward(&batch, Mode::Infer).unwrap();
        for k in 0..=layers {
            let bottom = model.model().forward_bottom(&batch, k).unwrap();
            // Padded rows hold garbage after the bottom; zero them as the
            // trainer does.
            let zeroed = bottom
                .broadcast_mul(&batch.padding_mask.unsqueeze(2).unwrap())
                .unwrap();
            let top = model
                .model()
                .forward_top(&zeroed, &batch, k, Mode::Infer)
                .unwrap();
            for (b, s) in seqs.iter().enumerate() {
                let want = whole.get(b).unwrap().narrow(0, 0, s.len()).unwrap();
                let got = top.get(b).unwrap().narrow(0, 0, s.len()).unwrap();
                let d = max_abs_diff(
                    &want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    &got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                );
                assert!(
                    d < 1e-5,
                    "{name}, split after {k} layers, sequence {b}: {d}"
                );
            }
        }
    }
    let wrong = encoder
        .model()
        .forward_bottom(&batch, 1)
        .unwrap()
        .narrow(1, 0, 3)
        .unwrap();
    assert!(matches!(
        encoder.model().forward_top(&wrong, &batch, 1, Mode::Infer),
        Err(EncoderError::Input(_))
    ));
}
