//! Full fine-tuning speed, examples/s: one training step (forward in training
//! mode with dropout, mean pooling, a linear head, cross-entropy, backward,
//! gradient clipping, AdamW) on all-MiniLM-L6-v2 at batch 16 × 128 tokens,
//! the texts of `benches/encoder-inputs.json` ("long", cut to 128 tokens).
//!
//! Not a test: run by `scripts/bench-train.sh` beside PyTorch doing the same
//! step. `cargo bench --bench train -- [--model DIR] [--steps N]` prints one
//! JSON object.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::ParamsAdamW;
use graft::classifier::optim::GroupedAdamW;
use graft::encoder::{masked_mean, Batch, Encoder, Mode, Sequence};
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
    let steps: usize = arg(&args, "--steps").map_or(12, |v| v.parse().expect("--steps N"));
    let inputs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("benches/encoder-inputs.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<&str> = inputs["long"]
        .as_array()
        .unwrap()
        .iter()
        .take(16)
        .map(|t| t.as_str().unwrap())
        .collect();
    let (mut encoder, _) = Encoder::load_with_weights(&model, true).expect("model folder");
    encoder.set_max_tokens(128).unwrap();
    encoder.model().set_seed(1);
    let sequences: Vec<Sequence> = encoder
        .tokenizer()
        .encode(&texts)
        .unwrap()
        .into_iter()
        .map(|t| Sequence::plain(t.ids))
        .collect();
    let batch = Batch::new(&sequences, encoder.config()).unwrap();
    let hidden = encoder.config().hidden_size;
    let dev = Device::Cpu;
    let head_w =
        Var::from_tensor(&(Tensor::randn(0f32, 0.02, (5, hidden), &dev).unwrap())).unwrap();
    let head_b = Var::zeros(5, DType::F32, &dev).unwrap();
    let mut vars = vec![head_w.clone(), head_b.clone()];
    vars.extend(encoder.model().vars().iter().cloned());
    // The optimizer groups graft train uses (no decay on biases and layer norms).
    let names = ["classifier.weight".to_owned(), "classifier.bias".to_owned()]
        .into_iter()
        .chain(
            encoder
                .model()
                .named_parameters()
                .iter()
                .map(|(n, _)| n.clone()),
        );
    let mut opt = GroupedAdamW::new(
        names.zip(vars.iter().cloned()).collect(),
        encoder.config().num_layers,
        1.0,
        ParamsAdamW {
            lr: 2e-5,
            weight_decay: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    let targets: Vec<u32> = (0..16).map(|i| i % 5).collect();
    let targets = Tensor::new(targets.as_slice(), &dev).unwrap();
    let mut step = || {
        let h = encoder.model().forward(&batch, Mode::Train).unwrap();
        let pooled = masked_mean(&h, &batch.padding_mask).unwrap();
        let logits = pooled
            .matmul(&head_w.as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(head_b.as_tensor())
            .unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
        let mut grads = loss.backward().unwrap();
        // Clip to global norm 1, as graft train does.
        let mut sq = 0f64;
        for v in &vars {
            if let Some(g) = grads.get(v) {
                sq += g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64;
            }
        }
        let norm = sq.sqrt();
        if norm > 1.0 {
            for v in &vars {
                if let Some(g) = grads.remove(v) {
                    grads.insert(v, (g * (1.0 / norm)).unwrap());
                }
            }
        }
        opt.step(2e-5, &grads).unwrap();
        let _ = logits.argmax(D::Minus1);
    };
    step(); // warm-up
    step();
    let mut times = Vec::new();
    for _ in 0..steps {
        let t0 = Instant::now();
        step();
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    eprintln!(
        "graft: {:.1} examples/s (median step {:.3} s)",
        16.0 / median,
        median
    );
    println!(
        "{}",
        serde_json::json!({"examples_per_s": (16.0 / median * 10.0).round() / 10.0, "median_step_s": median, "steps": steps, "batch": 16, "tokens": 128})
    );
}
