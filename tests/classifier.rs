//! `graft train`, `graft eval` and `graft classify` end to end on the tiny
//! test encoder (plumbing: determinism, the saved folder, facts from a real
//! graph), and every bad training file and bad model folder the issue lists.

mod common;
use common::*;
use graft::classifier::data::{self, DataError};
use graft::classifier::train::{train, Progress, TrainOptions};
use graft::classifier::{Classifier, ClassifierError, DataFormat};
use graft::encoder::Pooling;
use graft::fusion::{FusionLimits, FusionMode};
use std::path::{Path, PathBuf};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoder/tiny/bert-bin")
}

/// A small learnable set in the tiny model's vocabulary: animals vs places.
fn write_set(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let animals = [
        "the dog sat",
        "a cat slept",
        "the red dog walked",
        "the old cat sat",
        "dogs play",
        "the small cat",
    ];
    let places = [
        "the park",
        "a garden near home",
        "the old park",
        "home again",
        "the quiet garden",
        "a park near the tree",
    ];
    let mut lines = Vec::new();
    for (i, (a, p)) in animals.iter().zip(places.iter()).enumerate() {
        lines.push(serde_json::json!({"text": format!("{a} {i}"), "label": "animal"}).to_string());
        lines.push(serde_json::json!({"text": format!("{p} {i}"), "label": "place"}).to_string());
    }
    let (train, dev, test) = (
        dir.join("train.jsonl"),
        dir.join("dev.jsonl"),
        dir.join("test.jsonl"),
    );
    std::fs::write(&train, lines.join("\n")).unwrap();
    std::fs::write(&dev, lines[..6].join("\n")).unwrap();
    std::fs::write(&test, lines[6..].join("\n")).unwrap();
    (train, dev, test)
}

