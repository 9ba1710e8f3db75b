//! `graft pretrain`: masked-LM further pre-training on the real
//! all-MiniLM-L6-v2 (its folder has no masked-LM head: graft makes one),
//! the folder it writes, and its refusals.

mod common;

use common::{graft, graft_ok};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn minilm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2")
}

/// Support-ticket texts from a few templates: a domain small enough that a
/// few passes teach the head and the encoder its patterns.
fn tickets(products: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in products {
        out.push(format!("my {p} will not turn on after the update"));
        out.push(format!("please send me the invoice for my {p} order"));
        out.push(format!(
            "the screen of my {p} is cracked and I want a repair"
        ));
        out.push(format!("how do I reset the password on my {p}"));
    }
    out
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn pretraining_lowers_the_held_out_loss_and_writes_a_folder_graft_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train.txt");
    write(
        &train,
        &tickets(&[
            "phone",
            "laptop",
            "tablet",
            "router",
            "camera",
            "watch",
            "monitor",
            "keyboard",
            "console",
            "headset",
            "drone",
            "scanner",
            "projector",
            "modem",
            "charger",
            "kettle",
        ]),
    );
    // Held-out texts as JSON Lines with a label that is not read.
    let dev = tmp.path().join("dev.jsonl");
    let dev_lines: Vec<String> = tickets(&["printer", "speaker", "television", "fridge"])
        .iter()
        .map(|t| serde_json::json!({"text": t, "label": "x"}).to_string())
        .collect();
    write(&dev, &dev_lines);
    let out = tmp.path().join("adapted");
    let (model, train_s, dev_s, out_s) = (
        minilm().to_string_lossy().into_owned(),
        train.to_string_lossy().into_owned(),
        dev.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    );
    let args = |model: &str, out: &str, epochs: &str| -> Vec<String> {
        [
            "pretrain",
            "--model",
            model,
            "--texts",
            &train_s,
            "--dev",
            &dev_s,
            "--out",
            out,
            "--epochs",
            epochs,
            "--lr",
            "2e-4",
            "--max-len",
            "32",
            "--seed",
            "3",
            "--batch-size",
            "8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |a: Vec<String>| -> Value {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        serde_json::from_str(graft_ok(tmp.path(), &refs).trim()).unwrap()
    };
    let first = run(args(&model, &out_s, "3"));
    // Every ticket fits in 32 tokens: none was cut.
    assert_eq!(first["truncated_texts"], 0, "{first}");
    let before = first["dev_before"]["loss"].as_f64().unwrap();
    let history = first["history"].as_array().unwrap();
    // MiniLM has no head: one head-only pass comes first by default.
    assert_eq!(first["head_epochs"], 1, "{first}");
    assert_eq!(history.len(), 4);
    let head_only: Vec<bool> = history
        .iter()
        .map(|h| h["head_only"].as_bool().unwrap())
        .collect();
    assert_eq!(head_only, [true, false, false, false]);
    // The output is the texts' own tokens (a few dozen), not MiniLM's 30,522.
    let tokens = first["output_tokens"].as_u64().unwrap();
    assert!((20..200).contains(&tokens), "{first}");
    let best = first["best_epoch"].as_u64().unwrap() as usize;
    let best_loss = history[best - 1]["dev_loss"].as_f64().unwrap();
    // The head-only pass already lowers the held-out loss, and training the
    // encoder too lowers it much further.
    assert!(history[0]["dev_loss"].as_f64().unwrap() < before, "{first}");
    assert!(best_loss < before - 1.0, "{first}");
    assert!(best > 1, "{first}");
    // A new head guesses among a few dozen tokens: rarely right.
    assert!(
        first["dev_before"]["accuracy"].as_f64().unwrap() < 0.2,
        "{first}"
    );
    assert!(
        history[best - 1]["dev_accuracy"].as_f64().unwrap() > 0.0,
        "{first}"
    );
    for h in history {
        assert!(h["dev_loss"].as_f64().unwrap() >= best_loss, "{first}");
    }
    for file in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "pretrain.json",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pretrain.json")).unwrap()).unwrap();
    assert_eq!(record["texts"], 64);
    assert_eq!(record["best_epoch"], best);
    assert_eq!(record["output_tokens"], tokens);

    // The encoder changed: its embedding of a text is not the base's.
    let embed = |m: &str| -> Vec<f64> {
        let v: Value = serde_json::from_str(&graft_ok(
            tmp.path(),
            &["embed", "--model", m, "my phone is broken"],
        ))
        .unwrap();
        v["embeddings"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (a, b) = (embed(&model), embed(&out_s));
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3));

    // The head was saved: pre-training the output again starts from the
    // loss the first run ended with (same held-out masks), not from scratch,
    // and without a head-only pass (the head is loaded).
    let again = tmp.path().join("again");
    let second = run(args(&out_s, &again.to_string_lossy(), "1"));
    let resumed = second["dev_before"]["loss"].as_f64().unwrap();
    assert!(
        (resumed - best_loss).abs() < 1e-3,
        "{resumed} vs {best_loss}"
    );
    assert_eq!(second["head_epochs"], 0, "{second}");
    // With its head loaded there is no head-only pass by default, so
    // --epochs 0 leaves nothing to train: refused, nothing written.
    let idle = tmp.path().join("idle");
    let mut a = args(&out_s, &idle.to_string_lossy(), "0");
    a.retain(|x| x != "--dev" && *x != dev_s);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let r = graft(tmp.path(), &refs);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("nothing to train"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!idle.exists());

    // Over the whole vocabulary, a new head starts near or above
    // ln(30522) ≈ 10.3 nats; --head-epochs 0 trains everything at once.
    let whole = tmp.path().join("whole");
    let mut a = args(&model, &whole.to_string_lossy(), "1");
    a.extend(["--full-vocab", "--head-epochs", "0"].map(String::from));
    let third = run(a);
    assert_eq!(third["output_tokens"], 30522, "{third}");
    assert_eq!(third["history"].as_array().unwrap().len(), 1, "{third}");
    assert!(
        third["dev_before"]["loss"].as_f64().unwrap() > 9.0,
        "{third}"
    );
    assert_eq!(third["dev_before"]["accuracy"], 0.0, "{third}");

    // graft train fine-tunes from it.
    let labelled = tmp.path().join("labelled.jsonl");
    let rows: Vec<String> = tickets(&["phone", "laptop", "printer", "speaker"])
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let label = ["power", "billing", "repair", "account"][i % 4];
            serde_json::json!({"text": t, "label": label}).to_string()
        })
        .collect();
    write(&labelled, &rows);
    let l = labelled.to_string_lossy();
    let classifier = tmp.path().join("classifier");
    graft_ok(
        tmp.path(),
        &[
            "train",
            "--model",
            &out_s,
            "--train",
            &l,
            "--dev",
            &l,
            "--out",
            &classifier.to_string_lossy(),
            "--fusion",
            "none",
            "--freeze-encoder",
            "--epochs",
            "2",
        ],
    );
    assert!(classifier.join("graft.json").is_file());
}

