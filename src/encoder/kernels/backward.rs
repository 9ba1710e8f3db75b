//! Fused backward passes for fine-tuning: the gradients of the exact GELU,
//! of the masked softmax and of layer norm, each in one parallel pass over
//! its rows.
//!
//! candle differentiates these as chains of generic tensor ops (layer norm
//! alone: about twenty in the backward pass), each a separate pass over the
//! tensor that allocates its result, several of them single-threaded, and its
//! erf is the scalar libm one. On a `--train-layers 12` fine-tuning run those
//! element-wise ops took about a quarter of the time (`perf`); the figures
//! before and after are in `docs/performance.md`.
//!
//! The results match candle's own chains to float rounding (tests below).
//! Reductions over rows (the layer norm's γ and β gradients) are summed per
//! fixed block of rows and the blocks added in order, so a training run stays
//! deterministic whatever the thread scheduling.

use super::{contiguous_f32, erfc_nonneg, exp_f32, norm_in_place, row_stats, ROWS_PER_TASK};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Values handed to one rayon task in the element-wise passes.
const CHUNK: usize = 16 * 1024;

/// The gradient of the exact GELU ([`super::GeluErf`]): `(x, dy)` → `dy ·
/// (Φ(x) + x·φ(x))`, both inputs contiguous f32 of the same shape, the
/// result of that shape. No backward pass of its own.
#[derive(Debug, Clone, Copy)]
pub struct GeluErfGrad;

