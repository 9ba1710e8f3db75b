//! Masked language modelling: BERT's pre-training head and its masking
//! (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
//! Transformers for Language Understanding", Sec. 3.1 "Task #1: Masked LM"
//! and Appendix A.1), for further pre-training an encoder on a task's own
//! texts before fine-tuning (Sun et al. 2019, "How to Fine-Tune BERT for
//! Text Classification?", Sec. 5.4 "within-task pre-training"; Gururangan
//! et al. 2020, "Don't Stop Pretraining", task-adaptive pre-training).
//!
//! The head is Hugging Face's `BertForMaskedLM` one: a dense layer, the
//! model's activation, a layer norm, then the output projection tied to the
//! word embeddings plus a bias per vocabulary entry.

use super::config::Activation;
use super::kernels::backward::LayerNormTrain;
use super::kernels::GeluErf;
use super::{EncoderConfig, EncoderError, TextTokenizer, Weights};
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;

/// Share of a text's tokens (special tokens excepted) chosen for
/// prediction: 15 % (Devlin et al. 2019, Sec. 3.1).
pub const MASK_RATE: f64 = 0.15;

/// The masked-LM head's tensor names, as `BertForMaskedLM` saves them;
/// `RobertaForMaskedLM`'s (`lm_head.*`) are read too.
const BERT_NAMES: [&str; 5] = [
    "cls.predictions.transform.dense.weight",
    "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.bias",
];
const ROBERTA_NAMES: [&str; 5] = [
    "lm_head.dense.weight",
    "lm_head.dense.bias",
    "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias",
    "lm_head.bias",
];

/// The masked-LM prediction head. Its parameters are variables, in the
/// order of the names [`Self::named_vars`] gives.
#[derive(Debug, Clone)]
pub struct MlmHead {
    vars: Vec<Var>,
    activation: Activation,
    eps: f32,
    /// Whether the parameters came from the checkpoint (else initialised).
    loaded: bool,
}