#[test]
fn bad_pretraining_input_gets_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let model = minilm().to_string_lossy().into_owned();
    let texts = tmp.path().join("texts.txt");
    write(&texts, &tickets(&["phone", "laptop"]));
    let t = texts.to_string_lossy().into_owned();
    let out = tmp.path().join("out");
    let o = out.to_string_lossy().into_owned();
    let fails = |args: &[&str], message: &str| {
        let mut all = vec!["pretrain"];
        all.extend_from_slice(args);
        let r = graft(tmp.path(), &all);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    };
    fails(
        &["--model", &model, "--texts", &t, "--out", &model],
        "is the base model folder",
    );
    for (flag, value, message) in [
        ("--mask-rate", "0", "mask rate 0"),
        ("--mask-rate", "1", "mask rate 1"),
        ("--warmup", "1", "--warmup 1"),
        ("--max-len", "4096", "exceeds the model's 512 positions"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
        ("--lr", "0", "--lr 0"),
        ("--head-lr", "0", "--head-lr 0"),
    ] {
        fails(
            &["--model", &model, "--texts", &t, "--out", &o, flag, value],
            message,
        );
    }
    fails(
        &[
            "--model",
            &model,
            "--texts",
            &t,
            "--out",
            &o,
            "--epochs",
            "0",
            "--head-epochs",
            "0",
        ],
        "nothing to train",
    );
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "\n  \n").unwrap();
    fails(
        &[
            "--model",
            &model,
            "--texts",
            &empty.to_string_lossy(),
            "--out",
            &o,
        ],
        "no examples",
    );
    // Zero-width spaces: not blank to a reader, no token to the tokenizer.
    let invisible = tmp.path().join("invisible.txt");
    std::fs::write(&invisible, "\u{200b}\n\u{200b}\u{200b}\n").unwrap();
    fails(
        &[
            "--model",
            &model,
            "--texts",
            &invisible.to_string_lossy(),
            "--out",
            &o,
        ],
        "no text has a token to predict",
    );
    let no_field = tmp.path().join("other.jsonl");
    std::fs::write(&no_field, "{\"body\": \"my phone\"}\n").unwrap();
    let nf = no_field.to_string_lossy().into_owned();
    fails(
        &["--model", &model, "--texts", &nf, "--out", &o],
        "line 1: no column or field \"text\"",
    );
    let bad_utf8 = tmp.path().join("latin1.txt");
    std::fs::write(&bad_utf8, b"my phone\ncaf\xe9 au lait\n").unwrap();
    fails(
        &[
            "--model",
            &model,
            "--texts",
            &bad_utf8.to_string_lossy(),
            "--out",
            &o,
        ],
        "line 2: not valid UTF-8",
    );
    // An --out that is not an earlier pre-training's output is refused
    // before any training, and kept as it was: a foreign folder, a file.
    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    let notes = precious.join("notes.txt");
    std::fs::write(&notes, "keep me").unwrap();
    let file = tmp.path().join("model.bin");
    std::fs::write(&file, "keep me").unwrap();
    for (target, kept, message) in [
        (&precious, &notes, "refusing to overwrite"),
        (&file, &file, "exists and is not a folder"),
    ] {
        let target = target.to_string_lossy();
        let r = graft(
            tmp.path(),
            &[
                "pretrain", "--model", &model, "--texts", &t, "--out", &target,
            ],
        );
        assert_eq!(r.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&r.stderr).contains(message),
            "{target}"
        );
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "keep me");
    }
    // A tokenizer without a mask token cannot mask.
    let maskless = tmp.path().join("maskless");
    std::fs::create_dir(&maskless).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(minilm().join(file), maskless.join(file)).unwrap();
    }
    let tokenizer = std::fs::read_to_string(minilm().join("tokenizer.json"))
        .unwrap()
        .replace("\"[MASK]\"", "\"[HIDDEN]\"");
    std::fs::write(maskless.join("tokenizer.json"), tokenizer).unwrap();
    fails(
        &[
            "--model",
            &maskless.to_string_lossy(),
            "--texts",
            &t,
            "--out",
            &o,
        ],
        "the tokenizer has no mask token",
    );
}

