//! Fine-tuning: a linear head on the pooled encoder vector, trained with
//! AdamW (Loshchilov & Hutter 2019), linear warm-up then linear decay of the
//! learning rate, gradient clipping by global norm, class-balanced loss
//! weights, early stopping on dev macro-F1 with the best checkpoint kept.
//!
//! Two regimes:
//! - **frozen encoder** (`freeze_encoder`): every input is encoded once
//!   (fused inference kernels) and only the head trains: minutes on a CPU;
//! - **full fine-tuning**: every weight trains through the encoder's
//!   differentiable tensor path, with dropout;
//! - **top layers only** (`train_layers`): the head and the top N transformer
//!   layers train; the embeddings and the layers below stay as they are, so
//!   their output is computed once per input (fused inference kernels) and
//!   kept in memory (`examples × tokens × hidden` f32), and each step runs
//!   and differentiates only the top N layers. Freezing the lower layers is
//!   the "freeze the bottom layers" regime of Sun et al. 2019 ("How to
//!   Fine-Tune BERT for Text Classification") and of ULMFiT-style gradual
//!   unfreezing (Howard & Ruder 2018); for a 250k-token vocabulary (the
//!   multilingual encoders) it also spares the embedding matrix's gradient
//!   and optimiser state.
//!
//! With `group_by_length`, an epoch's batches hold examples of similar
//! length (shuffled, then sorted by length inside groups of 50 batches,
//! then the batches shuffled; after Hugging Face's `group_by_length`, which
//! keeps the groups' order), so little of a batch is padding.
//!
//! Deterministic under a seed on one machine: the head's initial weights,
//! the shuffling and the dropout masks all come from seeded generators.
//!
//! Resumable (`checkpoint_dir`): after every epoch, and every `save_steps`
//! optimizer steps inside one, the run's state is saved
//! ([`super::checkpoint`]); a run started again with the same settings and
//! data goes on after the last saved step and ends with the same weights
//! as a run that never stopped.

use super::checkpoint::{save_due, Best, Checkpoint, InEpoch, RngState, TrainState, STATE_FORMAT};
use super::data::Example;
use super::folder::{check_out, write_staged};
use super::metrics::{evaluate, Metrics};
use super::model::{
    decide, Classifier, ClassifierError, EncoderCard, GraphCard, ModelCard, CARD_FORMAT,
};
use super::optim::{GroupedAdamW, OptimError};
use crate::encoder::{map_batches, Batch, Encoder, Mode, Pooling, Sequence};
use crate::fusion::{FusedInput, Fuser, FusionLimits, FusionMode, Injection};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::ParamsAdamW;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything `graft train` is configured with.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The base encoder folder.
    pub base: PathBuf,
    /// Where the trained folder goes.
    pub out: PathBuf,
    pub fusion: FusionMode,
    pub limits: FusionLimits,
    pub pooling: Pooling,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Share of all steps spent warming the learning rate up from 0.
    pub warmup: f64,
    /// AdamW's decoupled weight decay, on weight matrices only (see
    /// [`super::optim`]).
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay ξ in (0, 1]: layer `i` of `L` trains
    /// at ξ^(L−1−i) of the rate, the embeddings at ξ^L (see
    /// [`super::optim`]); 1 = off.
    pub layer_lr_decay: f64,
    pub seed: u64,
    pub freeze_encoder: bool,
    /// Fine-tune only the top N transformer layers (and the head); `None`
    /// trains every layer (unless `freeze_encoder`). Must be 1..=layers.
    pub train_layers: Option<usize>,
    /// Batch examples of similar length together (see the module doc).
    pub group_by_length: bool,
    /// Epochs without a better dev macro-F1 before stopping.
    pub patience: usize,
    /// Largest global gradient norm (larger gradients are scaled down).
    pub clip_norm: f64,
    /// Weight each class's loss by n / (classes × n_class).
    pub balanced: bool,
    pub multi_label: bool,
    /// Dropout on the pooled vector before the head.
    pub head_dropout: f32,
    /// Label smoothing ε in [0, 1) (Szegedy et al. 2016, "Rethinking the
    /// Inception Architecture for Computer Vision", §7): the single-label
    /// target puts 1 − ε on the gold label and ε / labels on every label;
    /// a multi-label target is y (1 − ε) + ε / 2 per label. 0 = off. Meant
    /// for training sets with some wrong labels (the loss of a confident
    /// wrong prediction is bounded). Checked by [`check_label_smoothing`].
    pub label_smoothing: f64,
    /// With a frozen encoder: keep the encoded vectors in this folder, keyed
    /// by a hash of the encoder and the inputs, so runs that differ only in
    /// head settings or seed encode once.
    pub feature_cache: Option<PathBuf>,
    /// Save the run's state here after every epoch (and every
    /// `save_steps` steps) and, when it already holds this run's state,
    /// resume from it (see [`super::checkpoint`]); deleted once the model
    /// folder is written.
    pub checkpoint_dir: Option<PathBuf>,
    /// With `checkpoint_dir`: also save the state after every this many
    /// optimizer steps inside an epoch, so a stopped run loses at most that
    /// many (0: at epoch ends only). It does not change the result, and a
    /// run may resume with another value.
    pub save_steps: usize,
}

/// One epoch's record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub dev_accuracy: f64,
    pub dev_macro_f1: f64,
    pub examples_per_s: f64,
    pub seconds: f64,
}

/// Progress of training, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Inputs being built and (frozen) encoded: done of total.
    Preparing { done: usize, total: usize },
    /// One optimisation step: epoch, step of steps, the batch's loss, examples/s.
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
        examples_per_s: f64,
    },
    /// An epoch ended.
    Epoch(EpochRecord),
    /// Training goes on from a saved state after `epochs_done` of `epochs`
    /// and `steps_done` steps of the next one (`stopped`: early stopping
    /// had already ended it).
    Resumed {
        epochs_done: usize,
        steps_done: usize,
        epochs: usize,
        stopped: bool,
    },
    /// The state was saved inside `epoch`, after `step` of its `steps`
    /// steps (`save_steps`; the saves at epoch ends are not reported).
    Saved {
        epoch: usize,
        step: usize,
        steps: usize,
    },
    /// A pass of masked-LM pre-training ended ([`super::pretrain`]).
    Pretrain(super::pretrain::PretrainEpoch),
    /// The frozen encoder's vectors of `vectors` inputs were read from
    /// (`read`) or written to the feature cache file `path`.
    FeatureCache {
        path: std::path::PathBuf,
        vectors: usize,
        read: bool,
    },
}