impl MlmHead {
    /// Takes the head out of a checkpoint's remaining tensors (BERT or
    /// RoBERTa names), or initialises one when the checkpoint has none
    /// (sentence-embedding models such as all-MiniLM and multilingual-e5 ship
    /// without it): dense weight N(0, 0.02) (BERT's initialiser range),
    /// layer norm γ = 1, β = 0, biases 0; drawn from `seed`.
    ///
    /// Errors: [`EncoderError::ShapeMismatch`] when a head tensor has
    /// another shape than the config implies; [`EncoderError::Input`] when
    /// the checkpoint has only part of a head.
    pub fn load_or_init(
        weights: &mut Weights,
        config: &EncoderConfig,
        seed: u64,
    ) -> Result<Self, EncoderError> {
        let (h, v) = (config.hidden_size, config.vocab_size);
        let shapes: [&[usize]; 5] = [&[h, h], &[h], &[h], &[h], &[v]];
        let activation = config.activation;
        let eps = config.layer_norm_eps as f32;
        for names in [BERT_NAMES, ROBERTA_NAMES] {
            let mut found: Vec<Option<Tensor>> = Vec::with_capacity(names.len());
            for n in names {
                // Old checkpoints (TensorFlow-converted BERT) name layer
                // norms' parameters gamma and beta.
                let old = n
                    .strip_suffix("LayerNorm.weight")
                    .map(|stem| format!("{stem}LayerNorm.gamma"))
                    .or_else(|| {
                        n.strip_suffix("LayerNorm.bias")
                            .map(|stem| format!("{stem}LayerNorm.beta"))
                    });
                let t = weights
                    .take_exact(n)
                    .or_else(|| old.and_then(|o| weights.take_exact(&o)));
                found.push(t);
            }
            let present = found.iter().filter(|t| t.is_some()).count();
            if present == 0 {
                continue;
            }
            if present < names.len() {
                return Err(EncoderError::Input(format!(
                    "{}: the masked-LM head is incomplete ({present} of {} tensors {}*)",
                    weights.source().display(),
                    names.len(),
                    names[0].split('.').next().unwrap_or_default()
                )));
            }
            let mut vars = Vec::with_capacity(5);
            for ((t, name), shape) in found.into_iter().zip(names).zip(shapes) {
                let t = t.expect("counted above").to_dtype(DType::F32)?;
                if t.dims() != shape {
                    return Err(EncoderError::ShapeMismatch {
                        name: name.to_string(),
                        expected: shape.to_vec(),
                        found: t.dims().to_vec(),
                    });
                }
                vars.push(Var::from_tensor(&t.contiguous()?)?);
            }
            return Ok(Self {
                vars,
                activation,
                eps,
                loaded: true,
            });
        }
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(seed);
        let normal: Vec<f32> = (0..h * h)
            .map(|_| {
                // Box–Muller from two uniforms.
                let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-12), rng.random());
                0.02 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
            })
            .collect();
        let dev = Device::Cpu;
        let vars = vec![
            Var::from_tensor(&Tensor::from_vec(normal, (h, h), &dev)?)?,
            Var::zeros(h, DType::F32, &dev)?,
            Var::from_tensor(&Tensor::ones(h, DType::F32, &dev)?)?,
            Var::zeros(h, DType::F32, &dev)?,
            Var::zeros(v, DType::F32, &dev)?,
        ];
        Ok(Self {
            vars,
            activation,
            eps,
            loaded: false,
        })
    }

    /// Whether the head came from the checkpoint (false: initialised).
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// The parameters with the names `BertForMaskedLM` saves them under.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        BERT_NAMES
            .iter()
            .map(|n| n.to_string())
            .zip(self.vars.iter().cloned())
            .collect()
    }

    /// Logits `[n, k]` for hidden states `[n, hidden]` (the masked
    /// positions only: the projection costs `n · hidden · k` multiply-adds).
    /// `projection` is the tied output projection, `[k, hidden]`: the whole
    /// word-embedding table (`k = vocab`), or its rows `output_ids` (`[k]`,
    /// u32) when the output is restricted to part of the vocabulary (then
    /// logit `j` is token `output_ids[j]`'s, and only those entries of the
    /// output bias are used). Detach the projection to keep it fixed.
    ///
    /// Errors: [`EncoderError::Tensor`] on mismatched shapes.
    pub fn logits(
        &self,
        hidden: &Tensor,
        projection: &Tensor,
        output_ids: Option<&Tensor>,
    ) -> Result<Tensor, EncoderError> {
        let t = |i: usize| self.vars[i].as_tensor();
        let x = hidden.matmul(&t(0).t()?)?.broadcast_add(t(1))?;
        let x = match self.activation {
            Activation::GeluErf => x.apply_op1(GeluErf)?,
            Activation::GeluTanh => x.gelu()?,
            Activation::Relu => x.relu()?,
        };
        let x = x
            .contiguous()?
            .apply_op3(t(2), t(3), LayerNormTrain { eps: self.eps })?;
        let bias = match output_ids {
            Some(ids) => t(4).index_select(ids, 0)?,
            None => t(4).clone(),
        };
        Ok(x.matmul(&projection.t()?)?.broadcast_add(&bias)?)
    }
}

/// How texts are masked: the `[MASK]` token, the tokens never chosen (the
/// tokenizer's special tokens) and the vocabulary to draw random
/// replacements from.
#[derive(Debug, Clone)]
pub struct Masker {
    mask_id: u32,
    special: std::collections::HashSet<u32>,
    vocab: u32,
    rate: f64,
}

/// One masked sequence: the input the encoder sees and what it must predict.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    /// Token ids with the chosen positions replaced, `[len]`.
    pub input_ids: Vec<u32>,
    /// The chosen positions (ascending) and their original token ids.
    pub targets: Vec<(usize, u32)>,
}