#[test]
fn truncation_chooses_the_part_of_a_long_text_pretrained_on() {
    // Each text: 30 × "the", then 14 different fruit words. With 16 tokens
    // (14 for text) the start is all "the"; the end is the fruits.
    let tmp = tempfile::tempdir().unwrap();
    let fruits = "apple banana cherry grape lemon mango melon olive peach pear plum lime kiwi fig";
    let text = format!("{}{fruits}", "the ".repeat(30));
    let texts = tmp.path().join("texts.txt");
    write(&texts, &vec![text; 8]);
    let model = minilm().to_string_lossy().into_owned();
    let t = texts.to_string_lossy().into_owned();
    // pretrain's arguments for --out OUT and --truncation WHICH.
    let args = |out: &Path, truncation: &str| -> Vec<String> {
        let o = out.to_string_lossy();
        [
            "pretrain",
            "--model",
            &model,
            "--texts",
            &t,
            "--out",
            &o,
            "--max-len",
            "16",
            "--epochs",
            "0",
            "--head-epochs",
            "1",
            "--truncation",
            truncation,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |truncation: &str| -> Value {
        let out = tmp.path().join(truncation.replace('+', "-"));
        let a = args(&out, truncation);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let record: Value = serde_json::from_str(graft_ok(tmp.path(), &refs).trim()).unwrap();
        let saved: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("pretrain.json")).unwrap())
                .unwrap();
        assert_eq!(saved["truncation"], truncation, "{saved}");
        // Every text is longer than 16 tokens: all 8 were cut.
        assert_eq!(saved["truncated_texts"], 8, "{saved}");
        assert_eq!(record["truncated_texts"], 8, "{record}");
        record
    };
    // The output vocabulary is the kept text's own tokens.
    assert_eq!(run("head")["output_tokens"], 1);
    assert_eq!(run("tail")["output_tokens"], 14);
    // head+tail: 3 tokens from the start ("the"), 11 from the end (fruits).
    assert_eq!(run("head+tail")["output_tokens"], 12);
    // A bad value is refused with the choices, nothing written.
    let out = tmp.path().join("middle");
    let a = args(&out, "middle");
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let r = graft(tmp.path(), &refs);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && stderr.contains("head, tail or head+tail"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// The tiny test encoder (no masked-LM head: a head-only pass comes first).
fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoder/tiny/bert-bin")
}

#[test]
fn a_stopped_pretraining_resumes_and_writes_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    let texts = tmp.path().join("texts.txt");
    let dev = tmp.path().join("dev.txt");
    let words = ["the dog sat", "a cat slept", "the old park", "home again"];
    let lines: Vec<String> = (0..12)
        .map(|i| format!("{} {i}", words[i % words.len()]))
        .collect();
    write(&texts, &lines[..9]);
    write(&dev, &lines[9..]);
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "pretrain",
            "--model",
            tiny().to_str().unwrap(),
            "--texts",
            texts.to_str().unwrap(),
            "--dev",
            dev.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--max-len",
            "48",
            "--batch-size",
            "2",
            "--head-epochs",
            "60",
            "--epochs",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let straight = tmp.path().join("straight");
    let a = args(&straight, &[]);
    graft_ok(
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let resumed = tmp.path().join("resumed");
    let ckpt = tmp.path().join("ckpt");
    let b = args(&resumed, &["--checkpoint-dir", ckpt.to_str().unwrap()]);
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    // Killed inside the head-only passes' stage.
    common::kill_after_line(tmp.path(), &b, "epoch 2 (head only)");
    assert!(!resumed.exists());
    let state = |dir: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("graft-train-state.json")).unwrap()).unwrap()
    };
    let saved = state(&ckpt);
    assert_eq!(saved["stage"], 0, "{}", saved["epochs_done"]);
    assert!(saved["epochs_done"].as_u64().unwrap() < 60);
    let out = graft(tmp.path(), &b);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming after epoch"), "{stderr}");
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(resumed.join("model.safetensors")).unwrap(),
        "a resumed pre-training writes the weights of one that never stopped"
    );
    let record = |dir: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("pretrain.json")).unwrap()).unwrap()
    };
    let losses = |r: &Value| -> Vec<Value> {
        r["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["dev_loss"].clone())
            .collect()
    };
    assert_eq!(losses(&record(&straight)), losses(&record(&resumed)));
    assert!(!ckpt.exists());

    // Killed later, in the stage that trains the encoder too; then another
    // run (another seed) is refused by that state.
    let again = tmp.path().join("again");
    let c = args(&again, &["--checkpoint-dir", ckpt.to_str().unwrap()]);
    let c: Vec<&str> = c.iter().map(String::as_str).collect();
    common::kill_after_line(tmp.path(), &c, "epoch 80:");
    let saved = state(&ckpt);
    assert_eq!(saved["stage"], 1, "{}", saved["epochs_done"]);
    let other = args(
        &tmp.path().join("other"),
        &["--checkpoint-dir", ckpt.to_str().unwrap(), "--seed", "9"],
    );
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let out = graft(tmp.path(), &other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("holds the state of another run")
            && stderr.contains("seed: 42 then, 9 now"),
        "{stderr}"
    );
    assert!(!tmp.path().join("other").exists());
    // A pre-training state is not a fine-tuning run's.
    let labelled = tmp.path().join("labelled.jsonl");
    write(
        &labelled,
        &lines
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::json!({"text": t, "label": if i % 2 == 0 { "a" } else { "b" }})
                    .to_string()
            })
            .collect::<Vec<_>>(),
    );
    let out = graft(
        tmp.path(),
        &[
            "train",
            "--model",
            tiny().to_str().unwrap(),
            "--train",
            labelled.to_str().unwrap(),
            "--dev",
            labelled.to_str().unwrap(),
            "--out",
            tmp.path().join("classifier").to_str().unwrap(),
            "--max-len",
            "48",
            "--fusion",
            "none",
            "--checkpoint-dir",
            ckpt.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("it is a `graft pretrain` state, this is `graft train`"),
        "{stderr}"
    );
    let out = graft(tmp.path(), &c);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(again.join("model.safetensors")).unwrap()
    );
}