/// Labelled examples with their fused inputs.
pub struct Prepared {
    pub inputs: Vec<FusedInput>,
    /// Label indexes per example.
    pub targets: Vec<Vec<usize>>,
}

/// The facts of a text for fusion: given the text and the parts of it the
/// input keeps (Unicode scalar ranges, [`Fuser::kept_spans`]), the
/// injections of the entities linked in those parts, or a message.
pub type Knowledge =
    dyn Fn(&str, &[std::ops::Range<usize>]) -> Result<Vec<Injection>, String> + Sync;

/// Builds fused inputs for examples. `knowledge` gives the facts of a text.
pub fn prepare(
    encoder: &Encoder,
    fuser: &Fuser,
    labels: &[String],
    examples: &[Example],
    knowledge: &Knowledge,
    progress: &dyn Fn(Progress),
) -> Result<Prepared, ClassifierError> {
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut inputs = Vec::with_capacity(examples.len());
    let mut targets = Vec::with_capacity(examples.len());
    for (i, e) in examples.iter().enumerate() {
        let cut = fuser.cut(encoder.tokenizer(), &e.text)?;
        let facts = if fuser.mode() == FusionMode::None {
            Vec::new()
        } else {
            knowledge(&e.text, cut.spans()).map_err(ClassifierError::Other)?
        };
        inputs.push(fuser.build_cut(encoder.tokenizer(), &cut, &facts)?);
        targets.push(
            e.labels
                .iter()
                .filter_map(|l| index.get(l.as_str()).copied())
                .collect(),
        );
        if i % 256 == 0 {
            progress(Progress::Preparing {
                done: i,
                total: examples.len(),
            });
        }
    }
    Ok(Prepared { inputs, targets })
}

/// Share of inputs that got at least one fact.
pub fn coverage(p: &Prepared) -> f64 {
    if p.inputs.is_empty() {
        return 0.0;
    }
    p.inputs.iter().filter(|i| !i.injected.is_empty()).count() as f64 / p.inputs.len() as f64
}

/// Inputs whose text was cut to fit (see [`crate::fusion::Truncation`]).
pub fn truncated(p: &Prepared) -> usize {
    p.inputs.iter().filter(|i| i.truncated).count()
}

fn class_weights(labels: usize, targets: &[Vec<usize>], balanced: bool) -> Vec<f32> {
    if !balanced {
        return vec![1.0; labels];
    }
    let mut counts = vec![0usize; labels];
    for t in targets {
        for &l in t {
            counts[l] += 1;
        }
    }
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                n as f32 / (labels as f32 * c as f32)
            }
        })
        .collect()
}

/// Why a label smoothing value was refused: it must be finite, at least 0
/// and below 1.
#[derive(Debug, thiserror::Error)]
#[error("--label-smoothing {0}: give a value from 0 up to (not including) 1, e.g. 0.1")]
pub struct LabelSmoothingError(pub f64);

/// Checks a label smoothing ε ([`TrainOptions::label_smoothing`]).
///
/// # Errors
/// [`LabelSmoothingError`] unless 0 ≤ ε < 1.
pub fn check_label_smoothing(epsilon: f64) -> Result<(), LabelSmoothingError> {
    if (0.0..1.0).contains(&epsilon) {
        Ok(())
    } else {
        Err(LabelSmoothingError(epsilon))
    }
}

