//! The BERT encoder: loading a Hugging Face model folder, tokenising, the
//! forward pass with position ids and a 3-D attention mask, pooling and
//! batching. Knows nothing of graphs or HTTP.
//!
//! A model folder holds `config.json` ([`EncoderConfig`]), `tokenizer.json`
//! ([`TextTokenizer`]) and `model.safetensors` or `pytorch_model.bin`
//! ([`Weights`]). Supported: `model_type` bert (BERT, all-MiniLM,
//! multilingual-e5, Chinese BERTs) and roberta / xlm-roberta / camembert
//! (position offset `pad_token_id + 1`), with absolute positions.

mod batch;
mod bert;
mod config;
mod error;
mod fused;
pub mod kernels;
pub mod mlm;
mod tokenize;
mod weights;

pub use batch::{Batch, Sequence};
pub use bert::{l2_normalize, masked_mean, BertModel, Mode};
pub use config::{Activation, EncoderConfig, Family, SUPPORTED_MODEL_TYPES};
pub use error::EncoderError;
pub use tokenize::{TextTokenizer, Tokenized};
pub use weights::{Weights, WEIGHT_FILES};

use candle_core::Tensor;
use std::path::{Path, PathBuf};

/// How a sequence's hidden states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The `[CLS]` token's last hidden state.
    Cls,
    /// The mean of the last hidden states over the real (non-padding) tokens,
    /// as sentence-transformers does for all-MiniLM and e5.
    Mean,
    /// BERT's pooler: `tanh(W · h_CLS + b)` (needs pooler weights).
    Pooler,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cls" => Ok(Self::Cls),
            "mean" => Ok(Self::Mean),
            "pooler" => Ok(Self::Pooler),
            _ => Err(format!("unknown pooling \"{s}\" (cls, mean or pooler)")),
        }
    }
}

/// Most sequences run through the model in one pass by [`Encoder::embed`]:
/// bigger batches gain little on a CPU and cost memory.
pub const MAX_BATCH_SEQUENCES: usize = 32;

/// Most padded tokens (`batch × longest`) in one pass by [`Encoder::embed`],
/// which bounds the attention scores' memory (`heads × batch × seq²` floats).
pub const MAX_BATCH_TOKENS: usize = 8192;

/// Runs `f` over `sequences` in length-sorted batches (at most
/// [`MAX_BATCH_SEQUENCES`] sequences and [`MAX_BATCH_TOKENS`] padded tokens
/// each, so little is padding) and returns its rows (one per sequence) in the
/// order the sequences were given.
///
/// Errors: as [`Batch::new`], and whatever `f` returns.
pub fn map_batches<T: Clone + Default, E: From<EncoderError>>(
    sequences: &[Sequence],
    config: &EncoderConfig,
    mut f: impl FnMut(&Batch) -> Result<Vec<T>, E>,
) -> Result<Vec<T>, E> {
    let lengths: Vec<usize> = sequences.iter().map(Sequence::len).collect();
    let mut out = vec![T::default(); sequences.len()];
    for chunk in batch_plan(&lengths) {
        let seqs: Vec<Sequence> = chunk.iter().map(|&i| sequences[i].clone()).collect();
        let rows = f(&Batch::new(&seqs, config)?)?;
        for (row, &i) in rows.into_iter().zip(&chunk) {
            out[i] = row;
        }
    }
    Ok(out)
}

/// How [`map_batches`] groups sequences of the given lengths: indexes,
/// sorted by length, cut into batches of at most [`MAX_BATCH_SEQUENCES`]
/// sequences and [`MAX_BATCH_TOKENS`] padded tokens (a longer sequence goes
/// alone). Every index appears once.
pub fn batch_plan(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut plan = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end < order.len()
            && end - start < MAX_BATCH_SEQUENCES
            && (end - start + 1) * lengths[order[end]] <= MAX_BATCH_TOKENS.max(lengths[order[end]])
        {
            end += 1;
        }
        plan.push(order[start..end].to_vec());
        start = end;
    }
    plan
}

/// Vectors for a list of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One vector per text, `[texts, dim]`, in the order given.
    pub vectors: Vec<Vec<f32>>,
    /// The vector width (the model's hidden size).
    pub dim: usize,
    /// Tokens each text used, special tokens included (after truncation).
    pub tokens: Vec<usize>,
    /// Whether each text was cut to the maximum length.
    pub truncated: Vec<bool>,
}

/// A loaded encoder: config, tokenizer and weights of one model folder.
#[derive(Debug, Clone)]
pub struct Encoder {
    dir: PathBuf,
    config: EncoderConfig,
    tokenizer: TextTokenizer,
    model: BertModel,
}

