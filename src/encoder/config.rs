//! The encoder's `config.json`, as Hugging Face transformers writes it, and
//! which of its architectures graft runs.

use super::error::EncoderError;
use serde::Deserialize;
use std::path::Path;

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: x·Φ(x) with the exact erf (BERT, MiniLM, multilingual-e5).
    GeluErf,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// The model families that share BERT's weight layout and that graft runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `model_type = "bert"`: BERT, all-MiniLM, multilingual-e5, Chinese BERTs.
    /// Positions count from 0.
    Bert,
    /// `model_type = "roberta" | "xlm-roberta" | "camembert"`: positions count
    /// from `pad_token_id + 1` (fairseq's offset), so `max_position_embeddings`
    /// holds `pad_token_id + 1` unused rows.
    Roberta,
}

/// `model_type` values accepted by [`EncoderConfig::from_file`].
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["bert", "roberta", "xlm-roberta", "camembert"];

#[derive(Debug, Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: serde_json::Value,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    hidden_dropout_prob: Option<f64>,
    #[serde(default)]
    attention_probs_dropout_prob: Option<f64>,
}

fn default_act() -> serde_json::Value {
    serde_json::Value::String("gelu".into())
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// A validated encoder configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// The model family (decides the position offset).
    pub family: Family,
    /// The `model_type` string as written.
    pub model_type: String,
    /// Rows of the word-piece embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_layers: usize,
    /// Attention heads per layer; `hidden_size` must divide evenly.
    pub num_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Rows of the position embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type (segment) table; 1 for RoBERTa-style models.
    pub type_vocab_size: usize,
    /// ε of every layer norm.
    pub layer_norm_eps: f64,
    /// The padding token id.
    pub pad_token_id: u32,
    /// Dropout on hidden states during training.
    pub hidden_dropout: f32,
    /// Dropout on attention probabilities during training.
    pub attention_dropout: f32,
    /// The file's own text, kept so a saved model folder carries it unchanged.
    pub raw: serde_json::Value,
}

