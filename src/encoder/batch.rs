//! Encoder inputs: one [`Sequence`] per text, padded together into a
//! [`Batch`] of tensors (dynamic padding: to the longest sequence of the
//! batch, not to a fixed length).

use super::config::EncoderConfig;
use super::error::EncoderError;
use super::kernels::MASKED;
use candle_core::{Device, Tensor};

/// One input sequence, special tokens included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sequence {
    /// Token ids, `[len]`.
    pub input_ids: Vec<u32>,
    /// Segment ids, `[len]` (0 for the first segment, 1 for the second).
    pub token_type_ids: Vec<u32>,
    /// Position ids counted from 0, `[len]`; `None` means `0..len`. K-BERT's
    /// soft positions go here (a branch continues from its entity's
    /// position). The model adds the family's offset (RoBERTa: `pad + 1`).
    pub position_ids: Option<Vec<u32>>,
    /// The visible matrix, `[len × len]` row-major: `visible[i * len + j]`
    /// says whether token `i` may attend to token `j`. `None` means every
    /// token sees every token (plain BERT).
    pub visible: Option<Vec<bool>>,
}

impl Sequence {
    /// A plain sequence: segment 0, positions `0..len`, all visible.
    pub fn plain(input_ids: Vec<u32>) -> Self {
        let len = input_ids.len();
        Self {
            input_ids,
            token_type_ids: vec![0; len],
            position_ids: None,
            visible: None,
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether the sequence has no tokens.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// A padded batch, ready for [`super::BertModel::forward`].
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch, seq]` u32.
    pub input_ids: Tensor,
    /// `[batch, seq]` u32.
    pub token_type_ids: Tensor,
    /// `[batch, seq]` u32, the family's offset already added.
    pub position_ids: Tensor,
    /// Additive attention bias, f32: `[batch, 1, seq]` when every sequence is
    /// all-visible (the padding mask), else `[batch, seq, seq]` (the visible
    /// matrices); 0 where attention is allowed, [`MASKED`] where not.
    pub attention_bias: Tensor,
    /// `[batch, seq]` f32: 1 for real tokens, 0 for padding (for pooling).
    pub padding_mask: Tensor,
    /// Real length of each sequence.
    pub lengths: Vec<usize>,
}

impl Batch {
    /// Pads `sequences` to the longest one and checks every id against the
    /// config.
    ///
    /// Errors: [`EncoderError::EmptyInput`] for no sequences;
    /// [`EncoderError::Input`] for an empty sequence, mismatched lengths, a
    /// token, segment or position id out of the model's tables, or a visible
    /// matrix of the wrong size.
    pub fn new(sequences: &[Sequence], config: &EncoderConfig) -> Result<Self, EncoderError> {
        Self::build(sequences, config, false)
    }

    /// As [`Self::new`] but always with the `[batch, seq, seq]` bias, even
    /// when every sequence is all-visible (tests compare both paths).
    pub fn new_with_full_mask(
        sequences: &[Sequence],
        config: &EncoderConfig,
    ) -> Result<Self, EncoderError> {
        Self::build(sequences, config, true)
    }

    fn build(
        sequences: &[Sequence],
        config: &EncoderConfig,
        force_full: bool,
    ) -> Result<Self, EncoderError> {
        if sequences.is_empty() {
            return Err(EncoderError::EmptyInput);
        }
        let batch = sequences.len();
        let seq = sequences.iter().map(Sequence::len).max().unwrap_or(0);
        let offset = config.position_offset();
        let full = force_full || sequences.iter().any(|s| s.visible.is_some());
        let mut ids = vec![config.pad_token_id; batch * seq];
        let mut types = vec![0u32; batch * seq];
        let mut positions = vec![offset; batch * seq];
        let mut padding = vec![0f32; batch * seq];
        let bias_rows = if full { seq } else { 1 };
        let mut bias = vec![MASKED; batch * bias_rows * seq];
        for (b, s) in sequences.iter().enumerate() {
            validate(b, s, config)?;
            let len = s.len();
            let row = b * seq;
            ids[row..row + len].copy_from_slice(&s.input_ids);
            types[row..row + len].copy_from_slice(&s.token_type_ids);
            for i in 0..len {
                positions[row + i] = offset + s.position_ids.as_ref().map_or(i as u32, |p| p[i]);
                padding[row + i] = 1.0;
            }
            let block = &mut bias[b * bias_rows * seq..(b + 1) * bias_rows * seq];
            for q in 0..bias_rows {
                let out = &mut block[q * seq..q * seq + len];
                match &s.visible {
                    Some(v) if q < len => {
                        for (k, o) in out.iter_mut().enumerate() {
                            *o = if v[q * len + k] { 0.0 } else { MASKED };
                        }
                    }
                    _ => out.fill(0.0),
                }
            }
        }
        let dev = Device::Cpu;
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (batch, seq), &dev)?,
            token_type_ids: Tensor::from_vec(types, (batch, seq), &dev)?,
            position_ids: Tensor::from_vec(positions, (batch, seq), &dev)?,
            attention_bias: Tensor::from_vec(bias, (batch, bias_rows, seq), &dev)?,
            padding_mask: Tensor::from_vec(padding, (batch, seq), &dev)?,
            lengths: sequences.iter().map(Sequence::len).collect(),
        })
    }

    /// Number of sequences.
    pub fn size(&self) -> usize {
        self.lengths.len()
    }
}

fn validate(index: usize, s: &Sequence, config: &EncoderConfig) -> Result<(), EncoderError> {
    let len = s.len();
    let err = |m: String| Err(EncoderError::Input(format!("sequence {index}: {m}")));
    if len == 0 {
        return err("no tokens".into());
    }
    if len > config.max_tokens() {
        return err(format!(
            "{len} tokens, the model has {} positions",
            config.max_tokens()
        ));
    }
    if s.token_type_ids.len() != len {
        return err(format!(
            "{} token type ids for {len} tokens",
            s.token_type_ids.len()
        ));
    }
    if let Some(id) = s
        .input_ids
        .iter()
        .find(|&&id| id as usize >= config.vocab_size)
    {
        return err(format!(
            "token id {id} outside the vocabulary of {}",
            config.vocab_size
        ));
    }
    if let Some(t) = s
        .token_type_ids
        .iter()
        .find(|&&t| t as usize >= config.type_vocab_size)
    {
        return err(format!(
            "token type {t} outside the model's {} segment types",
            config.type_vocab_size
        ));
    }
    if let Some(p) = &s.position_ids {
        if p.len() != len {
            return err(format!("{} position ids for {len} tokens", p.len()));
        }
        if let Some(pos) = p.iter().find(|&&pos| pos as usize >= config.max_tokens()) {
            return err(format!(
                "position {pos} outside the model's {} positions",
                config.max_tokens()
            ));
        }
    }
    if let Some(v) = &s.visible {
        if v.len() != len * len {
            return err(format!(
                "visible matrix has {} cells, expected {len}×{len}",
                v.len()
            ));
        }
    }
    Ok(())
}
