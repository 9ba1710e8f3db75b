//! Fused CPU kernels for the encoder's hot element-wise steps, as candle
//! custom ops (forward on CPU slices; their backward passes, for
//! fine-tuning, in [`backward`]).
//!
//! Why own kernels: candle's generic softmax and its erf-GELU are scalar and
//! allocate intermediates; on this machine they cost about a third of a
//! MiniLM layer at 32 × 128 tokens (see `docs/performance.md`). Here the
//! scaling, the additive attention bias and the softmax run in one pass per
//! row, and GELU uses a polynomial erf and exp that the compiler vectorises,
//! compiled once per instruction set (AVX-512, AVX2+FMA, baseline) and picked
//! at run time.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The additive bias for a masked attention score: the most negative finite
/// f32, as PyTorch's BERT uses (`torch.finfo(float32).min`), so a fully masked
/// row degrades to a uniform distribution instead of NaN.
pub const MASKED: f32 = f32::MIN;

/// Rows handed to one rayon task: enough work to amortise the task.
const ROWS_PER_TASK: usize = 64;

/// Runs `$body` compiled for the best instruction set this CPU offers.
macro_rules! dispatch_simd {
    (($($arg:ident : $ty:ty),*), $body:block) => {{
        #[inline(always)]
        fn generic($($arg: $ty),*) $body
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn avx512($($arg: $ty),*) { generic($($arg),*) }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2($($arg: $ty),*) { generic($($arg),*) }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the features were detected on this CPU just above.
                return unsafe { avx512($($arg),*) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: as above.
                return unsafe { avx2($($arg),*) };
            }
        }
        generic($($arg),*)
    }};
}

// After the macro: the backward kernels use it.
pub mod backward;

/// e^x for f32 by range reduction (x = n·ln 2 + r, |r| ≤ ln 2 / 2) and a
/// degree-6 Taylor polynomial for e^r; relative error below 3e-7 on
/// [-87, 88]; inputs at or below -87 give exactly 0. Branch-free so loops vectorise.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    // Two-part ln 2 (Cody–Waite) keeps r exact enough.
    let r = (-n).mul_add(1.428_606_8e-6, (-n).mul_add(0.693_145_75, x));
    // Horner with fused multiply-adds (one instruction each under AVX2/AVX-512).
    let p = (1.0 / 720.0f32)
        .mul_add(r, 1.0 / 120.0)
        .mul_add(r, 1.0 / 24.0)
        .mul_add(r, 1.0 / 6.0)
        .mul_add(r, 0.5)
        .mul_add(r, 1.0)
        .mul_add(r, 1.0);
    let bits = ((n as i32 + 127) as u32) << 23;
    let y = p * f32::from_bits(bits);
    // Exactly 0 for masked scores, so hidden keys get no weight at all.
    if x <= -87.0 {
        0.0
    } else {
        y
    }
}

/// The complementary error function for x ≥ 0 by the Chebyshev fit of
/// Numerical Recipes (Press et al., 2nd ed., §6.2, `erfcc`): fractional error
/// below 1.2e-7.
#[inline(always)]
fn erfc_nonneg(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = 0.170_872_77f32
        .mul_add(t, -0.822_152_23)
        .mul_add(t, 1.488_515_9)
        .mul_add(t, -1.135_204)
        .mul_add(t, 0.278_868_07)
        .mul_add(t, -0.186_288_06)
        .mul_add(t, 0.096_784_18)
        .mul_add(t, 0.374_091_96)
        .mul_add(t, 1.000_023_7)
        .mul_add(t, -1.265_512_2);
    t * exp_f32(-z * z + poly)
}

/// Exact (erf) GELU of one value: x · Φ(x) = x · (1 − erfc(x/√2)/2) for
/// x ≥ 0 and x · erfc(−x/√2)/2 for x < 0 (Hendrycks & Gimpel 2016).
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let half_erfc = 0.5 * erfc_nonneg(z);
    let phi = if x >= 0.0 { 1.0 - half_erfc } else { half_erfc };
    x * phi
}

/// Exact GELU of every value, in place.
pub(crate) fn gelu_in_place(xs: &mut [f32]) {
    dispatch_simd!((xs: &mut [f32]), {
        for x in xs.iter_mut() {
            *x = gelu_erf(*x);
        }
    })
}