#[test]
fn a_pretraining_stopped_inside_an_epoch_resumes_at_its_saved_step_with_the_same_weights() {
    use graft::classifier::pretrain::{pretrain, PretrainOptions};
    let tmp = tempfile::tempdir().unwrap();
    let texts = tickets(&["phone", "laptop"]);
    let dev = tickets(&["tablet"]);
    // 8 texts in batches of 2: 4 steps an epoch; 2 head-only epochs, then 2
    // of everything.
    let options = |out: &Path, checkpoint: Option<&Path>| PretrainOptions {
        base: minilm(),
        out: out.into(),
        max_tokens: 48,
        truncation: graft::fusion::Truncation::Head,
        epochs: 2,
        batch_size: 2,
        lr: 1e-4,
        warmup: 0.1,
        weight_decay: 0.01,
        mask_rate: 0.15,
        seed: 4,
        clip_norm: 1.0,
        train_embeddings: false,
        head_epochs: Some(2),
        head_lr: 1e-3,
        full_vocab: false,
        checkpoint_dir: checkpoint.map(Path::to_path_buf),
        save_steps: 1,
    };
    let run = |opts: &PretrainOptions, stop_at: Option<(usize, usize)>| {
        common::run_stopping_at(stop_at, |on| {
            pretrain(opts, &texts, &dev, on).unwrap();
        })
    };
    let record = |dir: &Path| -> Vec<Value> {
        let r: Value =
            serde_json::from_slice(&std::fs::read(dir.join("pretrain.json")).unwrap()).unwrap();
        r["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| serde_json::json!([e["train_loss"], e["dev_loss"]]))
            .collect()
    };
    let straight = tmp.path().join("straight");
    assert!(run(&options(&straight, None), None).1);
    // Inside the first head-only epoch (no best epoch yet), inside the
    // first epoch of the second stage (its optimizer state is saved), and
    // inside its second.
    for (epoch, step) in [(1, 2), (3, 1), (4, 3)] {
        let out = tmp.path().join(format!("resumed-{epoch}-{step}"));
        let ckpt = tmp.path().join(format!("ckpt-{epoch}-{step}"));
        let opts = options(&out, Some(&ckpt));
        let (_, ended) = run(&opts, Some((epoch, step)));
        assert!(!ended && !out.exists());
        let state: Value =
            serde_json::from_slice(&std::fs::read(ckpt.join("graft-train-state.json")).unwrap())
                .unwrap();
        assert_eq!(state["epochs_done"], epoch - 1);
        assert_eq!(state["stage"], usize::from(epoch > 2));
        assert_eq!(state["in_epoch"]["steps"], step);

        let (events, ended) = run(&opts, None);
        assert!(ended);
        common::assert_resumed_at(&events, epoch, step);
        common::assert_same_file(
            &straight.join("model.safetensors"),
            &out.join("model.safetensors"),
            "a pre-training resumed inside an epoch writes the weights of one that never stopped",
        );
        assert_eq!(record(&straight), record(&out));
        assert!(!ckpt.exists(), "the state goes once the folder is written");
    }
}