impl EncoderConfig {
    /// Reads and validates `config.json`.
    ///
    /// Errors: [`EncoderError::MissingFile`], [`EncoderError::Config`] for
    /// unreadable JSON or inconsistent sizes,
    /// [`EncoderError::UnsupportedArchitecture`] for a `model_type` outside
    /// [`SUPPORTED_MODEL_TYPES`] or relative position embeddings,
    /// [`EncoderError::UnknownActivation`].
    pub fn from_file(path: &Path) -> Result<Self, EncoderError> {
        let text = std::fs::read_to_string(path).map_err(|e| EncoderError::file(path, e))?;
        Self::from_json(&text).map_err(|e| match e {
            EncoderError::Config { message, .. } => EncoderError::Config {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates the text of a `config.json`; see [`Self::from_file`].
    pub fn from_json(text: &str) -> Result<Self, EncoderError> {
        let config_err = |message: String| EncoderError::Config {
            path: "config.json".into(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| config_err(e.to_string()))?;
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| config_err(e.to_string()))?;
        let model_type = raw
            .model_type
            .clone()
            .or_else(|| {
                raw.architectures
                    .first()
                    .filter(|a| a.starts_with("Bert"))
                    .map(|_| "bert".to_string())
            })
            .unwrap_or_default();
        let family = match model_type.as_str() {
            "bert" => Family::Bert,
            "roberta" | "xlm-roberta" | "camembert" => Family::Roberta,
            _ => {
                return Err(EncoderError::UnsupportedArchitecture {
                    found: if model_type.is_empty() {
                        format!("architectures {:?}", raw.architectures)
                    } else {
                        model_type
                    },
                })
            }
        };
        if let Some(kind) = raw.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return Err(EncoderError::UnsupportedArchitecture {
                    found: format!("{model_type} with position_embedding_type \"{kind}\""),
                });
            }
        }
        let activation = match &raw.hidden_act {
            serde_json::Value::String(name) => {
                Activation::parse(name).ok_or_else(|| EncoderError::UnknownActivation {
                    found: name.clone(),
                })?
            }
            other => {
                return Err(EncoderError::UnknownActivation {
                    found: other.to_string(),
                })
            }
        };
        if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads)
        {
            return Err(config_err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            )));
        }
        for (name, v) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("intermediate_size", raw.intermediate_size),
            ("max_position_embeddings", raw.max_position_embeddings),
            ("type_vocab_size", raw.type_vocab_size),
        ] {
            if v == 0 {
                return Err(config_err(format!("{name} must be positive")));
            }
        }
        let pad_token_id = raw.pad_token_id.unwrap_or(match family {
            Family::Bert => 0,
            Family::Roberta => 1,
        });
        let config = Self {
            family,
            model_type,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            activation,
            max_position_embeddings: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size,
            layer_norm_eps: raw.layer_norm_eps,
            pad_token_id,
            hidden_dropout: raw.hidden_dropout_prob.unwrap_or(0.1) as f32,
            attention_dropout: raw.attention_probs_dropout_prob.unwrap_or(0.1) as f32,
            raw: value,
        };
        if config.max_tokens() == 0 {
            return Err(config_err(format!(
                "max_position_embeddings {} leaves no positions after the offset {}",
                config.max_position_embeddings,
                config.position_offset()
            )));
        }
        Ok(config)
    }

    /// The first position id: 0 for BERT, `pad_token_id + 1` for RoBERTa.
    pub fn position_offset(&self) -> u32 {
        match self.family {
            Family::Bert => 0,
            Family::Roberta => self.pad_token_id + 1,
        }
    }

    /// The longest input, in tokens (special tokens included), that the
    /// position table can hold.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.position_offset() as usize)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"architectures":["BertModel"],"model_type":"bert","vocab_size":30522,
        "hidden_size":384,"num_hidden_layers":6,"num_attention_heads":12,"intermediate_size":1536,
        "hidden_act":"gelu","max_position_embeddings":512,"type_vocab_size":2,"layer_norm_eps":1e-12,
        "pad_token_id":0,"position_embedding_type":"absolute"}"#;

    #[test]
    fn reads_a_bert_config() {
        let c = EncoderConfig::from_json(MINILM).unwrap();
        assert_eq!(c.family, Family::Bert);
        assert_eq!((c.hidden_size, c.num_heads, c.head_dim()), (384, 12, 32));
        assert_eq!(c.activation, Activation::GeluErf);
        assert_eq!((c.position_offset(), c.max_tokens()), (0, 512));
    }

    #[test]
    fn roberta_positions_start_after_the_padding_id() {
        let text = MINILM
            .replace("\"bert\"", "\"xlm-roberta\"")
            .replace("512", "514")
            .replace("\"pad_token_id\":0", "\"pad_token_id\":1");
        let c = EncoderConfig::from_json(&text).unwrap();
        assert_eq!((c.position_offset(), c.max_tokens()), (2, 512));
    }

    #[test]
    fn rejects_unknown_activation_and_architecture() {
        let bad = MINILM.replace("\"gelu\"", "\"swish-ish\"");
        assert!(matches!(
            EncoderConfig::from_json(&bad),
            Err(EncoderError::UnknownActivation { found }) if found == "swish-ish"
        ));
        let gpt = MINILM.replace("\"bert\"", "\"gpt2\"");
        assert!(matches!(
            EncoderConfig::from_json(&gpt),
            Err(EncoderError::UnsupportedArchitecture { found }) if found == "gpt2"
        ));
        let rel = MINILM.replace("\"absolute\"", "\"relative_key\"");
        assert!(matches!(
            EncoderConfig::from_json(&rel),
            Err(EncoderError::UnsupportedArchitecture { .. })
        ));
        let heads = MINILM.replace("\"num_attention_heads\":12", "\"num_attention_heads\":7");
        assert!(matches!(
            EncoderConfig::from_json(&heads),
            Err(EncoderError::Config { .. })
        ));
        assert!(matches!(
            EncoderConfig::from_json("{not json"),
            Err(EncoderError::Config { .. })
        ));
    }
}