/// Softmax of `scale · row + bias` over one row, in place.
pub(crate) fn softmax_row(row: &mut [f32], bias: &[f32], scale: f32) {
    dispatch_simd!((row: &mut [f32], bias: &[f32], scale: f32), {
        for (o, b) in row.iter_mut().zip(bias) {
            *o = *o * scale + b;
        }
        let max = lanes_reduce(row, f32::NEG_INFINITY, f32::max);
        for o in row.iter_mut() {
            *o = exp_f32(*o - max);
        }
        let sum = lanes_reduce(row, 0.0, |a, b| a + b);
        let inv = 1.0 / sum;
        for o in row.iter_mut() {
            *o *= inv;
        }
    })
}

/// `LayerNorm(x + r)` of one row into `out` (mean and variance in two passes).
pub(crate) fn add_norm_row(
    x: &[f32],
    r: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    dispatch_simd!((x: &[f32], r: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]), {
        for ((o, a), b) in out.iter_mut().zip(x).zip(r) {
            *o = a + b;
        }
        norm_in_place(out, gamma, beta, eps);
    })
}

/// The mean of a row and 1/√(variance + ε) (two passes, population variance).
#[inline(always)]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let h = row.len() as f32;
    let mean = lanes_reduce(row, 0.0, |a, b| a + b) / h;
    let mut acc = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] += (c[i] - mean) * (c[i] - mean);
        }
    }
    let mut var = 0f32;
    for a in acc.iter() {
        var += a;
    }
    for t in tail {
        var += (t - mean) * (t - mean);
    }
    (mean, 1.0 / (var / h + eps).sqrt())
}

/// `LayerNorm` of one row in place: `(row − mean) / √(var + ε) · γ + β`.
#[inline(always)]
fn norm_in_place(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let (mean, inv) = row_stats(row, eps);
    for ((o, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *o = (*o - mean) * inv * g + b;
    }
}

/// Folds a slice with 16 independent accumulators so the loop vectorises
/// (a single accumulator forces the serial order on floats).
#[inline(always)]
fn lanes_reduce(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] = f(acc[i], c[i]);
        }
    }
    let mut r = init;
    for a in acc.iter().chain(tail) {
        r = f(r, *a);
    }
    r
}

/// The f32 data of a contiguous tensor's storage (errors name `what`).
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let slice = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&slice[start..end]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

/// GELU with the exact erf form, as BERT's `hidden_act = "gelu"`.
/// Shape-preserving; f32 only.
#[derive(Debug, Clone, Copy)]
pub struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "graft-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, "gelu")?;
        let mut dst = src.to_vec();
        const CHUNK: usize = 16 * 1024;
        dst.par_chunks_mut(CHUNK).for_each(gelu_in_place);
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }

    /// d/dx x·Φ(x) = Φ(x) + x·φ(x), in one pass ([`backward::GeluErfGrad`]).
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let x = arg.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &backward::GeluErfGrad,
        )?))
    }
}