impl CustomOp2 for GeluErfGrad {
    fn name(&self) -> &'static str {
        "graft-gelu-erf-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "gelu input")?;
        let dy = contiguous_f32(s2, l2, "gelu gradient")?;
        same_shape(l1, l2, "gelu gradient")?;
        let mut out = dy.to_vec();
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(d, x)| gelu_grad_in_place(d, x));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `dy[i] ·= Φ(x[i]) + x[i]·φ(x[i])`.
fn gelu_grad_in_place(dy: &mut [f32], x: &[f32]) {
    dispatch_simd!((dy: &mut [f32], x: &[f32]), {
        // 1/√(2π)
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (d, &x) in dy.iter_mut().zip(x) {
            let half_erfc = 0.5 * erfc_nonneg(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
            let cdf = if x >= 0.0 { 1.0 - half_erfc } else { half_erfc };
            let pdf = INV_SQRT_2PI * exp_f32(-0.5 * x * x);
            *d *= x.mul_add(pdf, cdf);
        }
    })
}

/// The gradient of the masked softmax ([`super::MaskedSoftmax`]) with
/// respect to the scores: `(y, dy)` → `scale · y ⊙ (dy − Σ(dy ⊙ y))` per row
/// of the last dimension, `y` the softmax's output; both contiguous f32 of the
/// same shape, the result of that shape. No backward pass of its own.
#[derive(Debug, Clone, Copy)]
pub struct SoftmaxGrad {
    /// The factor the forward pass applied to the scores.
    pub scale: f32,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "graft-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, "softmax output")?;
        let dy = contiguous_f32(s2, l2, "softmax gradient")?;
        same_shape(l1, l2, "softmax gradient")?;
        let keys = l1.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = dy.to_vec();
        let scale = self.scale;
        out.par_chunks_mut(keys * ROWS_PER_TASK)
            .zip(y.par_chunks(keys * ROWS_PER_TASK))
            .for_each(|(d, y)| {
                for (d, y) in d.chunks_mut(keys).zip(y.chunks(keys)) {
                    softmax_grad_row(d, y, scale);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// One row: `dy ← scale · y ⊙ (dy − Σ dy ⊙ y)`.
fn softmax_grad_row(dy: &mut [f32], y: &[f32], scale: f32) {
    dispatch_simd!((dy: &mut [f32], y: &[f32], scale: f32), {
        let dot = sum_lanes(dy.len(), |i| dy[i] * y[i]);
        for (d, &p) in dy.iter_mut().zip(y) {
            *d = scale * p * (*d - dot);
        }
    })
}

/// Layer norm over the last dimension for training: `(x, γ, β)` → `(x −
/// mean) / √(var + ε) · γ + β`, with `x` `[..., hidden]` and `γ`, `β`
/// `[hidden]`; the result has `x`'s shape. Its backward pass
/// ([`LayerNormGrad`]) gives the gradients of all three in one pass.
/// (Same values as candle's `layer_norm`, which has no backward pass.)
#[derive(Debug, Clone, Copy)]
pub struct LayerNormTrain {
    /// ε added to the variance.
    pub eps: f32,
}

impl CustomOp3 for LayerNormTrain {
    fn name(&self) -> &'static str {
        "graft-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "layer norm input")?;
        let gamma = contiguous_f32(s2, l2, "layer norm weight")?;
        let beta = contiguous_f32(s3, l3, "layer norm bias")?;
        let h = hidden(l1, &[l2, l3])?;
        let mut out = x.to_vec();
        let eps = self.eps;
        out.par_chunks_mut(h * rows_per_task(h))
            .for_each(|rows| norm_rows(rows, gamma, beta, eps));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = gamma.elem_count();
        let n = x.elem_count() / h.max(1);
        let packed = x.contiguous()?.apply_op3_no_bwd(
            &grad_res.contiguous()?,
            &gamma.contiguous()?,
            &LayerNormGrad { eps: self.eps },
        )?;
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        Ok((Some(dx), Some(packed.get(n)?), Some(packed.get(n + 1)?)))
    }
}

/// Layer norm over each `h`-value row of `rows`, in place.
fn norm_rows(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    dispatch_simd!((rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32), {
        for row in rows.chunks_mut(gamma.len()) {
            norm_in_place(row, gamma, beta, eps);
        }
    })
}

/// The gradients of layer norm ([`LayerNormTrain`]): `(x, dy, γ)` with `x`,
/// `dy` `[..., hidden]` (n rows) and `γ` `[hidden]` → `[n + 2, hidden]`: rows
/// `0..n` are ∂L/∂x, row `n` is ∂L/∂γ and row `n + 1` is ∂L/∂β. With x̂ the
/// normalised row, r = 1/√(var + ε) and g = dy ⊙ γ:
/// ∂L/∂x = r · (g − mean(g) − x̂ · mean(g ⊙ x̂)); ∂L/∂γ = Σ_rows dy ⊙ x̂;
/// ∂L/∂β = Σ_rows dy. No backward pass of its own.
#[derive(Debug, Clone, Copy)]
pub struct LayerNormGrad {
    /// ε added to the variance (as in the forward pass).
    pub eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "graft-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "layer norm input")?;
        let dy = contiguous_f32(s2, l2, "layer norm gradient")?;
        let gamma = contiguous_f32(s3, l3, "layer norm weight")?;
        same_shape(l1, l2, "layer norm gradient")?;
        let h = hidden(l1, &[l3])?;
        let n = x.len() / h;
        let mut out = vec![0f32; (n + 2) * h];
        let (dx, params) = out.split_at_mut(n * h);
        let block = h * rows_per_task(h);
        let eps = self.eps;
        // Each block of rows sums its own γ and β gradients ([dγ | dβ]); the
        // blocks are then added in order (deterministic).
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(block)
            .zip(x.par_chunks(block).zip(dy.par_chunks(block)))
            .map(|(dx, (x, dy))| {
                let mut acc = vec![0f32; 2 * h];
                norm_grad_rows(x, dy, gamma, eps, dx, &mut acc);
                acc
            })
            .collect();
        for p in &partials {
            for (o, v) in params.iter_mut().zip(p) {
                *o += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n + 2, h))))
    }
}

/// The layer norm gradients of each `h`-value row of `x` and `dy`: ∂L/∂x into
/// `dx`, and ∂L/∂γ, ∂L/∂β added to `acc` (`[dγ | dβ]`, `2·h`).
fn norm_grad_rows(x: &[f32], dy: &[f32], gamma: &[f32], eps: f32, dx: &mut [f32], acc: &mut [f32]) {
    dispatch_simd!((x: &[f32], dy: &[f32], gamma: &[f32], eps: f32, dx: &mut [f32], acc: &mut [f32]), {
        let h = gamma.len();
        let (dgamma, dbeta) = acc.split_at_mut(h);
        for ((x, dy), dx) in x.chunks(h).zip(dy.chunks(h)).zip(dx.chunks_mut(h)) {
            let (mean, inv) = row_stats(x, eps);
            // dx holds x̂ until the last pass.
            for i in 0..h {
                let xh = (x[i] - mean) * inv;
                dx[i] = xh;
                dgamma[i] += dy[i] * xh;
                dbeta[i] += dy[i];
            }
            let mean_g = sum_lanes(h, |i| dy[i] * gamma[i]) / h as f32;
            let mean_gx = sum_lanes(h, |i| dy[i] * gamma[i] * dx[i]) / h as f32;
            for i in 0..h {
                dx[i] = inv * (dy[i] * gamma[i] - mean_g - dx[i] * mean_gx);
            }
        }
    })
}

/// Σ f(i) for i in 0..n with 16 independent accumulators (so it vectorises).
#[inline(always)]
fn sum_lanes(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let full = n / 16 * 16;
    for base in (0..full).step_by(16) {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += f(base + lane);
        }
    }
    let mut total: f32 = acc.iter().sum();
    for i in full..n {
        total += f(i);
    }
    total
}