fn train_args<'a>(
    train: &'a Path,
    dev: &'a Path,
    out: &'a Path,
    model: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--train",
        train.to_str().unwrap(),
        "--dev",
        dev.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        // The tiny model has 64 positions.
        "--max-len",
        "48",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn frozen_training_is_deterministic_and_the_folder_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, test) = write_set(tmp.path());
    let model = tiny();
    let run = |out: &str| {
        let out = tmp.path().join(out);
        let args = train_args(
            &train,
            &dev,
            &out,
            &model,
            &[
                "--fusion",
                "none",
                "--freeze-encoder",
                "--epochs",
                "8",
                "--seed",
                "7",
            ],
        );
        let stdout = graft_ok(tmp.path(), &args);
        (out, stdout)
    };
    let (a, metrics_a) = run("a");
    let (b, metrics_b) = run("b");
    assert_eq!(metrics_a, metrics_b, "same seed, same metrics");
    assert_eq!(
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
        "same seed, same weights"
    );
    let classifier = Classifier::load(&a).unwrap();
    assert_eq!(classifier.card.labels, vec!["animal", "place"]);
    let epochs = classifier.card.history.len();
    assert!((1..=8).contains(&epochs), "{epochs} epochs recorded");
    assert!(
        classifier.card.training["data"]["train"]["sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );

    // A model trained without facts reads no graph: the data directory
    // given is neither created nor locked.
    let no_store = tmp.path().join("no-store");
    let out = graft_ok(
        &no_store,
        &["classify", "--model", a.to_str().unwrap(), "the dog sat"],
    );
    assert!(
        !no_store.exists(),
        "graft classify made {}",
        no_store.display()
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ranking = v["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 2);
    let sum: f64 = ranking.iter().map(|r| r["score"].as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "softmax scores sum to 1");

    let report = tmp.path().join("report.json");
    let md = graft_ok(
        tmp.path(),
        &[
            "eval",
            "--model",
            a.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(md.contains("| label | precision | recall | F1 | support |"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["metrics"]["examples"], 6);
    let svg = std::fs::read_to_string(report.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Confusion matrix"));
    assert!(report.with_extension("md").is_file());
}

/// Trains the tiny model twice with the same flags into `a` and `b`, checks
/// that both runs wrote the same weights (everything is seeded) and returns
/// `a`.
fn train_twice(tmp: &Path, train: &Path, dev: &Path, extra: &[&str]) -> PathBuf {
    let model = tiny();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    for out in [&a, &b] {
        graft_ok(tmp, &train_args(train, dev, out, &model, extra));
    }
    assert_eq!(
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
        "same seed, same weights"
    );
    a
}

/// How far each encoder tensor of a trained folder moved from the tiny
/// base model: the largest absolute difference, by name.
fn moved(trained: &Path) -> std::collections::HashMap<String, f32> {
    let trained = candle_core::safetensors::load(
        trained.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let base = candle_core::pickle::read_all(tiny().join("pytorch_model.bin")).unwrap();
    base.iter()
        .filter_map(|(name, before)| {
            let name = name.strip_prefix("bert.").unwrap_or(name);
            let after = trained.get(name)?;
            let diff = (after - before)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            Some((name.to_string(), diff))
        })
        .collect()
}

#[test]
fn full_fine_tuning_moves_the_encoder_and_is_repeatable() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    let a = train_twice(
        tmp.path(),
        &train,
        &dev,
        &[
            "--fusion",
            "none",
            "--epochs",
            "2",
            "--lr",
            "1e-3",
            "--batch-size",
            "4",
        ],
    );
    let moved = moved(&a)["encoder.layer.0.attention.self.query.weight"];
    assert!(
        moved > 1e-6,
        "the encoder's weights must change in full fine-tuning"
    );
    let c = Classifier::load(&a).unwrap();
    assert!(!c.card.encoder.frozen);
}

#[test]
fn top_layer_fine_tuning_moves_only_the_top_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    let model = tiny();
    // The test split is the dev split: the dev scores (through the cached
    // lower layer) and the test scores (the saved folder, the whole forward
    // pass) must agree.
    let a = train_twice(
        tmp.path(),
        &train,
        &dev,
        &[
            "--fusion",
            "none",
            "--train-layers",
            "1",
            "--group-by-length",
            "--epochs",
            "3",
            "--lr",
            "1e-3",
            "--batch-size",
            "4",
            "--test",
            dev.to_str().unwrap(),
        ],
    );
    let mut moved_top = 0;
    for (name, diff) in moved(&a) {
        if name.starts_with("encoder.layer.1.") {
            moved_top += usize::from(diff > 1e-6);
        } else {
            assert_eq!(
                diff, 0.0,
                "{name} is below the trained layers and must not move"
            );
        }
    }
    assert!(
        moved_top >= 12,
        "the top layer's parameters train ({moved_top} moved)"
    );
    let c = Classifier::load(&a).unwrap();
    assert!(!c.card.encoder.frozen);
    assert_eq!(c.card.training["train_layers"], 1);
    assert_eq!(c.card.training["group_by_length"], true);
    let m = &c.card.metrics;
    assert_eq!(m["dev"]["accuracy"], m["test"]["accuracy"], "{m}");
    assert_eq!(m["dev"]["macro_avg"], m["test"]["macro_avg"], "{m}");

    // Every layer (2 of 2): the layers train, the embeddings do not.
    let all = tmp.path().join("all");
    graft_ok(
        tmp.path(),
        &train_args(
            &train,
            &dev,
            &all,
            &model,
            &["--fusion", "none", "--train-layers", "2", "--lr", "1e-3"],
        ),
    );
    let moved_all = moved(&all);
    for (name, diff) in &moved_all {
        if name.starts_with("embeddings.") {
            assert_eq!(*diff, 0.0, "{name}: the embeddings stay frozen");
        }
    }
    for layer in ["encoder.layer.0.", "encoder.layer.1."] {
        assert!(
            moved_all
                .iter()
                .any(|(name, diff)| name.starts_with(layer) && *diff > 1e-6),
            "{layer} trains"
        );
    }

    // Layer-wise learning-rate decay, every weight trained: with ξ tiny the
    // layers below the top and the embeddings stay (almost) where they
    // were, the top layer trains at the full rate.
    let decayed = tmp.path().join("decayed");
    graft_ok(
        tmp.path(),
        &train_args(
            &train,
            &dev,
            &decayed,
            &model,
            &[
                "--fusion",
                "none",
                "--lr",
                "1e-3",
                "--layer-lr-decay",
                "1e-6",
                "--label-smoothing",
                "0.1",
            ],
        ),
    );
    let moved_decayed = moved(&decayed);
    for (name, diff) in &moved_decayed {
        if name.starts_with("embeddings.") || name.starts_with("encoder.layer.0.") {
            assert!(
                *diff < 1e-6,
                "{name} trains at ξ or ξ² of the rate: moved {diff}"
            );
        }
    }
    assert!(
        moved_decayed
            .iter()
            .any(|(name, diff)| name.starts_with("encoder.layer.1.") && *diff > 1e-5),
        "the top layer trains at the full rate"
    );
    let card = Classifier::load(&decayed).unwrap().card;
    assert_eq!(card.training["layer_lr_decay"], 1e-6);
    assert_eq!(card.training["label_smoothing"], 0.1);

    // Bad values: no such layer count, and not with a frozen encoder.
    let out = tmp.path().join("bad");
    for (extra, expect) in [
        (vec!["--train-layers", "0"], "give 1 to 2"),
        (vec!["--train-layers", "3"], "has 2 layers"),
        (
            vec!["--train-layers", "1", "--freeze-encoder"],
            "cannot be used with",
        ),
        (vec!["--train-layers", "two"], "invalid value"),
        (vec!["--layer-lr-decay", "0"], "--layer-lr-decay 0"),
        (
            vec!["--layer-lr-decay", "1.5"],
            "give a factor above 0 and at most 1",
        ),
        (vec!["--layer-lr-decay", "NaN"], "--layer-lr-decay NaN"),
        (
            vec!["--label-smoothing", "1"],
            "--label-smoothing 1: give a value",
        ),
        (
            vec!["--label-smoothing=-0.1"],
            "--label-smoothing -0.1: give a value",
        ),
        (
            vec!["--label-smoothing", "NaN"],
            "--label-smoothing NaN: give a value",
        ),
    ] {
        let mut args = train_args(&train, &dev, &out, &model, &["--fusion", "none"]);
        args.extend(extra.iter().copied());
        let r = graft(tmp.path(), &args);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success() && stderr.contains(expect) && !stderr.contains("panicked"),
            "{extra:?}: {stderr}"
        );
        assert!(!out.exists(), "{extra:?}: nothing written");
    }
}

#[test]
fn kbert_injects_facts_from_the_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/customer-service.ttl");
    graft_ok(
        tmp.path(),
        &[
            "graph",
            "load",
            "--graph",
            "https://w3id.org/graft/graph/customer-service",
            cs.to_str().unwrap(),
        ],
    );
    let texts = [
        ("my Aurora Phone 12 will not start", "technical"),
        ("the Lumen Buds Pro sound is broken", "technical"),
        ("where is my express delivery", "shipping"),
        ("the delivery of my order is late", "shipping"),
        ("Aurora Book 14 screen went dark", "technical"),
        ("my order has not arrived", "shipping"),
    ];
    let lines: Vec<String> = texts
        .iter()
        .map(|(t, l)| serde_json::json!({"text": t, "label": l}).to_string())
        .collect();
    let train = tmp.path().join("train.jsonl");
    std::fs::write(&train, lines.join("\n")).unwrap();
    let out = tmp.path().join("kbert");
    let model = tiny();
    let args = train_args(
        &train,
        &train,
        &out,
        &model,
        &["--fusion", "kbert", "--freeze-encoder", "--epochs", "2"],
    );
    graft_ok(tmp.path(), &args);
    let c = Classifier::load(&out).unwrap();
    let graph = c.card.graph.as_ref().expect("graph recorded");
    assert!(
        graph.coverage > 0.5,
        "most texts name a product or delivery: coverage {}",
        graph.coverage
    );
    assert!(graph.generation > 0);
    let v: serde_json::Value = serde_json::from_str(&graft_ok(
        tmp.path(),
        &[
            "classify",
            "--model",
            out.to_str().unwrap(),
            "my Aurora Phone 12 is broken",
        ],
    ))
    .unwrap();
    assert!(!v["entities"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        !v["facts"].as_array().unwrap().is_empty(),
        "facts were injected: {v}"
    );
    let plain: serde_json::Value = serde_json::from_str(&graft_ok(
        tmp.path(),
        &[
            "classify",
            "--model",
            out.to_str().unwrap(),
            "--no-graph",
            "my Aurora Phone 12 is broken",
        ],
    ))
    .unwrap();
    assert!(plain["facts"].as_array().unwrap().is_empty());
}

fn read_err(name: &str, content: &[u8]) -> DataError {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(name);
    std::fs::write(&path, content).unwrap();
    data::read_examples(&path, &DataFormat::default()).expect_err("must be refused")
}

#[test]
fn bad_training_files_name_the_file_and_line() {
    let e = read_err(
        "a.jsonl",
        b"{\"text\": \"fine\", \"label\": \"x\"}\n{\"body\": \"no text\", \"label\": \"x\"}\n",
    );
    assert!(
        matches!(&e, DataError::MissingColumn { line: 2, column, .. } if column == "text"),
        "{e}"
    );
    assert!(e.to_string().contains("a.jsonl line 2"));

    let e = read_err("a.csv", b"text,category\nhello,x\n");
    assert!(
        matches!(&e, DataError::MissingColumn { column, .. } if column == "label"),
        "{e}"
    );

    let e = read_err("a.tsv", b"text\tlabel\nhello\tx\n \ty\n");
    assert!(matches!(e, DataError::EmptyText { line: 3, .. }), "{e}");

    let e = read_err(
        "a.jsonl",
        b"{\"text\": \"ok\", \"label\": \"x\"}\n{\"text\": \"caf\xe9\", \"label\": \"x\"}\n",
    );
    assert!(matches!(e, DataError::NotUtf8 { line: 2, .. }), "{e}");

    let e = read_err(
        "a.jsonl",
        b"{\"text\": \"ok\", \"label\": \"x\"}\nnot json\n",
    );
    assert!(matches!(e, DataError::Malformed { line: 2, .. }), "{e}");

    let e = read_err("a.xml", b"<x/>");
    assert!(matches!(e, DataError::UnknownFormat { .. }));

    let e = read_err("a.jsonl", b"\n\n");
    assert!(matches!(e, DataError::Empty { .. }));

    // A 100 MB line is refused after 1 MiB, not read whole.
    let mut huge = b"{\"text\": \"".to_vec();
    huge.resize(100 << 20, b'a');
    huge.extend_from_slice(b"\", \"label\": \"x\"}\n");
    let e = read_err("a.jsonl", &huge);
    assert!(matches!(e, DataError::LineTooLong { line: 1, .. }), "{e}");
}

#[test]
fn label_problems_are_refused() {
    let p = Path::new("train.jsonl");
    let ex = |label: &str, line| data::Example {
        text: "t".into(),
        labels: vec![label.into()],
        line,
    };
    let one_class = vec![ex("a", 1), ex("a", 2)];
    assert!(matches!(
        data::label_set(p, &one_class, 1),
        Err(DataError::OneClass { .. })
    ));
    let rare = vec![ex("a", 1), ex("a", 2), ex("b", 3)];
    let e = data::label_set(p, &rare, 2).unwrap_err();
    assert!(
        matches!(&e, DataError::RareLabel { label, count: 1, .. } if label == "b"),
        "{e}"
    );
    assert_eq!(data::label_set(p, &rare, 1).unwrap(), vec!["a", "b"]);
    let e = data::check_known(
        Path::new("dev.jsonl"),
        &[ex("a", 1), ex("zzz", 2)],
        &["a".into(), "b".into()],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("dev.jsonl line 2") && e.to_string().contains("zzz"),
        "{e}"
    );

    // Multi-label: a JSON list, or a separator in CSV.
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("m.csv");
    std::fs::write(&csv, "text,label\n\"hello, world\",a|b\n").unwrap();
    let format = DataFormat {
        label_separator: Some("|".into()),
        ..DataFormat::default()
    };
    let read = data::read_examples(&csv, &format).unwrap();
    assert_eq!(read[0].text, "hello, world");
    assert_eq!(read[0].labels, vec!["a", "b"]);
}

#[test]
fn cli_reports_bad_data_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, _, _) = write_set(tmp.path());
    let dev = tmp.path().join("bad-dev.jsonl");
    std::fs::write(&dev, "{\"text\": \"the cat\", \"label\": \"vehicle\"}\n").unwrap();
    let out = tmp.path().join("m");
    let model = tiny();
    let r = graft(
        tmp.path(),
        &train_args(
            &train,
            &dev,
            &out,
            &model,
            &["--fusion", "none", "--freeze-encoder"],
        ),
    );
    assert!(!r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("bad-dev.jsonl line 1") && stderr.contains("vehicle"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    assert!(!out.exists(), "nothing written for a refused run");

    let dev = tmp.path().join("dev.jsonl");
    let fails = |args: Vec<&str>, expect: &str| {
        let r = graft(tmp.path(), &args);
        let stderr = String::from_utf8_lossy(&r.stderr).to_string();
        assert!(
            !r.status.success() && stderr.contains(expect),
            "{args:?}: {stderr}"
        );
    };
    // --out must not be the base model, nor a folder that is not a graft model.
    let copy = tmp.path().join("base");
    std::fs::create_dir(&copy).unwrap();
    for f in ["config.json", "tokenizer.json", "pytorch_model.bin"] {
        std::fs::copy(model.join(f), copy.join(f)).unwrap();
    }
    fails(
        train_args(
            &train,
            &dev,
            &copy,
            &copy,
            &["--fusion", "none", "--freeze-encoder"],
        ),
        "is the base model folder",
    );
    assert!(
        std::fs::metadata(copy.join("config.json")).unwrap().len() > 0,
        "the base is untouched"
    );
    let other = tmp.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"...").unwrap();
    fails(
        train_args(
            &train,
            &dev,
            &other,
            &model,
            &["--fusion", "none", "--freeze-encoder"],
        ),
        "not a graft model folder",
    );
    // Several labels on a line need --multi-label.
    let multi = tmp.path().join("multi.jsonl");
    std::fs::write(&multi, "{\"text\": \"the dog\", \"label\": [\"animal\", \"place\"]}\n{\"text\": \"a park\", \"label\": \"place\"}\n").unwrap();
    fails(
        train_args(
            &multi,
            &dev,
            &out,
            &model,
            &["--fusion", "none", "--freeze-encoder"],
        ),
        "--multi-label",
    );
    // An unknown truncation is named, with the choices.
    fails(
        train_args(
            &train,
            &dev,
            &out,
            &model,
            &[
                "--fusion",
                "none",
                "--freeze-encoder",
                "--truncation",
                "middle",
            ],
        ),
        "unknown truncation \"middle\" (head, tail or head+tail)",
    );
    assert!(!out.exists(), "nothing written for a refused run");
    // K-BERT over an empty store: no facts to fuse, said plainly.
    fails(
        train_args(
            &train,
            &dev,
            &out,
            &model,
            &["--fusion", "kbert", "--freeze-encoder"],
        ),
        "no labelled nodes",
    );
}

#[test]
fn mismatched_model_folders_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    let out = tmp.path().join("m");
    let model = tiny();
    graft_ok(
        tmp.path(),
        &train_args(
            &train,
            &dev,
            &out,
            &model,
            &[
                "--fusion",
                "none",
                "--freeze-encoder",
                "--epochs",
                "1",
                "--truncation",
                "head+tail",
            ],
        ),
    );
    let card_path = out.join("graft.json");
    let card = std::fs::read_to_string(&card_path).unwrap();
    // The truncation is saved with the model and used when it classifies:
    // of a text of 60 words with room for 46, the first 11 ("garden" and
    // 10 × "park") and the last 35 are kept.
    let loaded = Classifier::load(&out).unwrap();
    assert_eq!(
        loaded.card.fusion_limits.truncation,
        graft::fusion::Truncation::HeadTail
    );
    // graft.json says how many training texts were cut: none of these.
    assert_eq!(loaded.card.training["truncation"], "head+tail");
    assert_eq!(loaded.card.training["truncated"]["train"], 0);
    let long = format!("garden {} the dog sat", ["park"; 56].join(" "));
    let fused = loaded.fuse(&long, &[]).unwrap();
    assert!(fused.truncated);
    let ids = &fused.sequence.input_ids;
    assert_eq!(ids.len(), 48);
    let tokenizer = loaded.encoder.tokenizer();
    let tail: Vec<u32> = ["the", "dog", "sat"]
        .iter()
        .map(|w| tokenizer.token_id(w).unwrap())
        .collect();
    assert_eq!(&ids[ids.len() - 4..ids.len() - 1], &tail[..]);
    assert_eq!(ids[1], tokenizer.token_id("garden").unwrap());
    // What is linked: the 11 words from the start and the 35 to the end.
    let cut = loaded.cut(&long).unwrap();
    let spans = cut.spans();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0], 0.."garden".len() + 10 * " park".len());
    let tail_start = long.len() - (" the dog sat".len() + 32 * " park".len()) + 1;
    assert_eq!(spans[1], tail_start..usize::MAX);
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&card).unwrap();
        f(&mut v);
        std::fs::write(&card_path, v.to_string()).unwrap();
        Classifier::load(&out).expect_err("must be refused")
    };
    let e = edit(&|v| v["labels"] = serde_json::json!(["animal", "place", "vehicle"]));
    assert!(
        matches!(&e, ClassifierError::Mismatch { message, .. } if message.contains("3 labels")),
        "{e}"
    );
    let e = edit(&|v| v["fusion"] = "graphy".into());
    assert!(e.to_string().contains("graft.json"), "{e}");
    let e = edit(&|v| v["encoder"]["hidden_size"] = 768.into());
    assert!(
        matches!(&e, ClassifierError::Mismatch { message, .. } if message.contains("hidden")),
        "{e}"
    );
    let e = edit(&|v| v["fusion_limits"]["truncation"] = "middle".into());
    assert!(e.to_string().contains("graft.json"), "{e}");
    let e = edit(&|v| v["fusion_limits"]["max_tokens"] = 4096.into());
    assert!(e.to_string().contains("positions"), "{e}");
    std::fs::remove_file(&card_path).unwrap();
    assert!(matches!(
        Classifier::load(&out),
        Err(ClassifierError::NotAClassifier { .. })
    ));
    let e = Classifier::load(&model).unwrap_err();
    assert!(matches!(e, ClassifierError::NotAClassifier { .. }));
}

