//! Encoder throughput, sentences/s, end to end (tokenisation, forward pass,
//! masked mean pooling), for the rows of `docs/performance.md`:
//! batch 1 × ~16 tokens, batch 32 × ~16 tokens, batch 32 × 128 tokens.
//!
//! Not a test: run by `scripts/bench-encoder.sh`, which runs PyTorch and ONNX
//! Runtime on the same inputs (`benches/encoder-inputs.json`) in the same run.
//!
//! `cargo bench --bench encoder -- [--model DIR] [--windows N] [--window-s S] [--rows b1x16,b32x16,b32x128] [--path fused|tensor]`
//! prints one JSON object on stdout. `--path tensor` runs the plain candle
//! tensor path (the one training uses) instead of the fused kernels.

use graft::encoder::{masked_mean, Batch, Encoder, Pooling, Sequence};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    graft::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = arg(&args, "--model")
        .map(Into::into)
        .unwrap_or_else(|| root.join("models/all-MiniLM-L6-v2"));
    let windows: usize = arg(&args, "--windows").map_or(5, |v| v.parse().expect("--windows N"));
    let window_s: f64 = arg(&args, "--window-s").map_or(1.0, |v| v.parse().expect("--window-s S"));
    let tensor_path = match arg(&args, "--path").as_deref() {
        None | Some("fused") => false,
        Some("tensor") => true,
        Some(other) => panic!("--path fused|tensor, not {other}"),
    };
    let rows_wanted = arg(&args, "--rows").unwrap_or_else(|| "b1x16,b32x16,b32x128".into());
    let inputs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("benches/encoder-inputs.json")).expect("inputs file"),
    )
    .expect("inputs JSON");
    let texts = |key: &str| -> Vec<String> {
        inputs[key]
            .as_array()
            .expect("a list of texts")
            .iter()
            .map(|t| t.as_str().expect("a text").to_string())
            .collect()
    };
    let (short, long) = (texts("short"), texts("long"));
    let mut encoder = Encoder::load(&model).expect("model folder");
    encoder.set_max_tokens(128).expect("128 tokens fit");
    let rows: Vec<(&str, Vec<Vec<String>>)> = vec![
        ("b1x16", short.iter().map(|s| vec![s.clone()]).collect()),
        ("b32x16", vec![short.clone()]),
        ("b32x128", vec![long.clone()]),
    ];
    let mut result = serde_json::Map::new();
    for (name, calls) in rows {
        if !rows_wanted.split(',').any(|r| r == name) {
            continue;
        }
        let encode = |call: &Vec<String>| {
            let refs: Vec<&str> = call.iter().map(String::as_str).collect();
            if !tensor_path {
                return encoder.embed(&refs, Pooling::Mean, false).expect("embed");
            }
            let tokenized = encoder.tokenizer().encode(&refs).expect("tokenize");
            let sequences: Vec<Sequence> = tokenized
                .iter()
                .map(|t| Sequence::plain(t.ids.clone()))
                .collect();
            let batch = Batch::new(&sequences, encoder.config()).expect("batch");
            let hidden = encoder.model().forward_unfused(&batch).expect("forward");
            let vectors = masked_mean(&hidden, &batch.padding_mask)
                .expect("pool")
                .to_vec2::<f32>()
                .expect("rows");
            graft::encoder::Embeddings {
                vectors,
                dim: encoder.config().hidden_size,
                tokens: tokenized.iter().map(|t| t.ids.len()).collect(),
                truncated: tokenized.iter().map(|t| t.truncated).collect(),
            }
        };
        let per_call = calls[0].len() as f64;
        let tokens: usize = calls
            .iter()
            .map(|c| encode(c).tokens.iter().sum::<usize>())
            .sum();
        let mean_tokens = tokens as f64 / calls.iter().map(Vec::len).sum::<usize>() as f64;
        let mut i = 0;
        let warm_end = Instant::now() + std::time::Duration::from_secs(1);
        while i < calls.len() || Instant::now() < warm_end {
            encode(&calls[i % calls.len()]);
            i += 1;
        }
        let mut rates = Vec::new();
        for _ in 0..windows {
            let (t0, mut n) = (Instant::now(), 0usize);
            loop {
                encode(&calls[i % calls.len()]);
                i += 1;
                n += 1;
                if t0.elapsed().as_secs_f64() >= window_s {
                    break;
                }
            }
            rates.push(n as f64 * per_call / t0.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        eprintln!("graft {name}: {median:.1} sentences/s (windows {rates:.1?}, mean tokens {mean_tokens:.1})");
        result.insert(
            name.into(),
            serde_json::json!({"sentences_per_s": (median * 10.0).round() / 10.0, "mean_tokens": mean_tokens}),
        );
    }
    result.insert(
        "path".into(),
        (if tensor_path { "tensor" } else { "fused" }).into(),
    );
    result.insert("threads".into(), rayon::current_num_threads().into());
    println!("{}", serde_json::Value::Object(result));
}
