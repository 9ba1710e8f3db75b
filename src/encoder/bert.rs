//! graft's BERT forward pass on candle tensors (Devlin et al., 2019,
//! "BERT: Pre-training of Deep Bidirectional Transformers for Language
//! Understanding"; the Hugging Face `BertModel` weight layout).
//!
//! Unlike candle-transformers' `BertModel`, it takes explicit position ids and
//! a per-example `[seq, seq]` attention bias (K-BERT's soft positions and
//! visible matrix), it can be fine-tuned (every weight can be a [`Var`], layer
//! norms and dropout are differentiable in training mode), and its hot steps
//! are fused kernels ([`super::kernels`]).

use super::batch::Batch;
use super::config::{Activation, EncoderConfig};
use super::error::EncoderError;
use super::fused::{AddLayerNorm, FusedAttention, FusedLinear};
use super::kernels::backward::LayerNormTrain;
use super::kernels::{GeluErf, MaskedSoftmax};
use super::weights::Weights;
use candle_core::{DType, Tensor, Var, D};

/// Whether a forward pass trains (dropout on, differentiable layer norms) or
/// infers (no dropout, fused layer norms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inference: deterministic, fastest kernels.
    Infer,
    /// Training: dropout as configured, every step differentiable.
    Train,
}

/// A dense layer `y = x·Wᵀ + b` with Hugging Face's `[out, in]` weight.
#[derive(Debug, Clone)]
struct Linear {
    weight: Tensor,
    bias: Tensor,
    /// `Wᵀ`, `[in, out]` contiguous, for the fused inference kernel.
    weight_t: Option<Tensor>,
}

impl Linear {
    /// With `inference`, the weight is kept only as `Wᵀ` (`weight` becomes a
    /// transposed view of it, so the memory is not doubled).
    fn new(weight: Tensor, bias: Tensor, inference: bool) -> candle_core::Result<Self> {
        if !inference {
            return Ok(Self {
                weight,
                bias,
                weight_t: None,
            });
        }
        let weight_t = weight.t()?.contiguous()?;
        Ok(Self {
            weight: weight_t.t()?,
            bias,
            weight_t: Some(weight_t),
        })
    }

    /// `x`: `[n, in]` → `[n, out]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
    /// `[2, hidden]`: weight and bias stacked for the fused inference op.
    stacked: Option<Tensor>,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        match mode {
            Mode::Infer => candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps),
            // candle's fused op has no backward pass; this one does.
            Mode::Train => x.contiguous()?.apply_op3(
                &self.weight,
                &self.bias,
                LayerNormTrain { eps: self.eps },
            ),
        }
    }
}

/// The query, key and value projections.
#[derive(Debug, Clone)]
enum Projection {
    /// Stacked to `[3·hidden, hidden]` once at load (inference): one matmul
    /// instead of three.
    Stacked(Linear),
    /// Kept apart (training) and concatenated per step, so the gradients
    /// reach the three parameters.
    Separate([Linear; 3]),
}

impl Projection {
    fn stacked(&self) -> candle_core::Result<std::borrow::Cow<'_, Linear>> {
        Ok(match self {
            Self::Stacked(l) => std::borrow::Cow::Borrowed(l),
            Self::Separate([q, k, v]) => std::borrow::Cow::Owned(stack_qkv(q, k, v, false)?),
        })
    }
}

#[derive(Debug, Clone)]
struct Layer {
    qkv: Projection,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The BERT encoder: embeddings, `num_layers` transformer layers and the
/// optional pooler.
#[derive(Debug, Clone)]
pub struct BertModel {
    config: EncoderConfig,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    pooler: Option<Linear>,
    /// Every parameter with its Hugging Face name (no prefix), in load
    /// order, when loaded for fine-tuning.
    params: Vec<(String, Tensor)>,
    /// The same parameters as variables, when loaded for fine-tuning.
    vars: Vec<Var>,
    /// Draws dropout masks in training; seeded by [`Self::set_seed`] so a
    /// run is repeatable (candle's own CPU random source cannot be seeded).
    /// ChaCha12, `rand`'s `StdRng` algorithm (the same stream from the same
    /// seed), whose position can be read and restored.
    rng: std::sync::Arc<std::sync::Mutex<rand_chacha::ChaCha12Rng>>,
}

struct Loader<'a> {
    weights: &'a mut Weights,
    trainable: bool,
    params: Vec<(String, Tensor)>,
    vars: Vec<Var>,
}