/// Full fine-tuning of the tiny model for many short epochs, so a run can
/// be stopped part-way; `extra` adds or overrides flags.
fn long_run<'a>(
    train: &'a Path,
    dev: &'a Path,
    out: &'a Path,
    model: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut flags = vec![
        "--fusion",
        "none",
        "--epochs",
        "150",
        "--patience",
        "1000",
        "--lr",
        "1e-3",
        "--batch-size",
        "4",
        "--seed",
        "3",
    ];
    flags.extend_from_slice(extra);
    train_args(train, dev, out, model, &flags)
}

#[test]
fn a_stopped_run_resumes_from_its_checkpoint_and_ends_with_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    let model = tiny();
    // Uninterrupted.
    let straight = tmp.path().join("straight");
    graft_ok(tmp.path(), &long_run(&train, &dev, &straight, &model, &[]));

    // Killed after its third epoch's line (the second epoch's state is
    // saved before the third epoch starts), then run again.
    let resumed = tmp.path().join("resumed");
    let ckpt = tmp.path().join("ckpt");
    let ckpt_s = ckpt.to_str().unwrap();
    let args = long_run(
        &train,
        &dev,
        &resumed,
        &model,
        &["--checkpoint-dir", ckpt_s],
    );
    kill_after_line(tmp.path(), &args, "epoch 3:");
    assert!(!resumed.exists(), "a stopped run writes no model");
    assert!(ckpt.join("graft-train-state.json").is_file());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("graft-train-state.json")).unwrap())
            .unwrap();
    let done = state["epochs_done"].as_u64().unwrap();
    assert!((2..150).contains(&done), "{done}");
    // A copy of the state for the refusals below.
    let saved = tmp.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    for entry in std::fs::read_dir(&ckpt).unwrap() {
        let entry = entry.unwrap();
        // Files only: a run killed while saving leaves a staging folder,
        // which resuming clears.
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        std::fs::copy(entry.path(), saved.join(entry.file_name())).unwrap();
    }

    let out = graft(tmp.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming after epoch {done} of 150")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("epoch 1:"),
        "epoch 1 is not run again: {stderr}"
    );
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(resumed.join("model.safetensors")).unwrap(),
        "a resumed run ends with the weights of one that never stopped"
    );
    let card = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("graft.json")).unwrap()).unwrap()
    };
    let (a, b) = (card(&straight), card(&resumed));
    assert_eq!(a["metrics"], b["metrics"]);
    assert_eq!(a["training"]["best_epoch"], b["training"]["best_epoch"]);
    let dev_f1 = |c: &serde_json::Value| -> Vec<serde_json::Value> {
        c["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dev_macro_f1"].clone())
            .collect()
    };
    assert_eq!(dev_f1(&a), dev_f1(&b), "every epoch's record is kept");
    assert!(
        !ckpt.exists(),
        "the state is deleted once the model is written"
    );

    // The saved state refuses another run, naming the difference, and
    // nothing is written.
    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        for entry in std::fs::read_dir(&saved).unwrap() {
            let entry = entry.unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        dir
    };
    let other = fresh("other");
    let out_other = tmp.path().join("other-model");
    let out = graft(
        tmp.path(),
        &long_run(
            &train,
            &dev,
            &out_other,
            &model,
            &[
                "--checkpoint-dir",
                other.to_str().unwrap(),
                "--warmup",
                "0.2",
            ],
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("holds the state of another run")
            && stderr.contains("training.warmup: 0.1 then, 0.2 now"),
        "{stderr}"
    );
    assert!(!out_other.exists());

    // A run that early stopping had ended before it was stopped only
    // writes its model: no further epoch.
    let ended = fresh("ended");
    let state_path = ended.join("graft-train-state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["stopped"] = true.into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    let out_ended = tmp.path().join("ended-model");
    let out = graft(
        tmp.path(),
        &long_run(
            &train,
            &dev,
            &out_ended,
            &model,
            &["--checkpoint-dir", ended.to_str().unwrap()],
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("early stopping ended this run after epoch {done}")),
        "{stderr}"
    );
    let c = card(&out_ended);
    assert_eq!(c["history"].as_array().unwrap().len() as u64, done);
    assert!(c["training"]["best_epoch"].as_u64().unwrap() <= done);

    // A damaged state is refused with the way out.
    for (name, damage) in [
        ("bad-json", "cut"),
        ("other-format", "format"),
        ("bad-tensors", "tensors"),
    ] {
        let dir = fresh(name);
        let state_path = dir.join("graft-train-state.json");
        match damage {
            "tensors" => {
                // The tensor file the state names (a stop while saving may
                // have left another one beside it).
                let named = state["tensors"].as_str().unwrap().to_owned();
                let file = dir.join(named);
                let bytes = std::fs::read(&file).unwrap();
                std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
            }
            "format" => {
                let mut other = state.clone();
                other["format"] = 99.into();
                std::fs::write(&state_path, other.to_string()).unwrap();
            }
            _ => std::fs::write(&state_path, "{\"format\": 1, \"run\": ").unwrap(),
        }
        let out_bad = tmp.path().join(format!("{name}-model"));
        let out = graft(
            tmp.path(),
            &long_run(
                &train,
                &dev,
                &out_bad,
                &model,
                &["--checkpoint-dir", dir.to_str().unwrap()],
            ),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert!(
            stderr.contains("cannot resume from the saved state")
                && stderr.contains("delete the folder to start over"),
            "{name}: {stderr}"
        );
        if damage == "format" {
            assert!(stderr.contains("its format is 99"), "{stderr}");
        }
        assert!(!out_bad.exists(), "{name}");
    }
}

#[test]
fn a_stopped_top_layers_run_resumes_to_the_same_model() {
    // The top layer trains on the cached output of the layer below.
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    // A copy of the tiny model, whose files are moved to another folder
    // and touched between the stop and the resume (same content: the same
    // run).
    let model = tmp.path().join("tiny");
    std::fs::create_dir(&model).unwrap();
    for entry in std::fs::read_dir(tiny()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let top = ["--train-layers", "1", "--group-by-length"];
    let straight = tmp.path().join("straight");
    graft_ok(tmp.path(), &long_run(&train, &dev, &straight, &model, &top));
    let resumed = tmp.path().join("resumed");
    let ckpt = tmp.path().join("ckpt");
    let mut flags = top.to_vec();
    flags.extend(["--checkpoint-dir", ckpt.to_str().unwrap()]);
    let args = long_run(&train, &dev, &resumed, &model, &flags);
    kill_after_line(tmp.path(), &args, "epoch 5:");
    let moved = tmp.path().join("tiny-moved");
    std::fs::rename(&model, &moved).unwrap();
    let args = long_run(&train, &dev, &resumed, &moved, &flags);
    for entry in std::fs::read_dir(&moved).unwrap() {
        let file = std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap();
        file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
    }
    // While a process holds the folder, another run is refused.
    let held = graft::classifier::checkpoint::Checkpoint::open(&ckpt).unwrap();
    let busy = graft(tmp.path(), &args);
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(!busy.status.success());
    assert!(
        stderr.contains("another graft run is using this folder"),
        "{stderr}"
    );
    drop(held);
    let out = graft(tmp.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming after epoch"), "{stderr}");
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(resumed.join("model.safetensors")).unwrap()
    );
}

#[test]
fn the_feature_cache_follows_the_encoders_content_not_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    let cache = tmp.path().join("cache");
    let flags = [
        "--fusion",
        "none",
        "--freeze-encoder",
        "--epochs",
        "3",
        "--seed",
        "1",
        "--feature-cache",
        cache.to_str().unwrap(),
    ];
    let cached = || {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let run = |out: &Path, model: &Path| {
        let result = graft(tmp.path(), &train_args(&train, &dev, out, model, &flags));
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert!(result.status.success(), "{stderr}");
        stderr
    };
    let first = tmp.path().join("first");
    let stderr = run(&first, &tiny());
    for n in [12, 6] {
        let line = format!("wrote the vectors of {n} inputs to the feature cache");
        assert!(stderr.contains(&line), "{stderr}");
    }
    let files = cached();
    assert_eq!(files.len(), 2, "the train and dev vectors: {files:?}");
    // Zeros in place of the vectors: a run that reads the cache trains its
    // head on them and ends elsewhere than the first run.
    for file in &files {
        let len = std::fs::metadata(file).unwrap().len() as usize;
        std::fs::write(file, vec![0u8; len]).unwrap();
    }
    // A copy of the encoder in another folder, its files newer: the same
    // content, so the same vectors, read from the cache.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(tiny()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let second = tmp.path().join("second");
    let stderr = run(&second, &copy);
    assert_eq!(cached(), files, "no new vectors for the same content");
    for n in [12, 6] {
        let line = format!("read the vectors of {n} inputs from the feature cache");
        assert!(stderr.contains(&line), "{stderr}");
    }
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert_ne!(
        weights(&first),
        weights(&second),
        "the cached zeros were read"
    );
    // Other content (a key the model does not read, added to its
    // config.json): other vectors.
    let config = copy.join("config.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    value["note"] = "edited".into();
    std::fs::write(&config, value.to_string()).unwrap();
    let third = tmp.path().join("third");
    run(&third, &copy);
    assert_eq!(cached().len(), 4, "new vectors for other weights");
}

#[test]
fn unusable_checkpoint_folders_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, dev, _) = write_set(tmp.path());
    let model = tiny();
    let out = tmp.path().join("model");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    // The same folder as --out, spelled otherwise; inside --out; the
    // --model folder; inside it.
    let out_alias = tmp.path().join(".").join("model");
    let inside_out = out.join("state");
    let inside_model = model.join("state");
    for (dir, message) in [
        (file.clone(), "not a folder"),
        (foreign.clone(), "holds other files (notes.txt)"),
        (out.clone(), "apart from --out"),
        (out_alias, "apart from --out"),
        (inside_out, "apart from --out"),
        (model.clone(), "apart from --model"),
        (inside_model.clone(), "apart from --model"),
    ] {
        let result = graft(
            tmp.path(),
            &long_run(
                &train,
                &dev,
                &out,
                &model,
                &["--checkpoint-dir", dir.to_str().unwrap()],
            ),
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{dir:?}");
        assert!(stderr.contains(message), "{dir:?}: {stderr}");
        assert!(!out.exists(), "{dir:?}");
    }
    // The frozen encoder's feature cache is a folder of its own too.
    let cache = tmp.path().join("cache");
    let result = graft(
        tmp.path(),
        &long_run(
            &train,
            &dev,
            &out,
            &model,
            &[
                "--checkpoint-dir",
                cache.to_str().unwrap(),
                "--feature-cache",
                cache.to_str().unwrap(),
            ],
        ),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("apart from --feature-cache"), "{stderr}");
    // Nothing of theirs was touched, nothing was made.
    assert!(!inside_model.exists());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// A full fine-tuning of the tiny model, run through the library so a test
/// can stop it at an exact step: 4 epochs of 3 steps (12 examples, batch 4).
fn library_run(base: &Path, out: &Path, checkpoint: Option<&Path>) -> TrainOptions {
    TrainOptions {
        base: base.into(),
        out: out.into(),
        fusion: FusionMode::None,
        limits: FusionLimits {
            max_tokens: 48,
            ..FusionLimits::default()
        },
        pooling: Pooling::Mean,
        epochs: 4,
        batch_size: 4,
        lr: 1e-3,
        warmup: 0.1,
        weight_decay: 0.01,
        layer_lr_decay: 1.0,
        seed: 5,
        freeze_encoder: false,
        train_layers: None,
        group_by_length: true,
        patience: 100,
        clip_norm: 1.0,
        balanced: true,
        multi_label: false,
        head_dropout: 0.1,
        label_smoothing: 0.0,
        feature_cache: None,
        checkpoint_dir: checkpoint.map(Path::to_path_buf),
        save_steps: 1,
    }
}

#[test]
fn a_run_stopped_inside_an_epoch_resumes_at_its_saved_step_and_ends_with_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (train_file, dev_file, _) = write_set(tmp.path());
    let format = DataFormat::default();
    let train_set = data::read_examples(&train_file, &format).unwrap();
    let dev_set = data::read_examples(&dev_file, &format).unwrap();
    let labels = data::label_set(&train_file, &train_set, 2).unwrap();
    let knowledge = |_: &str, _: &[std::ops::Range<usize>]| Ok(Vec::new());
    let info = serde_json::json!({"train": {"sha256": "t"}, "dev": {"sha256": "d"}});
    let attempt = |opts: &TrainOptions, on: &dyn Fn(Progress)| {
        train(
            opts,
            &labels,
            &train_set,
            &dev_set,
            &knowledge,
            None,
            info.clone(),
            on,
        )
    };
    let run = |opts: &TrainOptions, stop_at: Option<(usize, usize)>| {
        run_stopping_at(stop_at, |on| {
            attempt(opts, on).unwrap();
        })
    };
    let model = tiny();
    let straight = tmp.path().join("straight");
    let (events, ended) = run(&library_run(&model, &straight, None), None);
    assert!(ended);
    assert!(
        !events.iter().any(|e| matches!(e, Progress::Saved { .. })),
        "nothing is saved without a checkpoint folder"
    );
    let card = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("graft.json")).unwrap()).unwrap()
    };
    let losses = |c: &serde_json::Value| -> Vec<serde_json::Value> {
        c["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::json!([r["train_loss"], r["dev_macro_f1"]]))
            .collect()
    };

    // Inside the first epoch (no best epoch yet) and inside the third.
    for (epoch, step) in [(1, 2), (3, 1)] {
        let out = tmp.path().join(format!("resumed-{epoch}-{step}"));
        let ckpt = tmp.path().join(format!("ckpt-{epoch}-{step}"));
        let opts = library_run(&model, &out, Some(&ckpt));
        let (events, ended) = run(&opts, Some((epoch, step)));
        assert!(!ended && !out.exists(), "a stopped run writes no model");
        let saved = |e: &Progress| matches!(e, Progress::Saved { .. });
        assert_eq!(
            events.iter().filter(|e| saved(e)).count(),
            // Steps 1 and 2 of each earlier epoch, then the steps before.
            2 * (epoch - 1) + step - 1
        );
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ckpt.join("graft-train-state.json")).unwrap())
                .unwrap();
        assert_eq!(state["epochs_done"], epoch - 1);
        assert_eq!(state["in_epoch"]["steps"], step);
        assert_eq!(state["best"].is_null(), epoch == 1);
        assert!(ckpt
            .join(format!(
                "graft-train-epoch-{}-step-{step}.safetensors",
                epoch - 1
            ))
            .is_file());

        // A state whose unfinished epoch does not fit is refused, naming
        // what, and left as it was.
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 4] = [
            ("3 steps of an epoch of 3 batches", |v| {
                v["in_epoch"]["steps"] = 3.into()
            }),
            ("does not fit the run's epochs, batch size or steps", |v| {
                v["in_epoch"]["count"] = 99.into()
            }),
            ("does not fit the run's epochs, batch size or steps", |v| {
                // Ten examples in the last batch, above --batch-size 4.
                let all: Vec<u64> = v["order"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap())
                    .collect();
                // One example in each of the first two: the steps done keep
                // their count.
                v["in_epoch"]["batches"] = serde_json::json!([all[..1], all[1..2], all[2..]]);
                v["in_epoch"]["count"] = v["in_epoch"]["steps"].clone();
            }),
            ("early stopping had ended", |v| v["stopped"] = true.into()),
        ];
        for (n, (message, edit)) in edits.into_iter().enumerate() {
            let broken = tmp.path().join(format!("broken-{epoch}-{step}-{n}"));
            std::fs::create_dir(&broken).unwrap();
            for entry in std::fs::read_dir(&ckpt).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), broken.join(entry.file_name())).unwrap();
            }
            let mut bad = state.clone();
            edit(&mut bad);
            let text = serde_json::to_string(&bad).unwrap();
            std::fs::write(broken.join("graft-train-state.json"), &text).unwrap();
            let broken_out = tmp.path().join(format!("broken-out-{epoch}-{step}-{n}"));
            let err = attempt(&library_run(&model, &broken_out, Some(&broken)), &|_| {})
                .err()
                .expect("refused")
                .to_string();
            assert!(
                err.contains("cannot resume") && err.contains(message),
                "{message}: {err}"
            );
            assert!(!broken_out.exists());
            assert_eq!(
                std::fs::read_to_string(broken.join("graft-train-state.json")).unwrap(),
                text
            );
        }

        // Run again: it goes on after the saved step.
        let (events, ended) = run(&opts, None);
        assert!(ended);
        assert_resumed_at(&events, epoch, step);
        assert_same_file(
            &straight.join("model.safetensors"),
            &out.join("model.safetensors"),
            "a run resumed inside an epoch ends with the weights of one that never stopped",
        );
        let (a, b) = (card(&straight), card(&out));
        assert_eq!(
            losses(&a),
            losses(&b),
            "every epoch's train loss and dev macro-F1 are the same"
        );
        assert_eq!(a["metrics"], b["metrics"]);
    }
}
