//! The saved classifier folder and prediction.
//!
//! A folder holds `config.json` and `tokenizer.json` (the base encoder's),
//! `model.safetensors` (the encoder's tensors and the head's
//! `classifier.weight` `[labels, hidden]` and `classifier.bias` `[labels]`)
//! and `graft.json` ([`ModelCard`]: labels in order, fusion mode and limits,
//! pooling, graph predicates, training data hashes, metrics).

use crate::encoder::{map_batches, Batch, Encoder, EncoderError, Mode, Pooling, Sequence};
use crate::fusion::{Cut, FusedInput, Fuser, FusionError, FusionLimits, FusionMode, Injection};
use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the `graft.json` layout.
pub const CARD_FORMAT: u32 = 1;

/// `graft.json`: what a saved classifier is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Layout version ([`CARD_FORMAT`]).
    pub format: u32,
    /// Labels, in the order of the head's rows.
    pub labels: Vec<String>,
    /// Several labels per text (sigmoid per label) instead of one (softmax).
    pub multi_label: bool,
    /// For multi-label models: a label is given when its probability is at
    /// least this.
    pub threshold: f32,
    /// How facts enter the input.
    pub fusion: FusionMode,
    /// Bounds on the input and the injected facts.
    pub fusion_limits: FusionLimits,
    /// How token vectors become the vector the head reads.
    pub pooling: Pooling,
    /// The encoder: base folder name, `model_type`, hidden size, layers,
    /// whether it was frozen in training.
    pub encoder: EncoderCard,
    /// The graph the facts came from when training.
    pub graph: Option<GraphCard>,
    /// How it was trained (data hashes, options, seed).
    pub training: serde_json::Value,
    /// Epoch by epoch: loss, dev scores, speed.
    pub history: Vec<serde_json::Value>,
    /// Final scores (`dev`, `test` when given), as [`super::Metrics`].
    pub metrics: serde_json::Value,
}

/// The encoder part of [`ModelCard`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderCard {
    pub base: String,
    pub model_type: String,
    pub hidden_size: usize,
    pub layers: usize,
    pub frozen: bool,
}

/// The graph part of [`ModelCard`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphCard {
    /// Store generation when the training facts were read.
    pub generation: u64,
    /// Predicates whose facts were injected.
    pub fact_predicates: Vec<String>,
    /// Share of training examples that got at least one fact.
    pub coverage: f64,
}