impl Loader<'_> {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, EncoderError> {
        let t = self.weights.take(name, shape)?.contiguous()?;
        Ok(self.register(name, t))
    }

    fn register(&mut self, name: &str, t: Tensor) -> Tensor {
        if !self.trainable {
            return t;
        }
        let var = Var::from_tensor(&t).expect("an f32 tensor converts to a variable");
        let t = var.as_tensor().clone();
        self.vars.push(var);
        self.params.push((name.to_string(), t.clone()));
        t
    }

    /// A dense layer; `prepare` makes the inference copy of its weight
    /// (not for query/key/value, which inference uses stacked).
    fn linear(
        &mut self,
        name: &str,
        out: usize,
        inp: usize,
        prepare: bool,
    ) -> Result<Linear, EncoderError> {
        let weight = self.tensor(&format!("{name}.weight"), &[out, inp])?;
        let bias = self.tensor(&format!("{name}.bias"), &[out])?;
        Ok(Linear::new(weight, bias, prepare && !self.trainable)?)
    }

    fn norm(&mut self, name: &str, dim: usize, eps: f64) -> Result<LayerNorm, EncoderError> {
        let weight = self.tensor(&format!("{name}.weight"), &[dim])?;
        let bias = self.tensor(&format!("{name}.bias"), &[dim])?;
        let stacked = if self.trainable {
            None
        } else {
            Some(Tensor::stack(&[&weight, &bias], 0)?)
        };
        Ok(LayerNorm {
            weight,
            bias,
            eps: eps as f32,
            stacked,
        })
    }
}