/// Loss of logits `[batch, labels]` against targets smoothed by `epsilon`
/// ([`TrainOptions::label_smoothing`]): weighted cross-entropy
/// (single-label: each example weighted by its gold label's weight, the
/// sum divided by the sum of those weights) or weighted binary
/// cross-entropy per label (multi-label). A scalar tensor. With smoothing,
/// an example's whole smoothed term takes its gold label's weight; PyTorch's
/// `CrossEntropyLoss(weight, label_smoothing)` instead weights the smoothing
/// part label by label. At `epsilon` 0 the two agree.
fn loss(
    logits: &Tensor,
    targets: &[Vec<usize>],
    weights: &[f32],
    multi_label: bool,
    epsilon: f32,
) -> candle_core::Result<Tensor> {
    let (b, n) = logits.dims2()?;
    let dev = logits.device();
    let mut onehot = vec![0f32; b * n];
    for (i, t) in targets.iter().enumerate() {
        for &l in t {
            onehot[i * n + l] = 1.0;
        }
    }
    let y = Tensor::from_vec(onehot, (b, n), dev)?;
    let w = Tensor::from_vec(weights.to_vec(), (1, n), dev)?;
    if multi_label {
        let y = ((&y * (1.0 - epsilon as f64))? + epsilon as f64 / 2.0)?;
        // BCE with logits, stable: max(x,0) - x*y + log(1 + exp(-|x|)).
        let l =
            ((logits.relu()? - (logits * &y)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        return l.broadcast_mul(&w)?.mean_all();
    }
    let example_w = y.broadcast_mul(&w)?.sum(D::Minus1)?; // [b]
    let smoothed = ((&y * (1.0 - epsilon as f64))? + epsilon as f64 / n as f64)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let per = (logp * &smoothed)?.sum(D::Minus1)?.neg()?; // [b]
    (per * &example_w)?.sum_all()?.div(&example_w.sum_all()?)
}

/// Learning rate at `step` of `total`: linear warm-up, then linear decay to 0.
pub fn schedule(peak: f64, warmup: f64, step: usize, total: usize) -> f64 {
    let warm = ((total as f64) * warmup).round().max(1.0);
    let s = step as f64 + 1.0;
    if s <= warm {
        peak * s / warm
    } else {
        peak * ((total as f64 - s) / (total as f64 - warm).max(1.0)).max(0.0)
    }
}

pub(crate) fn clip(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[Var],
    max_norm: f64,
) -> candle_core::Result<f64> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.remove(v) {
                grads.insert(v, (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// What [`train`] returns: the card written and the best epoch's dev scores.
pub struct Trained {
    pub card: ModelCard,
    pub dev: Metrics,
    /// The checkpoint folder (with `checkpoint_dir`), still there: remove it
    /// ([`Checkpoint::remove`]) once what follows training (a test
    /// evaluation written into the card) is done, so a run stopped before
    /// that resumes without training again.
    pub checkpoint: Option<Checkpoint>,
}

/// Trains a classifier and writes its folder to `opts.out`.
///
/// `graph`: the generation and predicates of the graph facts came from.
/// `data_info`: hashes and paths of the data files, recorded in the card.
#[allow(clippy::too_many_arguments)]
pub fn train(
    opts: &TrainOptions,
    labels: &[String],
    train_examples: &[Example],
    dev_examples: &[Example],
    knowledge: &Knowledge,
    graph: Option<(u64, Vec<String>)>,
    data_info: serde_json::Value,
    progress: &dyn Fn(Progress),
) -> Result<Trained, ClassifierError> {
    check_out(
        &opts.base,
        &opts.out,
        "graft.json",
        "a graft model folder",
        "training",
    )?;
    super::optim::check_layer_decay(opts.layer_lr_decay).map_err(OptimError::from)?;
    check_label_smoothing(opts.label_smoothing)?;
    let trainable = !opts.freeze_encoder;
    if opts.freeze_encoder && opts.train_layers.is_some() {
        return Err(ClassifierError::Other(
            "--train-layers fine-tunes part of the encoder; it cannot be combined with --freeze-encoder".into(),
        ));
    }
    // The settings that decide the result, recorded in graft.json and, with
    // the base encoder, the labels, fusion and the graph, identifying the
    // run for a checkpoint.
    let settings = serde_json::json!({
        "data": data_info,
        "epochs": opts.epochs, "batch_size": opts.batch_size,
        "lr": opts.lr, "warmup": opts.warmup, "weight_decay": opts.weight_decay,
        "weight_decay_excludes": ["bias", "LayerNorm"], "layer_lr_decay": opts.layer_lr_decay,
        "seed": opts.seed, "patience": opts.patience, "clip_norm": opts.clip_norm,
        "class_weights": if opts.balanced { "balanced" } else { "none" },
        "head_dropout": opts.head_dropout, "label_smoothing": opts.label_smoothing,
        "train_layers": opts.train_layers, "group_by_length": opts.group_by_length,
        "truncation": opts.limits.truncation,
        "freeze_encoder": opts.freeze_encoder,
    });
    // The folder is checked now; its state once the inputs are built (they
    // are part of what identifies the run).
    let checkpoint = match &opts.checkpoint_dir {
        Some(dir) => {
            let mut others = vec![
                ("--out", opts.out.as_path()),
                ("--model", opts.base.as_path()),
            ];
            if let Some(cache) = &opts.feature_cache {
                others.push(("--feature-cache", cache.as_path()));
            }
            super::checkpoint::check_apart(dir, &others)?;
            Some(Checkpoint::open(dir)?)
        }
        None => None,
    };
    let (mut encoder, _) = Encoder::load_with_weights(&opts.base, trainable)?;
    encoder.set_max_tokens(opts.limits.max_tokens)?;
    let n_layers = encoder.config().num_layers;
    // With --train-layers, the first layer that trains (the embeddings and
    // the layers below it are frozen; `Some(0)`: every layer but the
    // embeddings). `None`: everything trains.
    let first_trained = match opts.train_layers {
        None => None,
        Some(k) if (1..=n_layers).contains(&k) => Some(n_layers - k),
        Some(k) => {
            return Err(ClassifierError::Other(format!(
                "--train-layers {k}: {} has {n_layers} layers; give 1 to {n_layers}",
                opts.base.display()
            )))
        }
    };
    encoder.model().set_seed(opts.seed);
    let fuser = Fuser::new(encoder.tokenizer(), opts.fusion, opts.limits)?;
    let train_set = prepare(
        &encoder,
        &fuser,
        labels,
        train_examples,
        knowledge,
        progress,
    )?;
    let dev_set = prepare(&encoder, &fuser, labels, dev_examples, knowledge, progress)?;
    // The base's files by content (about a second for 470 MB), once, for
    // the checkpoint's identity and the feature cache's key.
    let base_digest = (checkpoint.is_some() || (!trainable && opts.feature_cache.is_some()))
        .then(|| base_files(&opts.base));
    let checkpoint = match checkpoint {
        Some(checkpoint) => {
            // Where the data files and the base were read from is not the
            // run's identity (their SHA-256 is), so they may be given by
            // another path.
            let mut training = settings.clone();
            for set in ["train", "dev"] {
                if let Some(d) = training["data"][set].as_object_mut() {
                    d.remove("file");
                }
            }
            let run = serde_json::json!({
                "command": "train",
                "base_files": base_digest.clone().expect("hashed when there is a checkpoint"),
                "labels": labels, "multi_label": opts.multi_label,
                "fusion": opts.fusion, "fusion_limits": opts.limits, "pooling": opts.pooling,
                "graph": graph,
                "training": training,
                // The inputs as built (ids, positions, visible matrices,
                // targets): facts from another graph or link setting, or
                // another tokenizer, make another run.
                "inputs": {"train": inputs_digest(&train_set), "dev": inputs_digest(&dev_set)},
            });
            let state = checkpoint.state(&run)?;
            Some((checkpoint, run, state))
        }
        None => None,
    };
    let hidden = encoder.config().hidden_size;
    let n_labels = labels.len();
    let dev = Device::Cpu;
    // ChaCha12: `StdRng`'s stream, with a position that can be saved.
    let mut rng = ChaCha12Rng::seed_from_u64(opts.seed);
    // Head: N(0, 0.02) weights (BERT's initialiser range), zero bias.
    let init: Vec<f32> = {
        use rand::Rng;
        (0..n_labels * hidden)
            .map(|_| {
                // Box–Muller from two uniforms.
                let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-12), rng.random());
                0.02 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
            })
            .collect()
    };
    let head_w = Var::from_tensor(&Tensor::from_vec(init, (n_labels, hidden), &dev)?)?;
    let head_b = Var::zeros(n_labels, DType::F32, &dev)?;
    let weights = class_weights(n_labels, &train_set.targets, opts.balanced);

    let pool = |batch: &Batch, mode: Mode| -> Result<Tensor, ClassifierError> {
        let h = encoder.model().forward(batch, mode)?;
        Ok(encoder.pool(&h, batch, opts.pooling)?)
    };
    // Frozen: encode every input once.
    let encode_all = |set: &Prepared| -> Result<Tensor, ClassifierError> {
        let seqs: Vec<Sequence> = set.inputs.iter().map(|i| i.sequence.clone()).collect();
        let cached = opts.feature_cache.as_ref().map(|dir| {
            let digest = base_digest.as_ref().expect("hashed when there is a cache");
            dir.join(format!("{}.f32", feature_key(digest, opts.pooling, &seqs)))
        });
        if let Some(path) = &cached {
            if let Ok(bytes) = std::fs::read(path) {
                if bytes.len() == seqs.len() * hidden * 4 {
                    let flat: Vec<f32> = bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    progress(Progress::FeatureCache {
                        path: path.clone(),
                        vectors: seqs.len(),
                        read: true,
                    });
                    return Ok(Tensor::from_vec(flat, (seqs.len(), hidden), &dev)?);
                }
            }
        }
        let rows = encoder.pool_sequences(&seqs, opts.pooling, false)?;
        let flat: Vec<f32> = rows.concat();
        if let Some(path) = &cached {
            let bytes: Vec<u8> = flat.iter().flat_map(|f| f.to_le_bytes()).collect();
            let write = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| {
                    // A temp name of this process's own: runs side by side
                    // (e.g. seeds of one data set) may write the same key.
                    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
                    std::fs::write(&tmp, &bytes)?;
                    std::fs::rename(&tmp, path)
                });
            match write {
                Ok(()) => progress(Progress::FeatureCache {
                    path: path.clone(),
                    vectors: seqs.len(),
                    read: false,
                }),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write the feature cache")
                }
            }
        }
        Ok(Tensor::from_vec(flat, (seqs.len(), hidden), &dev)?)
    };
    let (train_features, dev_features) = if trainable {
        (None, None)
    } else {
        progress(Progress::Preparing {
            done: 0,
            total: train_set.inputs.len() + dev_set.inputs.len(),
        });
        (Some(encode_all(&train_set)?), Some(encode_all(&dev_set)?))
    };

    // Top layers only: the frozen part's output for every input, once.
    let (train_bottom, dev_bottom) = if let (true, Some(first)) = (trainable, first_trained) {
        let (mut frozen, _) = Encoder::load_with_weights(&opts.base, false)?;
        frozen.set_max_tokens(opts.limits.max_tokens)?;
        let total = train_set.inputs.len() + dev_set.inputs.len();
        let mut done = 0;
        let mut run = |set: &Prepared| -> Result<Vec<Tensor>, ClassifierError> {
            let states = bottom_states(&frozen, set, first, &mut |n| {
                done += n;
                progress(Progress::Preparing { done, total });
            })?;
            Ok(states)
        };
        (Some(run(&train_set)?), Some(run(&dev_set)?))
    } else {
        (None, None)
    };

    // The encoder parameters that train, by name (all of them, or the top
    // layers' and, when it pools, the pooler's).
    let trained_param = |name: &str| -> bool {
        let Some(first) = first_trained else {
            return true;
        };
        (name.starts_with("pooler.") && opts.pooling == Pooling::Pooler)
            || name
                .strip_prefix("encoder.layer.")
                .and_then(|rest| rest.split('.').next())
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i >= first)
    };
    let mut vars: Vec<Var> = vec![head_w.clone(), head_b.clone()];
    let mut trained_names: Vec<String> = Vec::new();
    if trainable {
        for ((name, _), var) in encoder
            .model()
            .named_parameters()
            .iter()
            .zip(encoder.model().vars())
        {
            if trained_param(name) {
                vars.push(var.clone());
                trained_names.push(name.clone());
            }
        }
    }
    // Pooled vectors `[batch, hidden]` of inputs `idx` of a set, through
    // the cached lower layers and the trained top ones.
    let pool_top = |states: &[Tensor],
                    set: &Prepared,
                    idx: &[usize],
                    mode: Mode|
     -> Result<Tensor, ClassifierError> {
        let seqs: Vec<Sequence> = idx
            .iter()
            .map(|&i| set.inputs[i].sequence.clone())
            .collect();
        let batch = Batch::new(&seqs, encoder.config())?;
        let hidden = padded_states(states, idx, hidden)?;
        let h = encoder.model().forward_top(
            &hidden,
            &batch,
            first_trained.unwrap_or_default(),
            mode,
        )?;
        Ok(encoder.pool(&h, &batch, opts.pooling)?)
    };
    let named: Vec<(String, Var)> = ["classifier.weight", "classifier.bias"]
        .into_iter()
        .map(str::to_owned)
        .chain(trained_names.iter().cloned())
        .zip(vars.iter().cloned())
        .collect();
    // The trained parameters' names, in the order of `vars`.
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let mut opt = GroupedAdamW::new(
        named,
        n_layers,
        opts.layer_lr_decay,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let head_logits = |pooled: &Tensor| -> candle_core::Result<Tensor> {
        pooled
            .matmul(&head_w.as_tensor().t()?)?
            .broadcast_add(head_b.as_tensor())
    };
    let predict_dev = || -> Result<Vec<Vec<usize>>, ClassifierError> {
        let logits = match (&dev_features, &dev_bottom) {
            (Some(f), _) => head_logits(f)?,
            (None, Some(states)) => {
                let lengths: Vec<usize> = dev_set.inputs.iter().map(|i| i.sequence.len()).collect();
                let mut rows = vec![Vec::new(); lengths.len()];
                for chunk in crate::encoder::batch_plan(&lengths) {
                    let logits = head_logits(&pool_top(states, &dev_set, &chunk, Mode::Infer)?)?;
                    for (row, &i) in logits.to_vec2::<f32>()?.into_iter().zip(&chunk) {
                        rows[i] = row;
                    }
                }
                Tensor::from_vec(rows.concat(), (lengths.len(), n_labels), &dev)?
            }
            (None, None) => {
                let seqs: Vec<Sequence> =
                    dev_set.inputs.iter().map(|i| i.sequence.clone()).collect();
                let rows = map_batches(
                    &seqs,
                    encoder.config(),
                    |batch| -> Result<_, ClassifierError> {
                        Ok(head_logits(&pool(batch, Mode::Infer)?)?.to_vec2::<f32>()?)
                    },
                )?;
                Tensor::from_vec(rows.concat(), (seqs.len(), n_labels), &dev)?
            }
        };
        let l = logits.to_vec2::<f32>()?;
        Ok(l.iter()
            .map(|row| decide(row, opts.multi_label, 0.0))
            .collect())
    };

    let steps_per_epoch = train_set.inputs.len().div_ceil(opts.batch_size.max(1));
    let epochs = opts.epochs.max(1);
    let total_steps = steps_per_epoch * epochs;
    let mut step = 0;
    let mut best: Option<(f64, usize, Vec<Tensor>, Metrics)> = None;
    let mut history = Vec::new();
    let train_lengths: Vec<usize> = train_set.inputs.iter().map(|i| i.sequence.len()).collect();
    let mut order: Vec<usize> = (0..train_lengths.len()).collect();
    let mut first_epoch = 1;
    // A state saved inside an epoch: where that epoch stands.
    let mut in_epoch: Option<InEpoch> = None;
    if let Some((checkpoint, _, Some(state))) = &checkpoint {
        let corrupt = |message: String| ClassifierError::from(checkpoint.corrupt(message));
        let restored = checkpoint.restore(&checkpoint.load_tensors(state)?, &names, &vars)?;
        let snapshot = restored.best;
        opt.restore(state.steps, &restored.moments)
            .map_err(|e| corrupt(e.to_string()))?;
        if state.order.len() != order.len() || state.epochs_done > epochs {
            return Err(corrupt(
                "its example order or epoch count does not fit".into(),
            ));
        }
        if let Some(p) = &state.in_epoch {
            let done: usize = p.batches[..p.steps].iter().map(Vec::len).sum();
            if state.epochs_done >= epochs
                || p.batches.iter().any(|b| b.len() > opts.batch_size.max(1))
                || p.count != done
            {
                return Err(corrupt(
                    "its unfinished epoch does not fit the run's epochs, batch size or steps"
                        .into(),
                ));
            }
        }
        rng = state.rng.rng().map_err(corrupt)?;
        encoder
            .model()
            .set_dropout_rng(state.dropout_rng.rng().map_err(corrupt)?);
        order.clone_from(&state.order);
        step = state.steps;
        history.clone_from(&state.history);
        best = match &state.best {
            Some(Best {
                score,
                epoch,
                metrics: Some(metrics),
            }) if !snapshot.is_empty() => Some((*score, *epoch, snapshot, metrics.clone())),
            // Saved before the first epoch ended.
            None if state.epochs_done == 0 && state.in_epoch.is_some() => None,
            _ => return Err(corrupt("it has no best epoch".into())),
        };
        first_epoch = if state.stopped {
            epochs + 1
        } else {
            state.epochs_done + 1
        };
        in_epoch.clone_from(&state.in_epoch);
        progress(Progress::Resumed {
            epochs_done: state.epochs_done,
            steps_done: in_epoch.as_ref().map_or(0, |p| p.steps),
            epochs,
            stopped: state.stopped,
        });
    }
    // Saves the run's state after `epochs_done` epochs, or inside the next
    // one (`in_epoch`).
    let save_state = |epochs_done: usize,
                      stopped: bool,
                      in_epoch: Option<InEpoch>,
                      step: usize,
                      order: &[usize],
                      rng: &ChaCha12Rng,
                      best: &Option<(f64, usize, Vec<Tensor>, Metrics)>,
                      history: &[serde_json::Value],
                      opt: &GroupedAdamW|
     -> Result<(), ClassifierError> {
        let Some((checkpoint, run, _)) = &checkpoint else {
            return Ok(());
        };
        let (snapshot, best) = match best {
            Some((score, epoch, snapshot, metrics)) => (
                snapshot.as_slice(),
                Some(Best {
                    score: *score,
                    epoch: *epoch,
                    metrics: Some(metrics.clone()),
                }),
            ),
            None => (&[][..], None),
        };
        let tensors = super::checkpoint::tensors(&names, &vars, snapshot, opt.moments()?);
        let mut state = TrainState {
            format: STATE_FORMAT,
            run: run.clone(),
            epochs_done,
            stage: 0,
            steps: step,
            stopped,
            order: order.to_vec(),
            rng: RngState::of(rng),
            dropout_rng: RngState::of(&encoder.model().dropout_rng()),
            best,
            history: history.to_vec(),
            in_epoch,
            tensors: String::new(),
        };
        checkpoint.save(&mut state, &tensors)?;
        if let Some(p) = &state.in_epoch {
            progress(Progress::Saved {
                epoch: epochs_done + 1,
                step: p.steps,
                steps: p.batches.len(),
            });
        }
        Ok(())
    };
    for epoch in first_epoch..=epochs {
        let started = Instant::now();
        // Resumed inside this epoch: its batches and where it stood.
        let (batches, steps_done, mut epoch_loss, seconds_before) = match in_epoch.take() {
            Some(p) => (p.batches, p.steps, p.loss, p.seconds),
            None => (
                epoch_batches(
                    &mut order,
                    &train_lengths,
                    opts.batch_size.max(1),
                    opts.group_by_length,
                    &mut rng,
                ),
                0,
                0f64,
                0f64,
            ),
        };
        for (s, chunk) in batches.iter().enumerate().skip(steps_done) {
            let chunk = chunk.as_slice();
            let t0 = Instant::now();
            let targets: Vec<Vec<usize>> = chunk
                .iter()
                .map(|&i| train_set.targets[i].clone())
                .collect();
            let pooled = match (&train_features, &train_bottom) {
                (Some(f), _) => {
                    let idx = Tensor::from_vec(
                        chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                        chunk.len(),
                        &dev,
                    )?;
                    f.index_select(&idx, 0)?
                }
                (None, Some(states)) => pool_top(states, &train_set, chunk, Mode::Train)?,
                (None, None) => {
                    let seqs: Vec<Sequence> = chunk
                        .iter()
                        .map(|&i| train_set.inputs[i].sequence.clone())
                        .collect();
                    let batch = Batch::new(&seqs, encoder.config())?;
                    pool(&batch, Mode::Train)?
                }
            };
            let pooled = if opts.head_dropout > 0.0 {
                // Seeded mask (candle's CPU random source cannot be seeded).
                use rand::Rng;
                let keep = 1.0 / (1.0 - opts.head_dropout);
                let mask: Vec<f32> = (0..pooled.elem_count())
                    .map(|_| {
                        if rng.random::<f32>() < opts.head_dropout {
                            0.0
                        } else {
                            keep
                        }
                    })
                    .collect();
                (pooled * Tensor::from_vec(mask, (chunk.len(), hidden), &dev)?)?
            } else {
                pooled
            };
            let l = loss(
                &head_logits(&pooled)?,
                &targets,
                &weights,
                opts.multi_label,
                opts.label_smoothing as f32,
            )?;
            let mut grads = l.backward()?;
            clip(&mut grads, &vars, opts.clip_norm)?;
            opt.step(schedule(opts.lr, opts.warmup, step, total_steps), &grads)?;
            step += 1;
            let lv = l.to_scalar::<f32>()? as f64;
            epoch_loss += lv * chunk.len() as f64;
            progress(Progress::Step {
                epoch,
                step: s + 1,
                steps: steps_per_epoch,
                loss: lv,
                examples_per_s: chunk.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            });
            if checkpoint.is_some() && save_due(opts.save_steps, s + 1, batches.len()) {
                let here = InEpoch {
                    steps: s + 1,
                    batches: batches.clone(),
                    loss: epoch_loss,
                    count: batches[..=s].iter().map(Vec::len).sum(),
                    seconds: seconds_before + started.elapsed().as_secs_f64(),
                };
                save_state(
                    epoch - 1,
                    false,
                    Some(here),
                    step,
                    &order,
                    &rng,
                    &best,
                    &history,
                    &opt,
                )?;
            }
        }
        let seconds = seconds_before + started.elapsed().as_secs_f64();
        let predicted = predict_dev()?;
        let metrics = evaluate(labels, &dev_set.targets, &predicted);
        let record = EpochRecord {
            epoch,
            train_loss: epoch_loss / train_set.inputs.len().max(1) as f64,
            dev_accuracy: metrics.accuracy,
            dev_macro_f1: metrics.macro_avg.f1,
            examples_per_s: train_set.inputs.len() as f64 / seconds.max(1e-9),
            seconds,
        };
        progress(Progress::Epoch(record.clone()));
        history.push(serde_json::to_value(&record).expect("plain record"));
        let better = best
            .as_ref()
            .is_none_or(|(f, ..)| metrics.macro_avg.f1 > *f);
        let mut stop = false;
        if better {
            let snapshot: Vec<Tensor> = vars
                .iter()
                .map(|v| v.as_tensor().copy())
                .collect::<Result<_, _>>()?;
            best = Some((metrics.macro_avg.f1, epoch, snapshot, metrics));
        } else if epoch - best.as_ref().map_or(0, |b| b.1) >= opts.patience.max(1) {
            stop = true;
        }
        save_state(epoch, stop, None, step, &order, &rng, &best, &history, &opt)?;
        if stop {
            break;
        }
    }
    let (_, best_epoch, snapshot, dev_metrics) = best.expect("at least one epoch");
    let mut tensors: HashMap<String, Tensor> = if trainable {
        // Frozen parameters as loaded, trained ones from the best epoch.
        let mut t: HashMap<String, Tensor> = encoder
            .model()
            .named_parameters()
            .iter()
            .map(|(name, t)| (name.clone(), t.clone()))
            .collect();
        t.extend(
            trained_names
                .iter()
                .cloned()
                .zip(snapshot[2..].iter().cloned()),
        );
        t
    } else {
        crate::encoder::Weights::from_dir(&opts.base)?.into_tensors()
    };
    tensors.insert("classifier.weight".into(), snapshot[0].clone());
    tensors.insert("classifier.bias".into(), snapshot[1].clone());
    let c = encoder.config();
    let card = ModelCard {
        format: CARD_FORMAT,
        labels: labels.to_vec(),
        multi_label: opts.multi_label,
        threshold: 0.5,
        fusion: opts.fusion,
        fusion_limits: opts.limits,
        pooling: opts.pooling,
        encoder: EncoderCard {
            base: opts
                .base
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            model_type: c.model_type.clone(),
            hidden_size: c.hidden_size,
            layers: c.num_layers,
            frozen: opts.freeze_encoder,
        },
        graph: graph.map(|(generation, fact_predicates)| GraphCard {
            generation,
            fact_predicates,
            coverage: coverage(&train_set),
        }),
        training: {
            let mut t = settings;
            t["best_epoch"] = best_epoch.into();
            t["dev_coverage"] = coverage(&dev_set).into();
            t["truncated"] =
                serde_json::json!({"train": truncated(&train_set), "dev": truncated(&dev_set)});
            t
        },
        history,
        metrics: serde_json::json!({ "dev": dev_metrics }),
    };
    write_staged(&opts.out, |staging| {
        for file in ["config.json", "tokenizer.json"] {
            std::fs::copy(opts.base.join(file), staging.join(file))
                .map_err(|e| ClassifierError::Other(format!("copying {file}: {e}")))?;
        }
        candle_core::safetensors::save(&tensors, staging.join("model.safetensors"))?;
        write_card(staging, &card)
    })?;
    Ok(Trained {
        card,
        dev: dev_metrics,
        checkpoint: checkpoint.map(|(c, ..)| c),
    })
}

/// The base folder's model files with their SHA-256 (part of what
/// identifies a run for a checkpoint: another encoder at the same path; a
/// copy or a touched file with the same content is the same run). Reading
/// multilingual-e5-small's 470 MB takes about a second.
pub(crate) fn base_files(base: &Path) -> serde_json::Value {
    use sha2::Digest;
    [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "pytorch_model.bin",
    ]
    .into_iter()
    .filter_map(|name| {
        use std::io::Read;
        let mut file = std::fs::File::open(base.join(name)).ok()?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf).ok()? {
                0 => break,
                n => h.update(&buf[..n]),
            }
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Some((name.to_owned(), serde_json::Value::from(hex)))
    })
    .collect::<serde_json::Map<_, _>>()
    .into()
}