/// Errors of loading or running a classifier.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("{0}")]
    Encoder(#[from] EncoderError),
    #[error("{0}")]
    Fusion(#[from] FusionError),
    #[error(
        "{dir}: not a graft classifier folder (no graft.json); for a plain encoder use graft embed"
    )]
    NotAClassifier { dir: PathBuf },
    #[error("{dir}: {message}")]
    Mismatch { dir: PathBuf, message: String },
    #[error("{0}")]
    Tensor(#[from] candle_core::Error),
    /// The optimizer's settings (a layer decay out of range).
    #[error("{0}")]
    Optim(#[from] super::optim::OptimError),
    /// A label smoothing ε outside [0, 1).
    #[error(transparent)]
    LabelSmoothing(#[from] super::train::LabelSmoothingError),
    /// A checkpoint folder that cannot be used or written.
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    #[error("{0}")]
    Other(String),
}

/// A loaded classifier: encoder, head and card.
#[derive(Debug)]
pub struct Classifier {
    pub dir: PathBuf,
    pub card: ModelCard,
    pub encoder: Encoder,
    pub fuser: Fuser,
    /// `[labels, hidden]`.
    pub head_weight: Tensor,
    /// `[labels]`.
    pub head_bias: Tensor,
}

/// One label and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Scored {
    pub label: String,
    pub score: f32,
}

impl Classifier {
    /// Loads a saved folder and checks it is consistent: the card's labels
    /// against the head's rows, the encoder config against the card, the
    /// fusion limits against the model's positions.
    ///
    /// Errors: [`ClassifierError::NotAClassifier`] without `graft.json`;
    /// [`ClassifierError::Mismatch`] for inconsistencies; encoder errors.
    pub fn load(dir: &Path) -> Result<Self, ClassifierError> {
        if !dir.is_dir() {
            return Err(ClassifierError::Encoder(EncoderError::MissingFile {
                path: dir.display().to_string(),
                message: "no such model folder".into(),
            }));
        }
        let card_path = dir.join("graft.json");
        if !card_path.is_file() {
            return Err(ClassifierError::NotAClassifier { dir: dir.into() });
        }
        let mismatch = |message: String| ClassifierError::Mismatch {
            dir: dir.into(),
            message,
        };
        let card: ModelCard = serde_json::from_str(
            &std::fs::read_to_string(&card_path)
                .map_err(|e| mismatch(format!("graft.json: {e}")))?,
        )
        .map_err(|e| mismatch(format!("graft.json: {e}")))?;
        if card.format != CARD_FORMAT {
            return Err(mismatch(format!(
                "graft.json format {} (this graft reads {CARD_FORMAT})",
                card.format
            )));
        }
        let (mut encoder, mut weights) = Encoder::load_with_weights(dir, false)?;
        let c = encoder.config();
        if c.hidden_size != card.encoder.hidden_size || c.num_layers != card.encoder.layers {
            return Err(mismatch(format!(
                "config.json (hidden {}, {} layers) does not match graft.json (hidden {}, {} layers)",
                c.hidden_size, c.num_layers, card.encoder.hidden_size, card.encoder.layers
            )));
        }
        if card.fusion_limits.max_tokens > c.max_tokens() {
            return Err(mismatch(format!(
                "max_tokens {} exceeds the encoder's {} positions",
                card.fusion_limits.max_tokens,
                c.max_tokens()
            )));
        }
        let (Some(w), Some(b)) = (
            weights.take_exact("classifier.weight"),
            weights.take_exact("classifier.bias"),
        ) else {
            return Err(mismatch(
                "model.safetensors has no classifier.weight / classifier.bias".into(),
            ));
        };
        let labels = card.labels.len();
        if w.dims() != [labels, c.hidden_size] || b.dims() != [labels] {
            return Err(mismatch(format!(
                "graft.json lists {labels} labels but the head is {:?} / {:?}",
                w.dims(),
                b.dims()
            )));
        }
        encoder.set_max_tokens(card.fusion_limits.max_tokens)?;
        let fuser = Fuser::new(encoder.tokenizer(), card.fusion, card.fusion_limits)?;
        Ok(Self {
            dir: dir.into(),
            card,
            encoder,
            fuser,
            head_weight: w.contiguous()?,
            head_bias: b,
        })
    }

    /// `text` tokenized once, with what of it the model's input keeps
    /// ([`Cut::spans`]: what to link); [`Classifier::fuse_cut`] builds the
    /// input from it. Errors: [`ClassifierError::Fusion`] when the tokenizer
    /// fails.
    pub fn cut(&self, text: &str) -> Result<Cut, ClassifierError> {
        Ok(self.fuser.cut(self.encoder.tokenizer(), text)?)
    }

    /// Builds the input of a text cut by [`Classifier::cut`] with the given
    /// facts.
    pub fn fuse_cut(
        &self,
        cut: &Cut,
        injections: &[Injection],
    ) -> Result<FusedInput, ClassifierError> {
        Ok(self
            .fuser
            .build_cut(self.encoder.tokenizer(), cut, injections)?)
    }

    /// Builds the input of one text with the given facts.
    pub fn fuse(
        &self,
        text: &str,
        injections: &[Injection],
    ) -> Result<FusedInput, ClassifierError> {
        Ok(self
            .fuser
            .build(self.encoder.tokenizer(), text, injections)?)
    }

    /// Label probabilities `[inputs, labels]` for fused inputs (softmax, or
    /// sigmoid per label for multi-label models), in the order given.
    pub fn probabilities(&self, inputs: &[Sequence]) -> Result<Vec<Vec<f32>>, ClassifierError> {
        map_batches(
            inputs,
            self.encoder.config(),
            |batch| -> Result<_, ClassifierError> {
                let pooled = self.pooled(batch, Mode::Infer)?;
                Ok(self.head_probabilities(&pooled)?.to_vec2::<f32>()?)
            },
        )
    }

    /// Pooled vectors `[batch, hidden]`.
    pub fn pooled(&self, batch: &Batch, mode: Mode) -> Result<Tensor, ClassifierError> {
        let hidden = self.encoder.model().forward(batch, mode)?;
        Ok(self.encoder.pool(&hidden, batch, self.card.pooling)?)
    }

    /// Head probabilities for pooled vectors `[batch, hidden]`.
    pub fn head_probabilities(&self, pooled: &Tensor) -> Result<Tensor, ClassifierError> {
        let logits = pooled
            .matmul(&self.head_weight.t()?)?
            .broadcast_add(&self.head_bias)?;
        Ok(if self.card.multi_label {
            candle_nn::ops::sigmoid(&logits)?
        } else {
            candle_nn::ops::softmax(&logits, D::Minus1)?
        })
    }

    /// The ranking of labels for one row of probabilities, best first.
    pub fn ranking(&self, probs: &[f32]) -> Vec<Scored> {
        let mut r: Vec<Scored> = self
            .card
            .labels
            .iter()
            .zip(probs)
            .map(|(l, &p)| Scored {
                label: l.clone(),
                score: p,
            })
            .collect();
        r.sort_by(|a, b| b.score.total_cmp(&a.score));
        r
    }

    /// Predicted label indexes for one row of probabilities: the best one,
    /// or for multi-label every label at or above the threshold (the best
    /// one if none is).
    pub fn decide(&self, probs: &[f32]) -> Vec<usize> {
        decide(probs, self.card.multi_label, self.card.threshold)
    }
}

/// Label indexes for one row of scores: the best one, or for multi-label
/// every label at or above `threshold` (the best one if none is). Works on
/// probabilities (threshold 0.5) and on logits (threshold 0, the same cut).
pub fn decide(scores: &[f32], multi_label: bool, threshold: f32) -> Vec<usize> {
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    if !multi_label {
        return vec![best];
    }
    let above: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i] >= threshold)
        .collect();
    if above.is_empty() {
        vec![best]
    } else {
        above
    }
}
