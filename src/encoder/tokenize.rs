//! The model's `tokenizer.json` (Hugging Face `tokenizers`), with the padding
//! and truncation baked into the file switched off: graft pads per batch
//! (dynamic padding) and truncates to its own maximum length.

use super::error::EncoderError;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// One tokenised text, special tokens included.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// Token ids, `[len]`.
    pub ids: Vec<u32>,
    /// Segment ids, `[len]`.
    pub type_ids: Vec<u32>,
    /// Each token's span in the text, in Unicode scalar offsets (start
    /// inclusive, end exclusive); `(0, 0)` for special tokens.
    pub offsets: Vec<(usize, usize)>,
    /// Whether tokens were cut to fit the maximum length.
    pub truncated: bool,
}

/// A loaded tokenizer with graft's padding and truncation settings.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without truncation, for pieces (kept, not cloned
    /// per call: a 250k-piece vocabulary costs milliseconds to clone).
    untruncated: Tokenizer,
    max_tokens: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; texts will be cut to `max_tokens` tokens,
    /// special tokens included.
    ///
    /// Errors: [`EncoderError::MissingFile`], [`EncoderError::Tokenizer`].
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self, EncoderError> {
        if !path.is_file() {
            return Err(EncoderError::MissingFile {
                path: path.display().to_string(),
                message: "no such file".into(),
            });
        }
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| EncoderError::Tokenizer(format!("{}: {e}", path.display())))?;
        inner.with_padding(None);
        let mut untruncated = inner.clone();
        untruncated
            .with_truncation(None)
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        let mut t = Self {
            inner,
            untruncated,
            max_tokens,
        };
        t.set_max_tokens(max_tokens)?;
        Ok(t)
    }

    /// Changes the maximum length (special tokens included).
    pub fn set_max_tokens(&mut self, max_tokens: usize) -> Result<(), EncoderError> {
        self.inner
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        self.max_tokens = max_tokens;
        Ok(())
    }

    /// The maximum length, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Tokenises each text (with the model's special tokens).
    ///
    /// Errors: [`EncoderError::Tokenizer`].
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Tokenized>, EncoderError> {
        texts.iter().map(|t| self.encode_one(t, true)).collect()
    }

    /// Tokenises a piece of text without special tokens and without
    /// truncation (for building fused inputs piece by piece).
    pub fn encode_piece(&self, text: &str) -> Result<Tokenized, EncoderError> {
        self.encode_one(text, false)
    }

    fn encode_one(&self, text: &str, special: bool) -> Result<Tokenized, EncoderError> {
        let enc = if special {
            self.inner.encode(text, true)
        } else {
            self.untruncated.encode(text, false)
        }
        .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        // The tokenizers crate reports byte offsets; graft speaks Unicode scalars.
        let scalar_at = byte_to_scalar_table(text);
        let offsets = enc
            .get_offsets()
            .iter()
            .map(|&(s, e)| (scalar_at(s), scalar_at(e)))
            .collect();
        Ok(Tokenized {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
            offsets,
            truncated: !enc.get_overflowing().is_empty(),
        })
    }

    /// The id of a token string (e.g. `[CLS]`, `<s>`), if in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// Maps a byte offset of `text` to its Unicode scalar offset (a byte inside a
/// character maps to that character).
fn byte_to_scalar_table(text: &str) -> impl Fn(usize) -> usize {
    let mut table = vec![0usize; text.len() + 1];
    let mut scalar = 0;
    for (i, b) in text.bytes().enumerate() {
        table[i] = scalar;
        // Continuation bytes (0b10xxxxxx) do not start a new scalar.
        if b & 0xC0 != 0x80 {
            table[i] = scalar;
            scalar += 1;
        } else {
            table[i] = scalar - 1;
        }
    }
    table[text.len()] = scalar;
    move |byte: usize| table[byte.min(table.len() - 1)]
}
