//! The encoder's errors: loading a model folder, tokenising, running.

use std::path::Path;

/// Everything that can go wrong in [`crate::encoder`].
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A file of the model folder is missing or unreadable.
    #[error("cannot read {path}: {message}")]
    MissingFile { path: String, message: String },
    /// `config.json` is not valid JSON or its sizes are inconsistent.
    #[error("invalid encoder config {path}: {message}")]
    Config { path: String, message: String },
    /// The config names a model family graft does not run.
    #[error("unsupported architecture: {found} (graft runs BERT-layout encoders: model_type bert, roberta, xlm-roberta, camembert, with absolute positions)")]
    UnsupportedArchitecture { found: String },
    /// `hidden_act` is not one graft implements.
    #[error("unknown activation \"{found}\" in config.json (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)")]
    UnknownActivation { found: String },
    /// The weights file is corrupt, truncated or of an unknown format.
    #[error("cannot load weights from {path}: {message}")]
    Weights { path: String, message: String },
    /// A tensor the architecture needs is absent from the weights.
    #[error("the weights have no tensor {name} (looked for it with the prefixes \"\", \"bert.\", \"roberta.\")")]
    MissingTensor { name: String },
    /// A tensor has another shape than the config implies.
    #[error("tensor {name} has shape {found:?}, the config implies {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// The tokenizer file cannot be loaded or a text cannot be tokenised.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// No texts were given.
    #[error("no texts to encode: give at least one")]
    EmptyInput,
    /// A text is empty or only white space.
    #[error("text {index} is empty")]
    EmptyText { index: usize },
    /// More texts than one call may carry.
    #[error("{count} texts in one call; the limit is {limit}")]
    TooManyTexts { count: usize, limit: usize },
    /// A requested maximum length exceeds the model's position table.
    #[error("max length {requested} exceeds the model's {limit} positions")]
    MaxLength { requested: usize, limit: usize },
    /// An input built by a caller (ids, positions, visible matrix) is malformed.
    #[error("invalid encoder input: {0}")]
    Input(String),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl EncoderError {
    pub(crate) fn file(path: &Path, e: std::io::Error) -> Self {
        Self::MissingFile {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// A short machine-readable name for the error, for JSON error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingFile { .. } => "missing_file",
            Self::Config { .. } => "invalid_config",
            Self::UnsupportedArchitecture { .. } => "unsupported_architecture",
            Self::UnknownActivation { .. } => "unknown_activation",
            Self::Weights { .. } => "invalid_weights",
            Self::MissingTensor { .. } => "missing_tensor",
            Self::ShapeMismatch { .. } => "shape_mismatch",
            Self::Tokenizer(_) => "tokenizer",
            Self::EmptyInput => "empty_input",
            Self::EmptyText { .. } => "empty_text",
            Self::TooManyTexts { .. } => "too_many_texts",
            Self::MaxLength { .. } => "max_length",
            Self::Input(_) => "invalid_input",
            Self::Tensor(_) => "tensor",
        }
    }

    /// Whether the caller's input (not the model or the machine) is at fault.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::EmptyInput
                | Self::EmptyText { .. }
                | Self::TooManyTexts { .. }
                | Self::MaxLength { .. }
                | Self::Input(_)
        )
    }
}
