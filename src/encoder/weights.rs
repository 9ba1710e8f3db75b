//! Reading a model's tensors from `model.safetensors` or PyTorch's
//! `pytorch_model.bin`, with the tensor names Hugging Face uses, with or
//! without a `bert.` / `roberta.` prefix, and shape checks that name the
//! tensor.

use super::error::EncoderError;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Weight files looked for in a model folder, in order.
pub const WEIGHT_FILES: &[&str] = &["model.safetensors", "pytorch_model.bin"];

/// Name prefixes a checkpoint may put before the encoder's tensors.
const PREFIXES: &[&str] = &["", "bert.", "roberta.", "model."];

/// The tensors of a checkpoint, all as f32 on the CPU.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
    source: PathBuf,
}

impl Weights {
    /// Loads the first of [`WEIGHT_FILES`] present in `dir`.
    ///
    /// Errors: [`EncoderError::MissingFile`] when none is there, else as
    /// [`Self::from_file`].
    pub fn from_dir(dir: &Path) -> Result<Self, EncoderError> {
        for name in WEIGHT_FILES {
            let path = dir.join(name);
            if path.is_file() {
                return Self::from_file(&path);
            }
        }
        Err(EncoderError::MissingFile {
            path: dir.join(WEIGHT_FILES[0]).display().to_string(),
            message: format!("no {} in the model folder", WEIGHT_FILES.join(" or ")),
        })
    }

    /// Loads one weights file: safetensors (by content, whatever its name) or
    /// a PyTorch pickle (`.bin`, `.pt`, `.pth`). Half-precision tensors are
    /// widened to f32.
    ///
    /// Errors: [`EncoderError::MissingFile`] when unreadable,
    /// [`EncoderError::Weights`] when corrupt or truncated.
    pub fn from_file(path: &Path) -> Result<Self, EncoderError> {
        let bytes = std::fs::read(path).map_err(|e| EncoderError::file(path, e))?;
        let bad = |message: String| EncoderError::Weights {
            path: path.display().to_string(),
            message,
        };
        let is_pickle = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("bin" | "pt" | "pth")
        );
        let raw: Vec<(String, Tensor)> = if is_pickle {
            drop(bytes);
            candle_core::pickle::read_all(path).map_err(|e| bad(e.to_string()))?
        } else {
            candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
                .map_err(|e| bad(e.to_string()))?
                .into_iter()
                .collect()
        };
        if raw.is_empty() {
            return Err(bad("no tensors in the file".into()));
        }
        let mut tensors = HashMap::with_capacity(raw.len());
        for (name, t) in raw {
            let t = match t.dtype() {
                DType::F32 => t,
                DType::F16 | DType::BF16 | DType::F64 => t.to_dtype(DType::F32)?,
                other => {
                    // Integer buffers (e.g. `position_ids`) are not weights.
                    if name.ends_with("position_ids") {
                        continue;
                    }
                    return Err(bad(format!(
                        "tensor {name} has dtype {other:?}, expected a float"
                    )));
                }
            };
            tensors.insert(name, t);
        }
        Ok(Self::from_tensors(tensors, path.to_path_buf()))
    }

    /// Wraps tensors already in memory (tests, a freshly initialised head).
    pub fn from_tensors(tensors: HashMap<String, Tensor>, source: PathBuf) -> Self {
        let prefix = PREFIXES
            .iter()
            .copied()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .unwrap_or("");
        Self {
            tensors,
            prefix,
            source,
        }
    }

    /// The file the tensors came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Removes and returns the encoder tensor `name` (without prefix),
    /// checking its shape. Layer norms saved as `gamma`/`beta` by old
    /// checkpoints are found under `weight`/`bias`.
    ///
    /// Errors: [`EncoderError::MissingTensor`], [`EncoderError::ShapeMismatch`].
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, EncoderError> {
        self.take_optional(name, shape)?
            .ok_or_else(|| EncoderError::MissingTensor { name: name.into() })
    }

    /// As [`Self::take`], but `Ok(None)` when the tensor is absent.
    pub fn take_optional(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<Tensor>, EncoderError> {
        let mut keys = vec![format!("{}{name}", self.prefix)];
        if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
            keys.push(format!("{}{stem}LayerNorm.gamma", self.prefix));
        } else if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
            keys.push(format!("{}{stem}LayerNorm.beta", self.prefix));
        }
        let Some(t) = keys.iter().find_map(|k| self.tensors.remove(k)) else {
            return Ok(None);
        };
        if t.dims() != shape {
            return Err(EncoderError::ShapeMismatch {
                name: keys[0].clone(),
                expected: shape.to_vec(),
                found: t.dims().to_vec(),
            });
        }
        Ok(Some(t))
    }

    /// Every tensor left, by its name in the file.
    pub fn into_tensors(self) -> HashMap<String, Tensor> {
        self.tensors
    }

    /// Removes and returns a tensor by its full name (no prefix applied),
    /// e.g. a classifier head's `classifier.weight`.
    pub fn take_exact(&mut self, name: &str) -> Option<Tensor> {
        self.tensors.remove(name)
    }
}