impl BertModel {
    /// Builds the model from `weights`, taking out every encoder tensor (what
    /// remains, e.g. a classifier head, stays in `weights`). With
    /// `trainable`, every parameter becomes a [`Var`] (see [`Self::vars`]).
    /// A missing pooler is allowed (not every checkpoint has one).
    ///
    /// Errors: [`EncoderError::MissingTensor`], [`EncoderError::ShapeMismatch`].
    pub fn load(
        config: &EncoderConfig,
        weights: &mut Weights,
        trainable: bool,
    ) -> Result<Self, EncoderError> {
        let c = config;
        let h = c.hidden_size;
        let mut l = Loader {
            weights,
            trainable,
            params: Vec::new(),
            vars: Vec::new(),
        };
        let word_embeddings = l.tensor("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
        let position_embeddings = l.tensor(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?;
        let token_type_embeddings = l.tensor(
            "embeddings.token_type_embeddings.weight",
            &[c.type_vocab_size, h],
        )?;
        let embeddings_norm = l.norm("embeddings.LayerNorm", h, c.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let p = format!("encoder.layer.{i}");
            let query = l.linear(&format!("{p}.attention.self.query"), h, h, false)?;
            let key = l.linear(&format!("{p}.attention.self.key"), h, h, false)?;
            let value = l.linear(&format!("{p}.attention.self.value"), h, h, false)?;
            let qkv = if trainable {
                Projection::Separate([query, key, value])
            } else {
                Projection::Stacked(stack_qkv(&query, &key, &value, true)?)
            };
            layers.push(Layer {
                qkv,
                attention_out: l.linear(&format!("{p}.attention.output.dense"), h, h, true)?,
                attention_norm: l.norm(
                    &format!("{p}.attention.output.LayerNorm"),
                    h,
                    c.layer_norm_eps,
                )?,
                intermediate: l.linear(
                    &format!("{p}.intermediate.dense"),
                    c.intermediate_size,
                    h,
                    true,
                )?,
                output: l.linear(&format!("{p}.output.dense"), h, c.intermediate_size, true)?,
                output_norm: l.norm(&format!("{p}.output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        let pooler = match (
            l.weights.take_optional("pooler.dense.weight", &[h, h])?,
            l.weights.take_optional("pooler.dense.bias", &[h])?,
        ) {
            (Some(w), Some(b)) => Some(Linear::new(
                l.register("pooler.dense.weight", w.contiguous()?),
                l.register("pooler.dense.bias", b.contiguous()?),
                false,
            )?),
            _ => None,
        };
        Ok(Self {
            config: config.clone(),
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embeddings_norm,
            layers,
            pooler,
            params: l.params,
            vars: l.vars,
            rng: std::sync::Arc::new(std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(0))),
        })
    }

    /// Seeds the dropout masks of training passes.
    pub fn set_seed(&self, seed: u64) {
        self.set_dropout_rng(rand::SeedableRng::seed_from_u64(seed));
    }

    /// The dropout masks' generator as it stands (a copy), to save with a
    /// training state.
    pub fn dropout_rng(&self) -> rand_chacha::ChaCha12Rng {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts back a generator saved with [`Self::dropout_rng`]: the next
    /// masks are the ones the saved run would have drawn.
    pub fn set_dropout_rng(&self, rng: rand_chacha::ChaCha12Rng) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The word-piece embedding table, `[vocab_size, hidden]` (a variable's
    /// tensor when loaded `trainable`): the masked-LM head's tied output
    /// projection.
    pub fn word_embeddings(&self) -> &Tensor {
        &self.word_embeddings
    }

    /// Whether the checkpoint carried pooler weights.
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// Every parameter with its Hugging Face name (no prefix), for saving
    /// (empty unless loaded `trainable`).
    pub fn named_parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// The parameters as variables (empty unless loaded `trainable`).
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The last hidden states, `[batch, seq, hidden]` f32.
    ///
    /// Errors: [`EncoderError::Tensor`] (shapes are checked when the batch
    /// is built, so this means a bug or memory exhaustion).
    pub fn forward(&self, batch: &Batch, mode: Mode) -> Result<Tensor, EncoderError> {
        let fused = mode == Mode::Infer && self.vars.is_empty();
        Ok(self.forward_inner(batch, mode, fused)?)
    }

    /// Inference through the plain tensor path (candle matmuls, the
    /// differentiable ops training uses) instead of the fused kernels: the
    /// reference the fused path is tested against.
    pub fn forward_unfused(&self, batch: &Batch) -> Result<Tensor, EncoderError> {
        Ok(self.forward_inner(batch, Mode::Infer, false)?)
    }

    /// Inference through the embeddings and the first `layers` transformer
    /// layers (the fused kernels when the model was loaded for inference):
    /// hidden states `[batch, seq, hidden]` that [`Self::forward_top`]
    /// continues from. Fine-tuning only the top layers computes this once
    /// per input. `layers` is capped at the model's layer count.
    ///
    /// Errors: [`EncoderError::Tensor`], as [`Self::forward`].
    pub fn forward_bottom(&self, batch: &Batch, layers: usize) -> Result<Tensor, EncoderError> {
        let fused = self.vars.is_empty();
        let (b, s) = batch.input_ids.dims2()?;
        let x = self.embed(batch, Mode::Infer, fused)?;
        let x = self.run_layers(
            x,
            batch,
            0..layers.min(self.layers.len()),
            Mode::Infer,
            fused,
        )?;
        Ok(x.reshape((b, s, self.config.hidden_size))?)
    }

    /// Continues from `hidden` (`[batch, seq, hidden]`, what
    /// [`Self::forward_bottom`] gave for the same sequences; padded rows may
    /// hold any finite values, e.g. zeros, as they are masked) through layers
    /// `first..num_layers`:
    /// the last hidden states `[batch, seq, hidden]`. In [`Mode::Train`]
    /// the gradient reaches these layers' parameters and stops at `hidden`.
    ///
    /// Errors: [`EncoderError::Input`] when `hidden` is not
    /// `[batch, seq, hidden]` for `batch`; [`EncoderError::Tensor`].
    pub fn forward_top(
        &self,
        hidden: &Tensor,
        batch: &Batch,
        first: usize,
        mode: Mode,
    ) -> Result<Tensor, EncoderError> {
        let (b, s) = batch.input_ids.dims2()?;
        let h = self.config.hidden_size;
        if hidden.dims() != [b, s, h] {
            return Err(EncoderError::Input(format!(
                "hidden states {:?} do not match the batch [{b}, {s}, {h}]",
                hidden.dims()
            )));
        }
        let fused = mode == Mode::Infer && self.vars.is_empty();
        let x = hidden.reshape((b * s, h))?;
        let x = self.run_layers(
            x,
            batch,
            first.min(self.layers.len())..self.layers.len(),
            mode,
            fused,
        )?;
        Ok(x.reshape((b, s, h))?)
    }

    fn forward_inner(&self, batch: &Batch, mode: Mode, fused: bool) -> candle_core::Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        let h = self.config.hidden_size;
        let x = self.embed(batch, mode, fused)?;
        let x = self.run_layers(x, batch, 0..self.layers.len(), mode, fused)?;
        debug_assert_eq!(x.dims(), &[b * s, h]);
        x.reshape((b, s, h))
    }

    /// The embeddings' output, `[batch·seq, hidden]`.
    fn embed(&self, batch: &Batch, mode: Mode, fused: bool) -> candle_core::Result<Tensor> {
        let ids = batch.input_ids.flatten_all()?;
        let words = self.word_embeddings.index_select(&ids, 0)?;
        let positions = self
            .position_embeddings
            .index_select(&batch.position_ids.flatten_all()?, 0)?;
        let types = self
            .token_type_embeddings
            .index_select(&batch.token_type_ids.flatten_all()?, 0)?;
        match (&self.embeddings_norm.stacked, fused) {
            (Some(params), true) => (words + positions)?.apply_op3_no_bwd(
                &types,
                params,
                &AddLayerNorm {
                    eps: self.embeddings_norm.eps,
                },
            ),
            _ => {
                let x = ((words + positions)? + types)?;
                self.dropout(&self.embeddings_norm.forward(&x, mode)?, mode, false)
            }
        }
    }

    /// Layers `range` over `x` (`[batch·seq, hidden]`) → same shape.
    fn run_layers(
        &self,
        mut x: Tensor,
        batch: &Batch,
        range: std::ops::Range<usize>,
        mode: Mode,
        fused: bool,
    ) -> candle_core::Result<Tensor> {
        let (b, s) = batch.input_ids.dims2()?;
        for layer in &self.layers[range] {
            x = match fused {
                true => self.layer_fused(layer, &x, batch)?,
                false => self.layer_forward(layer, &x, &batch.attention_bias, b, s, mode)?,
            };
        }
        Ok(x)
    }

    fn dropout(&self, x: &Tensor, mode: Mode, attention: bool) -> candle_core::Result<Tensor> {
        let p = if attention {
            self.config.attention_dropout
        } else {
            self.config.hidden_dropout
        };
        match mode {
            Mode::Train if p > 0.0 => {
                use rand::Rng;
                let scale = 1.0 / (1.0 - p);
                let mask: Vec<f32> = {
                    let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                    (0..x.elem_count())
                        .map(|_| if rng.random::<f32>() < p { 0.0 } else { scale })
                        .collect()
                };
                x * Tensor::from_vec(mask, x.shape(), x.device())?
            }
            _ => Ok(x.clone()),
        }
    }

    /// One transformer layer through the fused inference kernels;
    /// `x`: `[batch·seq, hidden]` → same.
    fn layer_fused(&self, layer: &Layer, x: &Tensor, batch: &Batch) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let linear = |x: &Tensor, l: &Linear, gelu: bool| match &l.weight_t {
            Some(w) => x.apply_op3_no_bwd(w, &l.bias, &FusedLinear { gelu }),
            None => {
                let y = l.forward(x)?;
                if gelu {
                    y.apply_op1(GeluErf)
                } else {
                    Ok(y)
                }
            }
        };
        let norm = |x: &Tensor, residual: &Tensor, n: &LayerNorm| match &n.stacked {
            Some(params) => x.apply_op3_no_bwd(residual, params, &AddLayerNorm { eps: n.eps }),
            None => n.forward(&(x + residual)?, Mode::Infer),
        };
        let qkv = linear(x, layer.qkv.stacked()?.as_ref(), false)?;
        let context = qkv.apply_op2_no_bwd(
            &batch.attention_bias,
            &FusedAttention {
                heads: c.num_heads,
                lengths: batch.lengths.clone(),
            },
        )?;
        let x = norm(
            &linear(&context, &layer.attention_out, false)?,
            x,
            &layer.attention_norm,
        )?;
        let inner = match c.activation {
            Activation::GeluErf => linear(&x, &layer.intermediate, true)?,
            Activation::GeluTanh => linear(&x, &layer.intermediate, false)?.gelu()?,
            Activation::Relu => linear(&x, &layer.intermediate, false)?.relu()?,
        };
        norm(
            &linear(&inner, &layer.output, false)?,
            &x,
            &layer.output_norm,
        )
    }

    /// One transformer layer; `x`: `[batch·seq, hidden]` → same.
    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        bias: &Tensor,
        b: usize,
        s: usize,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let (heads, d, h) = (c.num_heads, c.head_dim(), c.hidden_size);
        let qkv = layer.qkv.stacked()?.forward(x)?;
        // [b, s, 3, heads, d] → [3, b, heads, s, d]
        let qkv = qkv.reshape((b, s, 3, heads, d))?.permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?;
        let scale = 1.0 / (d as f32).sqrt();
        let probs = scores.apply_op2(bias, MaskedSoftmax { scale })?;
        let probs = self.dropout(&probs, mode, true)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * s, h))?;
        let attended = self.dropout(&layer.attention_out.forward(&context)?, mode, false)?;
        let x = layer.attention_norm.forward(&(attended + x)?, mode)?;
        let inner = layer.intermediate.forward(&x)?;
        let inner = match c.activation {
            Activation::GeluErf => inner.apply_op1(GeluErf)?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        let out = self.dropout(&layer.output.forward(&inner)?, mode, false)?;
        layer.output_norm.forward(&(out + x)?, mode)
    }

    /// `tanh(W · h_CLS + b)`, `[batch, hidden]`, or `None` without pooler
    /// weights. `hidden`: `[batch, seq, hidden]`.
    pub fn pooler_output(&self, hidden: &Tensor) -> Result<Option<Tensor>, EncoderError> {
        let Some(p) = &self.pooler else {
            return Ok(None);
        };
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        Ok(Some(p.forward(&cls)?.tanh()?))
    }
}

fn stack_qkv(q: &Linear, k: &Linear, v: &Linear, inference: bool) -> candle_core::Result<Linear> {
    Linear::new(
        Tensor::cat(&[&q.weight, &k.weight, &v.weight], 0)?,
        Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0)?,
        inference,
    )
}

/// The masked mean of `hidden` (`[batch, seq, hidden]`) over the tokens where
/// `mask` (`[batch, seq]`, 1 or 0) is 1: `[batch, hidden]`.
pub fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor, EncoderError> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    let count = m.sum(1)?.clamp(1e-9f32, f32::MAX)?;
    Ok(sum.broadcast_div(&count)?)
}

/// Each row of `x` (`[batch, dim]`) divided by its L2 norm (rows of zeros
/// stay zero).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor, EncoderError> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}
