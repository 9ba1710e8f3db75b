//! Fused inference kernels for one BERT layer, as candle custom ops that
//! call `gemm` directly (inference only: no backward pass; training runs the
//! plain tensor path of [`super::bert`]).
//!
//! What they save, measured on MiniLM (see `docs/performance.md`):
//! - [`FusedLinear`]: the output starts as the bias rows and gemm accumulates
//!   `x·Wᵀ` into it (no zero fill, no separate bias pass, no second buffer);
//!   GELU runs in place on the result.
//! - [`FusedAttention`]: reads Q, K and V straight out of the stacked QKV
//!   projection with strides (no permute copies), computes scores, the
//!   masked softmax and `P·V` per (sequence, head) on one core with the
//!   `[seq, seq]` scores in a per-task buffer, and writes the context
//!   already in `[tokens, hidden]` order. Only the real tokens of each
//!   sequence are computed: padding costs nothing.
//! - [`AddLayerNorm`]: residual add and layer norm in one pass.

use super::kernels::{add_norm_row, contiguous_f32 as slice, gelu_in_place, softmax_row};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape};
use gemm::Parallelism;
use rayon::prelude::*;

/// Rows per task of a row-blocked linear for `n` rows on `threads` cores:
/// about two tasks per core, 64 to 256 rows (a 256 × 1536 f32 block is
/// 1.5 MiB: it stays in this CPU's L2 for the GELU pass). 0 = let gemm split
/// the work across cores instead. `GRAFT_ROW_BLOCK=N` fixes it (0 turns row
/// blocking off), for the measurements of `docs/performance.md`.
fn row_block(n: usize, threads: usize) -> usize {
    static FIXED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let fixed = *FIXED.get_or_init(|| {
        std::env::var("GRAFT_ROW_BLOCK")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    fixed.unwrap_or_else(|| (n / (2 * threads.max(1))).clamp(64, 256))
}

/// `y = act(x·W + b)` for `rows` rows; `y` holds rows × out.
#[allow(clippy::too_many_arguments)]
fn linear_block(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    rows: usize,
    k: usize,
    out: usize,
    gelu: bool,
    par: Parallelism,
) {
    for row in y.chunks_exact_mut(out) {
        row.copy_from_slice(b);
    }
    // SAFETY: x holds rows×k, w k×out and y rows×out f32s (checked by the
    // caller); the strides describe all three row-major.
    unsafe {
        gemm::gemm(
            rows,
            out,
            k,
            y.as_mut_ptr(),
            1,
            out as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            out as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    if gelu {
        const CHUNK: usize = 16 * 1024;
        if matches!(par, Parallelism::None) || y.len() <= CHUNK {
            gelu_in_place(y);
        } else {
            y.par_chunks_mut(CHUNK).for_each(gelu_in_place);
        }
    }
}

fn parallelism(flops: usize) -> Parallelism {
    // Below ~1 MFLOP a second thread costs more than it saves.
    let threads = rayon::current_num_threads();
    if threads > 1 && flops > 1 << 20 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// A raw pointer that rayon tasks may share because each writes a disjoint
/// region.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: only used for disjoint writes, see each use.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper,
    /// not the raw pointer field).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// `y = act(x·W + b)`: `x` `[n, in]`, `W` `[in, out]` (transposed from
/// Hugging Face's `[out, in]` once at load, so gemm streams it row by row),
/// `b` `[out]` → `[n, out]`.
#[derive(Debug, Clone, Copy)]
pub struct FusedLinear {
    /// Apply the exact (erf) GELU to the output.
    pub gelu: bool,
}

impl CustomOp3 for FusedLinear {
    fn name(&self) -> &'static str {
        "graft-fused-linear"
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
        let x = slice(s1, l1, "linear input")?;
        let w = slice(s2, l2, "linear weight")?;
        let b = slice(s3, l3, "linear bias")?;
        let (n, k) = l1.shape().dims2()?;
        let (k2, out) = l2.shape().dims2()?;
        if k != k2 || b.len() != out {
            candle_core::bail!(
                "linear: input {:?}, weight {:?}, bias {:?} do not fit",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let mut y = vec![0f32; n * out];
        let threads = rayon::current_num_threads();
        let block = row_block(n, threads);
        if threads > 1 && block > 0 && n >= 2 * block {
            // Row blocks on separate cores, each a single-threaded gemm whose
            // output is still in cache when GELU runs over it.
            y.par_chunks_mut(block * out)
                .enumerate()
                .for_each(|(i, y_block)| {
                    let rows = y_block.len() / out;
                    linear_block(
                        &x[i * block * k..(i * block + rows) * k],
                        w,
                        b,
                        y_block,
                        rows,
                        k,
                        out,
                        self.gelu,
                        Parallelism::None,
                    );
                });
        } else {
            linear_block(
                x,
                w,
                b,
                &mut y,
                n,
                k,
                out,
                self.gelu,
                parallelism(2 * n * out * k),
            );
        }
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }
}

/// Multi-head self-attention from the stacked QKV projection.
///
/// - arg 1, `qkv`: `[batch·seq, 3·hidden]`, each row `[q | k | v]`, heads
///   contiguous inside each part (Hugging Face's layout).
/// - arg 2, `bias`: `[batch, 1 | seq, seq]`, as [`super::kernels::MaskedSoftmax`].
///
/// Output: the context `[batch·seq, hidden]`; rows of padding are zero.
#[derive(Debug, Clone)]
pub struct FusedAttention {
    /// Attention heads.
    pub heads: usize,
    /// Real length of each sequence of the batch.
    pub lengths: Vec<usize>,
}

thread_local! {
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl CustomOp2 for FusedAttention {
    fn name(&self) -> &'static str {
        "graft-fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let qkv = slice(s1, l1, "qkv")?;
        let bias = slice(s2, l2, "attention bias")?;
        let (rows, three_h) = l1.shape().dims2()?;
        let (batch, bias_rows, seq) = l2.shape().dims3()?;
        let h = three_h / 3;
        let heads = self.heads;
        if three_h % 3 != 0
            || h % heads != 0
            || rows != batch * seq
            || self.lengths.len() != batch
            || (bias_rows != 1 && bias_rows != seq)
            || self.lengths.iter().any(|&l| l > seq)
        {
            candle_core::bail!(
                "attention: qkv {:?}, bias {:?}, {} lengths do not fit",
                l1.shape(),
                l2.shape(),
                self.lengths.len()
            );
        }
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; rows * h];
        let shared = SharedOut(out.as_mut_ptr());
        let lengths = &self.lengths;
        (0..batch * heads).into_par_iter().for_each(|task| {
            let (b, head) = (task / heads, task % heads);
            let len = lengths[b];
            if len == 0 {
                return;
            }
            SCORES.with(|cell| {
                let mut scores = cell.borrow_mut();
                scores.resize(len * len, 0.0);
                let base = b * seq * three_h;
                let q = qkv[base + head * d..].as_ptr();
                let k = qkv[base + h + head * d..].as_ptr();
                let v = qkv[base + 2 * h + head * d..].as_ptr();
                // SAFETY: Q, K and V of sequence b, head `head` are the
                // `len` rows from `base` with row stride 3h and d columns
                // from their offsets, all inside `qkv` (rows = batch·seq,
                // len ≤ seq). `scores` holds len×len.
                unsafe {
                    gemm::gemm(
                        len,
                        len,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        len as isize,
                        false,
                        q,
                        1,
                        three_h as isize,
                        k,
                        three_h as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                for i in 0..len {
                    let bias_row = if bias_rows == 1 { 0 } else { i };
                    let start = (b * bias_rows + bias_row) * seq;
                    softmax_row(
                        &mut scores[i * len..(i + 1) * len],
                        &bias[start..start + len],
                        scale,
                    );
                }
                // SAFETY: this task alone writes rows b·seq .. b·seq+len,
                // columns head·d .. (head+1)·d of `out` (row stride h); V
                // is read as above.
                unsafe {
                    gemm::gemm(
                        len,
                        d,
                        len,
                        shared.ptr().add(b * seq * h + head * d),
                        1,
                        h as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        len as isize,
                        v,
                        1,
                        three_h as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            });
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, h))))
    }
}

/// `LayerNorm(x + residual)` over the last dimension: `x`, `residual`
/// `[n, hidden]`, `params` `[2, hidden]` (row 0 the weight γ, row 1 the bias
/// β) → `[n, hidden]`.
#[derive(Debug, Clone, Copy)]
pub struct AddLayerNorm {
    /// ε added to the variance.
    pub eps: f32,
}

impl CustomOp3 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "graft-add-layer-norm"
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
        let x = slice(s1, l1, "layer norm input")?;
        let r = slice(s2, l2, "residual")?;
        let p = slice(s3, l3, "layer norm parameters")?;
        let (n, h) = l1.shape().dims2()?;
        if l2.shape().dims() != [n, h] || l3.shape().dims() != [2, h] {
            candle_core::bail!(
                "layer norm: {:?} + {:?} with parameters {:?}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let (gamma, beta) = p.split_at(h);
        let eps = self.eps;
        let mut out = vec![0f32; n * h];
        let rows_per_task = (4096 / h).max(1);
        out.par_chunks_mut(h * rows_per_task)
            .enumerate()
            .for_each(|(t, chunk)| {
                for (i, o) in chunk.chunks_mut(h).enumerate() {
                    let row = t * rows_per_task + i;
                    add_norm_row(
                        &x[row * h..(row + 1) * h],
                        &r[row * h..(row + 1) * h],
                        gamma,
                        beta,
                        eps,
                        o,
                    );
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n, h))))
    }
}