/// Feeds sequences (ids, segments, positions, visible matrices) to a hash.
fn hash_sequences<'a>(h: &mut sha2::Sha256, seqs: impl Iterator<Item = &'a Sequence>) {
    use sha2::Digest;
    for s in seqs {
        h.update((s.len() as u64).to_le_bytes());
        for v in s
            .input_ids
            .iter()
            .chain(&s.token_type_ids)
            .chain(s.position_ids.iter().flatten())
        {
            h.update(v.to_le_bytes());
        }
        if let Some(vis) = &s.visible {
            h.update(vis.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>());
        }
    }
}

/// SHA-256 (hexadecimal) of a prepared set: its inputs and their targets.
fn inputs_digest(set: &Prepared) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    hash_sequences(&mut h, set.inputs.iter().map(|i| &i.sequence));
    for t in &set.targets {
        h.update((t.len() as u64).to_le_bytes());
        for &label in t {
            h.update((label as u64).to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hidden states after the embeddings and the first `layers` layers for
/// every input of `set`, one `[len, hidden]` tensor per input (its real
/// tokens; each is a copy, so no batch's padding is kept), computed in
/// length-sorted batches with `encoder` (loaded for inference). `done` is
/// told how many inputs each batch finished.
fn bottom_states(
    encoder: &Encoder,
    set: &Prepared,
    layers: usize,
    done: &mut dyn FnMut(usize),
) -> Result<Vec<Tensor>, ClassifierError> {
    let lengths: Vec<usize> = set.inputs.iter().map(|i| i.sequence.len()).collect();
    let mut states: Vec<Option<Tensor>> = vec![None; lengths.len()];
    for chunk in crate::encoder::batch_plan(&lengths) {
        let seqs: Vec<Sequence> = chunk
            .iter()
            .map(|&i| set.inputs[i].sequence.clone())
            .collect();
        let batch = Batch::new(&seqs, encoder.config())?;
        let hidden = encoder.model().forward_bottom(&batch, layers)?;
        for (row, &i) in chunk.iter().enumerate() {
            states[i] = Some(row_state(&hidden, row, lengths[i])?);
        }
        done(chunk.len());
    }
    Ok(states
        .into_iter()
        .map(|s| s.expect("batch_plan covers every input"))
        .collect())
}

/// Row `row`'s first `len` positions of `hidden` (`[batch, seq, hidden]`)
/// as a tensor `[len, hidden]` with storage of its own: exactly
/// `len × hidden` values, so keeping it does not keep the batch alive
/// (candle's `copy` clones the whole underlying storage of a view, and
/// `contiguous` returns the view itself, which is already contiguous;
/// `detach` drops any link back to the batch through the op graph).
fn row_state(hidden: &Tensor, row: usize, len: usize) -> candle_core::Result<Tensor> {
    Ok(hidden
        .get(row)?
        .narrow(0, 0, len)?
        .force_contiguous()?
        .detach())
}

/// The states of inputs `idx` padded with zeros to the longest:
/// `[idx.len(), longest, hidden]` (padded rows are masked downstream).
fn padded_states(
    states: &[Tensor],
    idx: &[usize],
    hidden: usize,
) -> Result<Tensor, ClassifierError> {
    let longest = idx.iter().map(|&i| states[i].dims()[0]).max().unwrap_or(0);
    let rows: Vec<Tensor> = idx
        .iter()
        .map(|&i| {
            let s = &states[i];
            let len = s.dim(0)?;
            if len == longest {
                Ok(s.clone())
            } else {
                Tensor::cat(
                    &[
                        s,
                        &Tensor::zeros((longest - len, hidden), DType::F32, s.device())?,
                    ],
                    0,
                )
            }
        })
        .collect::<candle_core::Result<_>>()?;
    Ok(Tensor::stack(&rows, 0)?)
}

/// One epoch's batches of example indexes: `order` (the previous epoch's
/// order, or `0..n` at first) shuffled in place and cut into batches of
/// `batch_size`; with `group_by_length`, the shuffle is cut into groups of
/// 50 batches, each group sorted by length (longest first) and cut into
/// batches, and the batches shuffled. Every index appears once.
pub(crate) fn epoch_batches(
    order: &mut [usize],
    lengths: &[usize],
    batch_size: usize,
    group_by_length: bool,
    rng: &mut impl rand::Rng,
) -> Vec<Vec<usize>> {
    order.shuffle(rng);
    if !group_by_length {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for group in order.chunks(batch_size * 50) {
        let mut group = group.to_vec();
        group.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(group.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// The feature cache key, hexadecimal: SHA-256 of the encoder's files by
/// content ([`base_files`]: a copied or touched model reuses the vectors,
/// other weights do not), the pooling and every input.
fn feature_key(base_files: &serde_json::Value, pooling: Pooling, seqs: &[Sequence]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(base_files.to_string().as_bytes());
    h.update(format!("{pooling:?}").as_bytes());
    hash_sequences(&mut h, seqs.iter());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `graft.json`.
pub fn write_card(dir: &Path, card: &ModelCard) -> Result<(), ClassifierError> {
    std::fs::write(
        dir.join("graft.json"),
        serde_json::to_string_pretty(card).expect("a card serialises"),
    )
    .map_err(|e| ClassifierError::Other(format!("{}: {e}", dir.display())))
}

/// Evaluates a saved classifier on examples.
pub fn evaluate_examples(
    classifier: &Classifier,
    examples: &[Example],
    knowledge: &Knowledge,
    progress: &dyn Fn(Progress),
) -> Result<(Metrics, f64), ClassifierError> {
    let set = prepare(
        &classifier.encoder,
        &classifier.fuser,
        &classifier.card.labels,
        examples,
        knowledge,
        progress,
    )?;
    let seqs: Vec<Sequence> = set.inputs.iter().map(|i| i.sequence.clone()).collect();
    let probs = classifier.probabilities(&seqs)?;
    let predicted: Vec<Vec<usize>> = probs.iter().map(|p| classifier.decide(p)).collect();
    Ok((
        evaluate(&classifier.card.labels, &set.targets, &predicted),
        coverage(&set),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_state_owns_only_its_own_values() {
        let hidden = Tensor::arange(0f32, 2.0 * 5.0 * 3.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 5, 3))
            .unwrap();
        let state = row_state(&hidden, 1, 2).unwrap();
        assert_eq!(state.dims(), &[2, 3]);
        assert_eq!(
            state.to_vec2::<f32>().unwrap(),
            vec![vec![15.0, 16.0, 17.0], vec![18.0, 19.0, 20.0]]
        );
        let (storage, layout) = state.storage_and_layout();
        let held = match &*storage {
            candle_core::Storage::Cpu(cpu) => cpu.as_slice::<f32>().unwrap().len(),
            _ => unreachable!("a CPU tensor"),
        };
        assert_eq!(held, 2 * 3, "the state keeps the batch's storage alive");
        assert_eq!(layout.start_offset(), 0);
        drop(storage);
        // From a tensor that tracks gradients: no link back to it either.
        let tracked = Var::from_tensor(&hidden).unwrap();
        let tracked = (tracked.as_tensor() * 2.0).unwrap();
        assert!(tracked.track_op());
        let state = row_state(&tracked, 0, 1).unwrap();
        assert!(
            !state.track_op(),
            "the state holds the batch through the op graph"
        );
        assert_eq!(state.to_vec2::<f32>().unwrap(), vec![vec![0.0, 2.0, 4.0]]);
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let lr: Vec<f64> = (0..10).map(|s| schedule(1.0, 0.2, s, 10)).collect();
        assert_eq!(lr[0], 0.5);
        assert_eq!(lr[1], 1.0);
        assert!(lr.windows(2).skip(1).all(|w| w[1] <= w[0]));
        assert_eq!(lr[9], 0.0);
    }

    #[test]
    fn length_grouped_batches_cover_every_example_once_with_little_padding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 128 + 1).collect();
        let padding = |batches: &[Vec<usize>]| -> usize {
            batches
                .iter()
                .map(|b| {
                    let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
                    b.iter().map(|&i| longest - lengths[i]).sum::<usize>()
                })
                .sum()
        };
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        let plain = epoch_batches(&mut order, &lengths, 16, false, &mut rng);
        let grouped = epoch_batches(&mut order, &lengths, 16, true, &mut rng);
        for batches in [&plain, &grouped] {
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort();
            assert_eq!(seen, (0..1000).collect::<Vec<_>>());
            assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 16));
        }
        assert!(
            padding(&grouped) * 10 < padding(&plain),
            "grouped {} vs plain {}",
            padding(&grouped),
            padding(&plain)
        );
        // Shuffled: the batches are not in length order.
        let firsts: Vec<usize> = grouped.iter().map(|b| lengths[b[0]]).collect();
        assert!(firsts.windows(2).any(|w| w[0] < w[1]) && firsts.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn balanced_weights_favour_the_rare_class() {
        let w = class_weights(2, &[vec![0], vec![0], vec![0], vec![1]], true);
        assert_eq!(w, vec![4.0 / 6.0, 2.0]);
    }

    #[test]
    fn weighted_cross_entropy_by_hand() {
        let logits = Tensor::new(&[[2.0f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        let l = loss(&logits, &[vec![0], vec![1]], &[1.0, 3.0], false, 0.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let p0 = (2f32.exp() / (2f32.exp() + 1.0)).ln();
        let p1 = (1f32.exp() / (1f32.exp() + 1.0)).ln();
        let want = -(p0 + 3.0 * p1) / 4.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }

    #[test]
    fn smoothed_cross_entropy_by_hand() {
        // ε = 0.2 over 2 labels: the gold label's target is 0.9, the other 0.1.
        let logits = Tensor::new(&[[2.0f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        let l = loss(&logits, &[vec![0], vec![1]], &[1.0, 3.0], false, 0.2)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let lp = |a: f32, b: f32| (a.exp() / (a.exp() + b.exp())).ln();
        let ce0 = -(0.9 * lp(2.0, 0.0) + 0.1 * lp(0.0, 2.0));
        let ce1 = -(0.1 * lp(0.0, 1.0) + 0.9 * lp(1.0, 0.0));
        let want = (ce0 + 3.0 * ce1) / 4.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // Multi-label: each label's target moves ε/2 towards 1/2.
        let m = loss(&logits, &[vec![0], vec![1]], &[1.0, 1.0], true, 0.2)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let bce = |x: f32, y: f32| x.max(0.0) - x * y + (1.0 + (-x.abs()).exp()).ln();
        let want = (bce(2.0, 0.9) + bce(0.0, 0.1) + bce(0.0, 0.1) + bce(1.0, 0.9)) / 4.0;
        assert!((m - want).abs() < 1e-6, "{m} vs {want}");
        for bad in [-0.1, 1.0, f64::NAN, f64::INFINITY] {
            let e = check_label_smoothing(bad).unwrap_err().to_string();
            assert!(
                e.contains("--label-smoothing") && e.contains("from 0 up to"),
                "{e}"
            );
        }
        assert!(check_label_smoothing(0.0).is_ok() && check_label_smoothing(0.1).is_ok());
    }
}