impl Encoder {
    /// Loads a model folder for inference; texts are cut to the model's
    /// positions.
    ///
    /// Errors: [`EncoderError::MissingFile`] (the folder or one of its
    /// files), [`EncoderError::Config`], [`EncoderError::UnsupportedArchitecture`],
    /// [`EncoderError::UnknownActivation`], [`EncoderError::Weights`],
    /// [`EncoderError::MissingTensor`], [`EncoderError::ShapeMismatch`],
    /// [`EncoderError::Tokenizer`].
    pub fn load(dir: &Path) -> Result<Self, EncoderError> {
        let (encoder, _) = Self::load_with_weights(dir, false)?;
        Ok(encoder)
    }

    /// As [`Self::load`], and also returns the tensors of the weights file
    /// that are not the encoder's (e.g. a classifier head). With `trainable`
    /// the encoder's parameters are variables ([`BertModel::vars`]).
    pub fn load_with_weights(dir: &Path, trainable: bool) -> Result<(Self, Weights), EncoderError> {
        if !dir.is_dir() {
            return Err(EncoderError::MissingFile {
                path: dir.display().to_string(),
                message: "not a model folder".into(),
            });
        }
        let config = EncoderConfig::from_file(&dir.join("config.json"))?;
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"), config.max_tokens())?;
        let mut weights = Weights::from_dir(dir)?;
        let model = BertModel::load(&config, &mut weights, trainable)?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                config,
                tokenizer,
                model,
            },
            weights,
        ))
    }

    /// Cuts texts to `max_tokens` tokens (special tokens included) from now on.
    ///
    /// Errors: [`EncoderError::MaxLength`] when above the model's positions
    /// or below 2 (room for the special tokens).
    pub fn set_max_tokens(&mut self, max_tokens: usize) -> Result<(), EncoderError> {
        if max_tokens > self.config.max_tokens() || max_tokens < 2 {
            return Err(EncoderError::MaxLength {
                requested: max_tokens,
                limit: self.config.max_tokens(),
            });
        }
        self.tokenizer.set_max_tokens(max_tokens)
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The encoder's configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The tokenizer, set to the current maximum length.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The BERT module.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// Embeds texts: tokenise, batch by length (at most
    /// [`MAX_BATCH_SEQUENCES`] sequences and [`MAX_BATCH_TOKENS`] padded
    /// tokens a pass), run, pool, optionally L2-normalise.
    ///
    /// Errors: [`EncoderError::EmptyInput`], [`EncoderError::EmptyText`]
    /// (empty or white space only), [`EncoderError::Input`] for pooler
    /// pooling on a model without pooler weights, [`EncoderError::Tokenizer`].
    pub fn embed(
        &self,
        texts: &[&str],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Embeddings, EncoderError> {
        if texts.is_empty() {
            return Err(EncoderError::EmptyInput);
        }
        if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(EncoderError::EmptyText { index });
        }
        if pooling == Pooling::Pooler && !self.model.has_pooler() {
            return Err(EncoderError::Input(
                "this model has no pooler weights: use cls or mean pooling".into(),
            ));
        }
        let tokenized = self.tokenizer.encode(texts)?;
        let sequences: Vec<Sequence> = tokenized
            .iter()
            .map(|t| Sequence {
                input_ids: t.ids.clone(),
                token_type_ids: t.type_ids.clone(),
                position_ids: None,
                visible: None,
            })
            .collect();
        let vectors = self.pool_sequences(&sequences, pooling, normalize)?;
        Ok(Embeddings {
            vectors,
            dim: self.config.hidden_size,
            tokens: tokenized.iter().map(|t| t.ids.len()).collect(),
            truncated: tokenized.iter().map(|t| t.truncated).collect(),
        })
    }

    /// Runs prepared sequences (e.g. K-BERT sentence trees) through the model
    /// in length-sorted batches and pools each: `[sequences, hidden]`, in the
    /// order given.
    ///
    /// Errors: as [`Batch::new`], and [`EncoderError::Input`] for pooler
    /// pooling without pooler weights.
    pub fn pool_sequences(
        &self,
        sequences: &[Sequence],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        map_batches(sequences, &self.config, |batch| {
            self.pool_batch(batch, pooling, normalize)
        })
    }

    /// One forward pass and pooling: `[batch, hidden]` as rows.
    pub fn pool_batch(
        &self,
        batch: &Batch,
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let hidden = self.model.forward(batch, Mode::Infer)?;
        let pooled = self.pool(&hidden, batch, pooling)?;
        let pooled = if normalize {
            l2_normalize(&pooled)?
        } else {
            pooled
        };
        Ok(pooled.to_vec2::<f32>()?)
    }

    /// Pools hidden states `[batch, seq, hidden]` to `[batch, hidden]`.
    pub fn pool(
        &self,
        hidden: &Tensor,
        batch: &Batch,
        pooling: Pooling,
    ) -> Result<Tensor, EncoderError> {
        match pooling {
            Pooling::Cls => Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?),
            Pooling::Mean => masked_mean(hidden, &batch.padding_mask),
            Pooling::Pooler => self.model.pooler_output(hidden)?.ok_or_else(|| {
                EncoderError::Input(
                    "this model has no pooler weights: use cls or mean pooling".into(),
                )
            }),
        }
    }
}