/// Attention probabilities: `softmax(scale · scores + bias)` over the last
/// dimension, in one pass per row.
///
/// - `scores`: `[batch, heads, queries, keys]`, contiguous f32.
/// - `bias`: `[batch, 1, keys]` (a padding mask: the same for every query)
///   or `[batch, queries, keys]` (a visible matrix, one row per query), with
///   0 for visible and [`MASKED`] for hidden keys. Both forms give bit-identical
///   results when they hold the same values.
///
/// The backward pass gives the gradient of `scores` only (the bias is data).
#[derive(Debug, Clone, Copy)]
pub struct MaskedSoftmax {
    /// Multiplies the scores before the bias is added (1/√head_dim).
    pub scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "graft-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous_f32(s1, l1, "attention scores")?;
        let bias = contiguous_f32(s2, l2, "attention bias")?;
        let (batch, heads, queries, keys) = l1.shape().dims4()?;
        let (bias_batch, bias_rows, bias_keys) = l2.shape().dims3()?;
        if bias_batch != batch || bias_keys != keys || (bias_rows != 1 && bias_rows != queries) {
            candle_core::bail!(
                "attention bias {:?} does not fit scores {:?}",
                l2.shape(),
                l1.shape()
            );
        }
        let mut out = scores.to_vec();
        let scale = self.scale;
        out.par_chunks_mut(keys * ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (i, out_row) in chunk.chunks_mut(keys).enumerate() {
                    let row = task * ROWS_PER_TASK + i;
                    let query = row % queries;
                    let b = row / (heads * queries);
                    let bias_row = if bias_rows == 1 { 0 } else { query };
                    let bias_start = (b * bias_rows + bias_row) * keys;
                    softmax_row(out_row, &bias[bias_start..bias_start + keys], scale);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// For y = softmax(scale·x + b): dx = scale · y ⊙ (dy − Σ(dy ⊙ y)), in
    /// one pass per row ([`backward::SoftmaxGrad`]).
    fn bwd(
        &self,
        _scores: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = res.contiguous()?.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &backward::SoftmaxGrad { scale: self.scale },
        )?;
        Ok((Some(dx), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn reference_gelu(x: f64) -> f64 {
        // candle's own erf-GELU in f64 is the reference.
        let t = Tensor::new(&[x], &Device::Cpu).unwrap();
        t.gelu_erf().unwrap().to_vec1::<f64>().unwrap()[0]
    }

    #[test]
    fn exp_matches_std_within_3e7_relative() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(-200.0), 0.0);
    }

    #[test]
    fn gelu_matches_erf_definition() {
        let xs: Vec<f32> = (-2000..2000).map(|i| i as f32 * 0.005).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let got = t.apply_op1(GeluErf).unwrap().to_vec1::<f32>().unwrap();
        for (x, g) in xs.iter().zip(&got) {
            let want = reference_gelu(*x as f64);
            assert!(
                (*g as f64 - want).abs() < 2e-7 * (1.0 + want.abs()),
                "x={x} got={g} want={want}"
            );
        }
    }

    #[test]
    fn masked_softmax_matches_candle_and_masks() {
        let dev = Device::Cpu;
        let scores = Tensor::randn(0f32, 3.0, (2, 3, 4, 5), &dev).unwrap();
        let mut bias = vec![0f32; 2 * 5];
        bias[4] = MASKED; // batch 0 hides key 4
        bias[5 + 3] = MASKED;
        bias[5 + 4] = MASKED;
        let bias_t = Tensor::from_vec(bias.clone(), (2, 1, 5), &dev).unwrap();
        let got = scores
            .apply_op2(&bias_t, MaskedSoftmax { scale: 0.5 })
            .unwrap();
        let want = candle_nn::ops::softmax_last_dim(
            &(scores * 0.5)
                .unwrap()
                .broadcast_add(&bias_t.unsqueeze(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let diff = (got.clone() - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        let rows = got.flatten_to(2).unwrap().to_vec2::<f32>().unwrap();
        for (i, row) in rows.iter().enumerate() {
            let b = i / 12;
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            if b == 0 {
                assert_eq!(row[4], 0.0);
            } else {
                assert_eq!((row[3], row[4]), (0.0, 0.0));
            }
        }
    }

    #[test]
    fn masked_softmax_per_query_bias_equals_broadcast_bias_exactly() {
        let dev = Device::Cpu;
        let scores = Tensor::randn(0f32, 1.0, (2, 2, 3, 3), &dev).unwrap();
        let flat = vec![0.0, 0.0, MASKED, 0.0, MASKED, MASKED];
        let b1 = Tensor::from_vec(flat.clone(), (2, 1, 3), &dev).unwrap();
        let b3 = b1.broadcast_as((2, 3, 3)).unwrap().contiguous().unwrap();
        let a = scores.apply_op2(&b1, MaskedSoftmax { scale: 0.3 }).unwrap();
        let b = scores.apply_op2(&b3, MaskedSoftmax { scale: 0.3 }).unwrap();
        assert_eq!(
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn gradients_match_primitive_ops() {
        let dev = Device::Cpu;
        let x = candle_core::Var::randn(0f32, 1.0, (2, 1, 3, 4), &dev).unwrap();
        let bias = Tensor::from_vec(
            vec![0f32, 0.0, 0.0, MASKED, 0.0, 0.0, 0.0, 0.0],
            (2, 1, 4),
            &dev,
        )
        .unwrap();
        let w = Tensor::randn(0f32, 1.0, (2, 1, 3, 4), &dev).unwrap();
        let fused = x
            .apply_op2(&bias, MaskedSoftmax { scale: 0.7 })
            .unwrap()
            .apply_op1(GeluErf)
            .unwrap();
        let g1 = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let plain = candle_nn::ops::softmax(
            &(x.as_tensor() * 0.7)
                .unwrap()
                .broadcast_add(&bias.unsqueeze(1).unwrap())
                .unwrap(),
            D::Minus1,
        )
        .unwrap()
        .gelu_erf()
        .unwrap();
        let g2 = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let a = g1
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = g2
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }
}