/// Rows of `h` values per rayon task: about 4,096 values.
fn rows_per_task(h: usize) -> usize {
    (4096 / h.max(1)).max(1)
}

/// The last dimension of `x`, which every parameter in `params` must be
/// (`[hidden]`).
fn hidden(x: &Layout, params: &[&Layout]) -> Result<usize> {
    let h = x.shape().dims().last().copied().unwrap_or(0);
    if h == 0 || params.iter().any(|p| p.shape().dims() != [h]) {
        candle_core::bail!(
            "layer norm: input {:?} with parameters {:?}",
            x.shape(),
            params.iter().map(|p| p.shape()).collect::<Vec<_>>()
        );
    }
    Ok(h)
}

fn same_shape(a: &Layout, b: &Layout, what: &str) -> Result<()> {
    if a.shape() != b.shape() {
        candle_core::bail!("{what}: shape {:?} against {:?}", b.shape(), a.shape());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn layer_norm_and_its_gradients_match_candles_op_chain() {
        let dev = Device::Cpu;
        // 3-D input, 2·5 rows of 37 values (not a multiple of 16: the tails).
        let x = Var::randn(0.5f32, 2.0, (2, 5, 37), &dev).unwrap();
        let gamma = Var::randn(1f32, 0.3, 37, &dev).unwrap();
        let beta = Var::randn(0f32, 0.3, 37, &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (2, 5, 37), &dev).unwrap();
        let eps = 1e-12;
        let fused = x.apply_op3(&gamma, &beta, LayerNormTrain { eps }).unwrap();
        let plain = candle_nn::ops::layer_norm_slow(&x, &gamma, &beta, eps).unwrap();
        assert!(max_diff(&fused, &plain) < 1e-5);
        let g1 = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
            let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            assert_eq!(a.dims(), v.dims(), "{name}");
            let d = max_diff(a, b);
            assert!(d < 1e-4, "{name}: {d}");
        }
    }

    #[test]
    fn gelu_gradient_matches_candles_erf_gelu() {
        let dev = Device::Cpu;
        let xs: Vec<f32> = (-1000..1000).map(|i| i as f32 * 0.01).collect();
        let x = Var::from_vec(xs, 2000, &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, 2000, &dev).unwrap();
        let g1 = (x.apply_op1(super::super::GeluErf).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (x.gelu_erf().unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let d = max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap());
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((4, 8), candle_core::DType::F32, &dev).unwrap();
        let dy = Tensor::zeros((4, 7), candle_core::DType::F32, &dev).unwrap();
        let g = Tensor::ones(7, candle_core::DType::F32, &dev).unwrap();
        assert!(x.apply_op2_no_bwd(&dy, &GeluErfGrad).is_err());
        assert!(x
            .apply_op2_no_bwd(&dy, &SoftmaxGrad { scale: 1.0 })
            .is_err());
        assert!(x
            .apply_op3_no_bwd(&g, &g, &LayerNormTrain { eps: 1e-5 })
            .is_err());
    }
}