impl Masker {
    /// A masker for `tokenizer`'s vocabulary (`vocab`: the model's
    /// `vocab_size`; random replacements are drawn below it and below the
    /// tokenizer's own size), choosing `rate` of each text's tokens.
    ///
    /// Errors: [`EncoderError::Input`] when the tokenizer has no mask token
    /// (`[MASK]` or `<mask>`) or `rate` is not in (0, 1).
    pub fn new(tokenizer: &TextTokenizer, vocab: usize, rate: f64) -> Result<Self, EncoderError> {
        if !(rate > 0.0 && rate < 1.0) {
            return Err(EncoderError::Input(format!(
                "mask rate {rate}: give a share between 0 and 1 (BERT: 0.15)"
            )));
        }
        let mask_id = ["[MASK]", "<mask>"]
            .iter()
            .find_map(|t| tokenizer.token_id(t))
            .ok_or_else(|| {
                EncoderError::Input(
                    "the tokenizer has no mask token ([MASK] or <mask>): it cannot be used for masked-LM pre-training".into(),
                )
            })?;
        let special = tokenizer
            .inner()
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .chain(std::iter::once(mask_id))
            .collect();
        // Random replacements come from the ids the tokenizer can produce
        // (a model's table may have unused rows past them).
        let vocab = vocab.min(tokenizer.inner().get_vocab_size(true)) as u32;
        Ok(Self {
            mask_id,
            special,
            vocab,
            rate,
        })
    }

    /// Whether `id` is one of the tokenizer's special tokens.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }

    /// Chooses `rate` of the non-special tokens (rounded, at least one when
    /// there is any) and replaces each with `[MASK]` 80 % of the time, a
    /// random non-special token 10 %, and keeps it 10 % (Devlin et al. 2019,
    /// Sec. 3.1). New choices every call: dynamic masking (Liu et al. 2019,
    /// RoBERTa, Sec. 4.1).
    pub fn mask(&self, ids: &[u32], rng: &mut impl Rng) -> Masked {
        let mut candidates: Vec<usize> = (0..ids.len())
            .filter(|&i| !self.is_special(ids[i]))
            .collect();
        let n = ((candidates.len() as f64 * self.rate).round() as usize)
            .max(usize::from(!candidates.is_empty()));
        // A partial Fisher–Yates shuffle: the first n are a uniform choice.
        for i in 0..n {
            let j = rng.random_range(i..candidates.len());
            candidates.swap(i, j);
        }
        let mut chosen = candidates[..n].to_vec();
        chosen.sort_unstable();
        let mut input_ids = ids.to_vec();
        let targets = chosen
            .into_iter()
            .map(|i| {
                let r: f64 = rng.random();
                if r < 0.8 {
                    input_ids[i] = self.mask_id;
                } else if r < 0.9 {
                    input_ids[i] = loop {
                        let id = rng.random_range(0..self.vocab);
                        if !self.is_special(id) {
                            break id;
                        }
                    };
                }
                (i, ids[i])
            })
            .collect();
        Masked { input_ids, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A BERT config with a 10-token vocabulary and 4 hidden units.
    fn tiny_config() -> EncoderConfig {
        EncoderConfig::from_json(
            r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
                "num_attention_heads": 1, "intermediate_size": 8, "max_position_embeddings": 16,
                "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_head_saved_with_gamma_and_beta_is_loaded() {
        let config = tiny_config();
        let dev = Device::Cpu;
        let t = |shape: &[usize]| Tensor::ones(shape, DType::F32, &dev).unwrap();
        let p = "cls.predictions.";
        let tensors: HashMap<String, Tensor> = [
            (format!("{p}transform.dense.weight"), t(&[4, 4])),
            (format!("{p}transform.dense.bias"), t(&[4])),
            (format!("{p}transform.LayerNorm.gamma"), t(&[4])),
            (format!("{p}transform.LayerNorm.beta"), t(&[4])),
            (format!("{p}bias"), t(&[10])),
        ]
        .into_iter()
        .collect();
        let mut weights = Weights::from_tensors(tensors.clone(), "test".into());
        let head = MlmHead::load_or_init(&mut weights, &config, 1).unwrap();
        assert!(head.loaded());
        assert!(weights.into_tensors().is_empty(), "every head tensor taken");
        // Without its layer norm the head is incomplete: an error, not a new head.
        let mut partial = tensors;
        partial.retain(|k, _| !k.contains("LayerNorm"));
        let mut weights = Weights::from_tensors(partial, "test".into());
        let err = MlmHead::load_or_init(&mut weights, &config, 1).unwrap_err();
        assert!(err.to_string().contains("incomplete (3 of 5"), "{err}");
        // No head at all: a new one.
        let mut none = Weights::from_tensors(HashMap::new(), "test".into());
        assert!(!MlmHead::load_or_init(&mut none, &config, 1)
            .unwrap()
            .loaded());
    }

    #[test]
    fn a_restricted_output_gives_the_same_logits_as_those_columns_of_the_whole() {
        let config = tiny_config();
        let dev = Device::Cpu;
        let mut none = Weights::from_tensors(HashMap::new(), "test".into());
        let head = MlmHead::load_or_init(&mut none, &config, 5).unwrap();
        // A bias that differs per token, so picking the wrong entries shows.
        let bias = Tensor::arange(0f32, 10., &dev).unwrap();
        head.vars[4].set(&bias).unwrap();
        let hidden = Tensor::randn(0f32, 1., (3, 4), &dev).unwrap();
        let table = Tensor::randn(0f32, 1., (10, 4), &dev).unwrap();
        let whole = head.logits(&hidden, &table, None).unwrap();
        assert_eq!(whole.dims(), [3, 10]);
        let ids = Tensor::new(&[7u32, 2, 9], &dev).unwrap();
        let rows = table.index_select(&ids, 0).unwrap();
        let part = head.logits(&hidden, &rows, Some(&ids)).unwrap();
        assert_eq!(part.dims(), [3, 3]);
        let expected = whole.index_select(&ids, 1).unwrap();
        let diff = (part - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn masking_follows_bert_80_10_10() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
        let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), 512)
            .expect("models/all-MiniLM-L6-v2 (scripts/fetch-models.sh)");
        let masker = Masker::new(&tok, 30522, MASK_RATE).unwrap();
        let (cls, sep, mask) = (
            tok.token_id("[CLS]").unwrap(),
            tok.token_id("[SEP]").unwrap(),
            tok.token_id("[MASK]").unwrap(),
        );
        let ids: Vec<u32> = std::iter::once(cls)
            .chain(2000..2098)
            .chain(std::iter::once(sep))
            .collect();
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(7);
        let (mut masked, mut random, mut kept, mut total) = (0, 0, 0, 0);
        for _ in 0..400 {
            let m = masker.mask(&ids, &mut rng);
            // 15 % of the 98 ordinary tokens, never [CLS] or [SEP].
            assert_eq!(m.targets.len(), 15);
            assert_eq!((m.input_ids[0], m.input_ids[99]), (cls, sep));
            for &(i, original) in &m.targets {
                assert_eq!(original, ids[i]);
                total += 1;
                match m.input_ids[i] {
                    x if x == mask => masked += 1,
                    x if x == original => kept += 1,
                    x => {
                        assert!(!masker.is_special(x));
                        random += 1;
                    }
                }
            }
            let untouched = (0..ids.len()).filter(|i| !m.targets.iter().any(|t| t.0 == *i));
            for i in untouched {
                assert_eq!(m.input_ids[i], ids[i]);
            }
        }
        let share = |n: i32| n as f64 / total as f64;
        assert!((share(masked) - 0.8).abs() < 0.03, "{masked}/{total}");
        assert!((share(random) - 0.1).abs() < 0.02, "{random}/{total}");
        assert!((share(kept) - 0.1).abs() < 0.02, "{kept}/{total}");
        // A text of one ordinary token still gets a target.
        assert_eq!(masker.mask(&[cls, 2000, sep], &mut rng).targets.len(), 1);
        assert!(Masker::new(&tok, 30522, 0.0).is_err());
        assert!(Masker::new(&tok, 30522, 1.0).is_err());
    }
}
