//! The AdamW update alone, graft's in-place pass beside candle-nn's tensor
//! arithmetic, on one parameter of all-MiniLM-L6-v2's size (22.7 M values),
//! in one run: ms a step (median) and the ratio. Not a test.
//!
//!     cargo bench --bench adamw [-- --values N --steps N]
//!
//! Both start from the same values and gradient and compute the same
//! numbers (`src/classifier/optim.rs` tests that, bit for bit).

use candle_core::{Device, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use graft::classifier::optim::GroupedAdamW;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a whole number"))
}

fn median_ms(mut step: impl FnMut(), steps: usize) -> f64 {
    step(); // warm-up
    let mut times: Vec<f64> = (0..steps)
        .map(|_| {
            let t = Instant::now();
            step();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    graft::runtime::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--values", 22_700_000);
    let steps = arg(&args, "--steps", 10);
    let dev = Device::Cpu;
    let init = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
    let coef = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
    let ours = Var::from_tensor(&init).unwrap();
    let theirs = Var::from_tensor(&init.copy().unwrap()).unwrap();
    let grads = |w: &Var| {
        (w.as_tensor() * &coef)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    };
    let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
    let params = ParamsAdamW::default();
    let mut graft_opt = GroupedAdamW::new(
        vec![("encoder.layer.0.output.dense.weight".into(), ours)],
        1,
        1.0,
        params.clone(),
    )
    .unwrap();
    let mut candle_opt = candle_nn::AdamW::new(vec![theirs], params).unwrap();
    let graft_ms = median_ms(|| graft_opt.step(1e-4, &g_ours).unwrap(), steps);
    let candle_ms = median_ms(|| candle_opt.step(&g_theirs).unwrap(), steps);
    println!(
        "{}",
        serde_json::json!({
            "values": n, "steps": steps,
            "graft_ms": (graft_ms * 10.0).round() / 10.0,
            "candle_nn_ms": (candle_ms * 10.0).round() / 10.0,
            "speed_ratio": (candle_ms / graft_ms * 10.0).round() / 10.0,
        })
    );
}
