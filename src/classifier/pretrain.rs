//! Further pre-training of an encoder on a task's own texts with the
//! masked-LM objective, before fine-tuning: "within-task pre-training"
//! (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?",
//! Sec. 5.4) or task-adaptive pre-training (Gururangan et al. 2020, "Don't
//! Stop Pretraining", Sec. 4). The labels are not used, so unlabelled texts
//! of the domain (support tickets, news) serve as well.
//!
//! The result is an ordinary Hugging Face model folder (config, tokenizer,
//! `model.safetensors` with the encoder and the masked-LM head under
//! `BertForMaskedLM`'s names) that `graft train --model` fine-tunes, plus
//! `pretrain.json` (settings and per-epoch losses).

use super::checkpoint::{
    self, save_due, Best, Checkpoint, InEpoch, RngState, TrainState, STATE_FORMAT,
};
use super::folder::{check_out, write_staged};
use super::optim::GroupedAdamW;
use super::train::{clip, epoch_batches, schedule, Progress};
use super::ClassifierError;
use crate::encoder::mlm::{Masked, Masker, MlmHead};
use crate::encoder::{Batch, Encoder, Mode, Sequence};
use crate::fusion::{Fuser, FusionLimits, FusionMode, Truncation};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::ParamsAdamW;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What [`pretrain`] does.
#[derive(Debug, Clone)]
pub struct PretrainOptions {
    /// The encoder's model folder.
    pub base: PathBuf,
    /// The folder to write (refused when it is `base`, or a non-empty
    /// folder without `pretrain.json`).
    pub out: PathBuf,
    /// Texts are cut to this many tokens, special tokens included.
    pub max_tokens: usize,
    /// Which part of a longer text is kept, as `graft train --truncation`
    /// keeps it (the start, the end, or both: Sun et al. 2019), so the
    /// pre-training reads the parts of the texts the fine-tuning will.
    pub truncation: Truncation,
    /// Passes over the texts that train head and encoder (new masks each
    /// pass); 0 with `head_epochs` trains the head alone.
    pub epochs: usize,
    /// Texts per step.
    pub batch_size: usize,
    /// Peak learning rate (linear warm-up, then linear decay to 0).
    pub lr: f64,
    /// Share of the steps spent warming up, in [0, 1).
    pub warmup: f64,
    /// AdamW weight decay (weight matrices only).
    pub weight_decay: f64,
    /// Share of each text's tokens chosen for prediction ([`crate::encoder::mlm::MASK_RATE`]).
    pub mask_rate: f64,
    /// Seeds the masks, the order, dropout and a new head.
    pub seed: u64,
    /// Gradient clipping by global norm (0 = off).
    pub clip_norm: f64,
    /// Also train the embeddings (and so the tied output projection):
    /// `vocab × hidden` more parameters with a dense gradient each step.
    /// Off: the embeddings stay as loaded and their output is computed
    /// without dropout.
    pub train_embeddings: bool,
    /// Passes that train only the masked-LM head before the `epochs` that
    /// train head and encoder together: the encoder runs without dropout
    /// and without a backward pass, so a new head (a model shipped without
    /// one) learns to read the encoder before its errors flow into it
    /// (the same two stages as gradual unfreezing, Howard & Ruder 2018,
    /// ULMFiT, Sec. 3.3). Their own warm-up and decay, peaking at `head_lr`.
    /// `None`: one when the checkpoint has no head (a new one is made),
    /// none when it has one.
    pub head_epochs: Option<usize>,
    /// Peak learning rate of the head-only passes.
    pub head_lr: f64,
    /// Predict over the whole vocabulary. Off: the output is restricted to
    /// the tokens that occur in the texts (train and held-out; every
    /// target is one of them), so a multilingual model's 250k-row
    /// projection shrinks to the few thousand rows a task uses; the
    /// remaining entries of the head's output bias are saved as loaded.
    pub full_vocab: bool,
    /// Save the run's state here after every epoch (and every
    /// `save_steps` steps) and, when it already holds this run's state,
    /// resume from it (see [`super::checkpoint`]); deleted once the folder
    /// is written.
    pub checkpoint_dir: Option<PathBuf>,
    /// With `checkpoint_dir`: also save the state after every this many
    /// optimizer steps inside an epoch (0: at epoch ends only). It does not
    /// change the result, and a run may resume with another value.
    pub save_steps: usize,
}

/// One pass over the texts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PretrainEpoch {
    /// 1-based, head-only passes first; progress reports the held-out
    /// figures before training as epoch 0 (no train loss: NaN).
    pub epoch: usize,
    /// Whether this pass trained the head alone (the encoder fixed).
    pub head_only: bool,
    /// Mean cross-entropy over the pass's masked tokens (nats).
    #[serde(deserialize_with = "checkpoint::f64_or_nan")]
    pub train_loss: f64,
    /// Mean cross-entropy on the held-out texts (the same masks every
    /// epoch), when some were given.
    pub dev_loss: Option<f64>,
    /// Share of the held-out masked tokens predicted exactly (among the
    /// output vocabulary: see [`PretrainOptions::full_vocab`]).
    pub dev_accuracy: Option<f64>,
    /// Wall time of the pass, s.
    pub seconds: f64,
    /// Texts per second over the pass.
    pub texts_per_s: f64,
}

/// What [`pretrain`] wrote.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// Every epoch.
    pub history: Vec<PretrainEpoch>,
    /// The epoch whose weights were saved: the one with the lowest dev loss
    /// (among epochs 1 to N: saved even when above `dev_before`), or
    /// without dev texts the last.
    pub best_epoch: usize,
    /// Held-out loss and accuracy before any training (with dev texts).
    pub dev_before: Option<(f64, f64)>,
    /// Head-only passes run (see [`PretrainOptions::head_epochs`]).
    pub head_epochs: usize,
    /// Size of the output vocabulary predicted over (see
    /// [`PretrainOptions::full_vocab`]).
    pub output_tokens: usize,
    /// Training texts longer than `max_tokens`, cut as
    /// [`PretrainOptions::truncation`] says.
    pub truncated_texts: usize,
}

/// Masked-LM further pre-training of `opts.base` on `texts`; `dev_texts`
/// (may be empty) are held out to measure the loss each epoch and pick the
/// epoch saved.
///
/// Errors: [`ClassifierError::Encoder`] (loading, a tokenizer without a
/// mask token, a bad mask rate, a max length beyond the model's positions),
/// [`ClassifierError::Other`] for no texts, an unusable `--out`, nothing to
/// train (`epochs` 0 and no head-only pass: `head_epochs` 0, or a loaded
/// head and no `head_epochs`), a batch size of 0, a warm-up share outside
/// [0, 1), a learning rate (`lr`, `head_lr`) that is not positive, or a
/// write failure; [`ClassifierError::Tensor`].
pub fn pretrain(
    opts: &PretrainOptions,
    texts: &[String],
    dev_texts: &[String],
    progress: &dyn Fn(Progress),
) -> Result<Pretrained, ClassifierError> {
    check_out(
        &opts.base,
        &opts.out,
        "pretrain.json",
        "an earlier `graft pretrain` output",
        "pre-training",
    )?;
    if texts.is_empty() {
        return Err(ClassifierError::Other("no texts to pre-train on".into()));
    }
    let bad = |m: String| Err(ClassifierError::Other(m));
    if opts.epochs == 0 && opts.head_epochs == Some(0) {
        return bad("--epochs and --head-epochs are both 0: nothing to train".into());
    }
    if !(opts.head_lr.is_finite() && opts.head_lr > 0.0) {
        return bad(format!(
            "--head-lr {}: give a positive learning rate",
            opts.head_lr
        ));
    }
    if opts.batch_size == 0 {
        return bad("--batch-size must be at least 1".into());
    }
    if !(0.0..1.0).contains(&opts.warmup) {
        return bad(format!("--warmup {}: give a share in [0, 1)", opts.warmup));
    }
    if !(opts.lr.is_finite() && opts.lr > 0.0) {
        return bad(format!("--lr {}: give a positive learning rate", opts.lr));
    }
    let checkpoint = match &opts.checkpoint_dir {
        Some(dir) => {
            checkpoint::check_apart(dir, &[("--out", &opts.out), ("--model", &opts.base)])?;
            let digest = |set: &[String]| {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                for text in set {
                    h.update((text.len() as u64).to_le_bytes());
                    h.update(text.as_bytes());
                }
                h.finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            // Every option but where things go, and the texts.
            let settings = serde_json::json!({
                "command": "pretrain",
                // The base by its files' content, not where it lies.
                "base_files": super::train::base_files(&opts.base),
                "max_tokens": opts.max_tokens, "truncation": opts.truncation,
                "epochs": opts.epochs, "batch_size": opts.batch_size, "lr": opts.lr,
                "warmup": opts.warmup, "weight_decay": opts.weight_decay,
                "mask_rate": opts.mask_rate, "seed": opts.seed, "clip_norm": opts.clip_norm,
                "train_embeddings": opts.train_embeddings, "head_epochs": opts.head_epochs,
                "head_lr": opts.head_lr, "full_vocab": opts.full_vocab,
                "texts": {"count": texts.len(), "sha256": digest(texts)},
                "dev_texts": {"count": dev_texts.len(), "sha256": digest(dev_texts)},
            });
            let checkpoint = Checkpoint::open(dir)?;
            let state = checkpoint.state(&settings)?;
            Some((checkpoint, settings, state))
        }
        None => None,
    };
    let (mut encoder, mut leftover) = Encoder::load_with_weights(&opts.base, true)?;
    encoder.set_max_tokens(opts.max_tokens)?;
    let config = encoder.config().clone();
    let masker = Masker::new(encoder.tokenizer(), config.vocab_size, opts.mask_rate)?;
    let head = MlmHead::load_or_init(&mut leftover, &config, opts.seed)?;
    let head_epochs = opts
        .head_epochs
        .unwrap_or(if head.loaded() { 0 } else { 1 });
    if opts.epochs + head_epochs == 0 {
        return Err(ClassifierError::Other(
            "--epochs 0 with a model whose masked-LM head is loaded (no head-only pass by default): nothing to train".into(),
        ));
    }
    encoder.model().set_seed(opts.seed);
    // Other parts than the start are cut as a `none` classifier input is
    // (the same tokens in the same order).
    let cutter = match opts.truncation {
        Truncation::Head => None,
        truncation => Some(Fuser::new(
            encoder.tokenizer(),
            FusionMode::None,
            FusionLimits {
                max_tokens: opts.max_tokens,
                truncation,
                ..FusionLimits::default()
            },
        )?),
    };
    // Each text's ids and whether it was cut.
    let tokenize = |set: &[String]| -> Result<Vec<(Vec<u32>, bool)>, ClassifierError> {
        if let Some(fuser) = &cutter {
            return set
                .iter()
                .map(|text| {
                    let input = fuser.build(encoder.tokenizer(), text, &[])?;
                    Ok((input.sequence.input_ids, input.truncated))
                })
                .collect();
        }
        let refs: Vec<&str> = set.iter().map(String::as_str).collect();
        let mut out = Vec::with_capacity(set.len());
        for chunk in refs.chunks(256) {
            out.extend(
                encoder
                    .tokenizer()
                    .encode(chunk)?
                    .into_iter()
                    .map(|t| (t.ids, t.truncated)),
            );
        }
        Ok(out)
    };
    progress(Progress::Preparing {
        done: 0,
        total: texts.len() + dev_texts.len(),
    });
    // A text of special tokens only (e.g. invisible characters) has
    // nothing to predict: left out, counted.
    let maskable = |ids: &Vec<u32>| ids.iter().any(|&id| !masker.is_special(id));
    let train_tokens = tokenize(texts)?;
    let truncated_texts = train_tokens.iter().filter(|(_, cut)| *cut).count();
    let (train_ids, skipped): (Vec<Vec<u32>>, Vec<Vec<u32>>) = train_tokens
        .into_iter()
        .map(|(ids, _)| ids)
        .partition(maskable);
    let dev_ids: Vec<Vec<u32>> = tokenize(dev_texts)?
        .into_iter()
        .map(|(ids, _)| ids)
        .filter(maskable)
        .collect();
    if !skipped.is_empty() {
        tracing::warn!(
            texts = skipped.len(),
            "texts with no token to predict (special tokens only) are left out"
        );
    }
    if train_ids.is_empty() {
        return Err(ClassifierError::Other(
            "no text has a token to predict (every text is special tokens only)".into(),
        ));
    }
    progress(Progress::Preparing {
        done: texts.len() + dev_texts.len(),
        total: texts.len() + dev_texts.len(),
    });
    // The output vocabulary: every non-special token of the texts (the
    // targets are drawn from them), or the whole table. `local[id]` is a
    // token's row in the output.
    let dev = Device::Cpu;
    let (output_ids, local, output_tokens) = if opts.full_vocab {
        let all: Vec<u32> = (0..config.vocab_size as u32).collect();
        (None, all, config.vocab_size)
    } else {
        let mut local = vec![u32::MAX; config.vocab_size];
        let mut ids = Vec::new();
        for &id in train_ids.iter().chain(&dev_ids).flatten() {
            let slot = local.get_mut(id as usize).ok_or_else(|| {
                ClassifierError::Other(format!(
                    "token id {id} is beyond the model's vocabulary ({})",
                    config.vocab_size
                ))
            })?;
            if *slot == u32::MAX && !masker.is_special(id) {
                *slot = ids.len() as u32;
                ids.push(id);
            }
        }
        tracing::info!(
            tokens = ids.len(),
            vocabulary = config.vocab_size,
            "output restricted to the tokens of the texts"
        );
        let n = ids.len();
        (Some(Tensor::from_vec(ids, n, &dev)?), local, n)
    };
    // The tied projection, fixed with the embeddings: gathered once.
    let fixed_projection = match (&output_ids, opts.train_embeddings) {
        (_, true) => None,
        (Some(ids), false) => Some(
            encoder
                .model()
                .word_embeddings()
                .detach()
                .index_select(ids, 0)?,
        ),
        (None, false) => Some(encoder.model().word_embeddings().detach()),
    };
    // ChaCha12: `StdRng`'s stream, with a position that can be saved.
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(opts.seed);
    // Held-out masks: drawn once, so every epoch is measured on the same task.
    let dev_masked: Vec<Masked> = {
        let mut dev_rng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ 0x9e37_79b9);
        dev_ids
            .iter()
            .map(|ids| masker.mask(ids, &mut dev_rng))
            .collect()
    };

    let trained = |name: &str| opts.train_embeddings || !name.starts_with("embeddings.");
    let mut named: Vec<(String, Var)> = head.named_vars();
    for ((name, _), var) in encoder
        .model()
        .named_parameters()
        .iter()
        .zip(encoder.model().vars())
    {
        // The pooler is not on the masked-LM path.
        if trained(name) && !name.starts_with("pooler.") {
            named.push((name.clone(), var.clone()));
        }
    }
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let head_count = head.named_vars().len();
    let optimizer = |params: &[(String, Var)], lr: f64| {
        GroupedAdamW::new(
            params.to_vec(),
            config.num_layers,
            1.0,
            ParamsAdamW {
                lr,
                weight_decay: opts.weight_decay,
                ..ParamsAdamW::default()
            },
        )
    };

    // Cross-entropy over the masked tokens of `masked` (mean, nats) and the
    // number predicted exactly. `encoder_fixed`: no gradient into the encoder.
    let model = encoder.model();
    let forward = |masked: &[&Masked],
                   mode: Mode,
                   encoder_fixed: bool|
     -> Result<(Tensor, usize), ClassifierError> {
        let seqs: Vec<Sequence> = masked
            .iter()
            .map(|m| Sequence::plain(m.input_ids.clone()))
            .collect();
        let batch = Batch::new(&seqs, &config)?;
        let (_, s) = batch.input_ids.dims2()?;
        let hidden = if encoder_fixed {
            model.forward(&batch, Mode::Infer)?.detach()
        } else if opts.train_embeddings {
            model.forward(&batch, mode)?
        } else {
            // The embeddings are fixed: start the graph after them.
            let x = model.forward_bottom(&batch, 0)?.detach();
            model.forward_top(&x, &batch, 0, mode)?
        };
        let h = config.hidden_size;
        let (mut positions, mut targets) = (Vec::new(), Vec::new());
        for (row, m) in masked.iter().enumerate() {
            for &(i, id) in &m.targets {
                positions.push((row * s + i) as u32);
                targets.push(local[id as usize]);
            }
        }
        let n = positions.len();
        let picked = hidden
            .reshape(((), h))?
            .index_select(&Tensor::from_vec(positions, n, &dev)?, 0)?;
        let projection = match (&fixed_projection, &output_ids) {
            (Some(p), _) => p.clone(),
            (None, Some(ids)) => model.word_embeddings().index_select(ids, 0)?,
            (None, None) => model.word_embeddings().clone(),
        };
        // Trained embeddings are fixed too while the encoder is.
        let projection = if encoder_fixed {
            projection.detach()
        } else {
            projection
        };
        let logits = head.logits(&picked, &projection, output_ids.as_ref())?;
        let targets = Tensor::from_vec(targets, n, &dev)?;
        let correct = logits
            .argmax(1)?
            .eq(&targets)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as usize;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        Ok((loss, correct))
    };
    let evaluate = || -> Result<Option<(f64, f64)>, ClassifierError> {
        if dev_masked.is_empty() {
            return Ok(None);
        }
        let lengths: Vec<usize> = dev_masked.iter().map(|m| m.input_ids.len()).collect();
        let (mut loss, mut correct, mut tokens) = (0f64, 0usize, 0usize);
        for idx in crate::encoder::batch_plan(&lengths) {
            let batch: Vec<&Masked> = idx.iter().map(|&i| &dev_masked[i]).collect();
            let n: usize = batch.iter().map(|m| m.targets.len()).sum();
            let (l, c) = forward(&batch, Mode::Infer, true)?;
            loss += l.to_scalar::<f32>()? as f64 * n as f64;
            correct += c;
            tokens += n;
        }
        Ok(Some((
            loss / tokens.max(1) as f64,
            correct as f64 / tokens.max(1) as f64,
        )))
    };

    let dev_before = evaluate()?;
    if let Some((loss, accuracy)) = dev_before {
        // Epoch 0: the held-out figures before any step.
        progress(Progress::Pretrain(PretrainEpoch {
            epoch: 0,
            head_only: false,
            train_loss: f64::NAN,
            dev_loss: Some(loss),
            dev_accuracy: Some(accuracy),
            seconds: 0.0,
            texts_per_s: 0.0,
        }));
    }
    let lengths: Vec<usize> = train_ids.iter().map(Vec::len).collect();
    let mut order: Vec<usize> = (0..train_ids.len()).collect();
    let steps_per_epoch = train_ids.len().div_ceil(opts.batch_size);
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    // A saved state: the parameters, the best epoch, the generators and
    // the order now; the stage's optimizer state when its stage starts.
    let mut resume = None;
    // A state saved inside an epoch: where that epoch stands.
    let mut in_epoch: Option<InEpoch> = None;
    // A saved state that does not fit (only ever with a checkpoint).
    let corrupt = |message: String| match &checkpoint {
        Some((c, ..)) => ClassifierError::from(c.corrupt(message)),
        None => ClassifierError::Other(message),
    };
    if let Some((checkpoint, _, Some(state))) = &checkpoint {
        if state.order.len() != order.len() || state.epochs_done > head_epochs + opts.epochs {
            return Err(corrupt("its text order or epoch count does not fit".into()));
        }
        if let Some(p) = &state.in_epoch {
            if state.epochs_done >= head_epochs + opts.epochs
                || p.batches.iter().any(|b| b.len() > opts.batch_size)
            {
                return Err(corrupt(
                    "its unfinished epoch does not fit the run's epochs or batch size".into(),
                ));
            }
        }
        let restored = checkpoint.restore(&checkpoint.load_tensors(state)?, &names, &vars)?;
        best = match &state.best {
            Some(b) if !restored.best.is_empty() => Some((b.score, b.epoch, restored.best)),
            // Saved before the first epoch ended.
            None if state.epochs_done == 0 && state.in_epoch.is_some() => None,
            _ => return Err(corrupt("it has no best epoch".into())),
        };
        history = state
            .history
            .iter()
            .map(|r| serde_json::from_value::<PretrainEpoch>(r.clone()))
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt(format!("an epoch record: {e}")))?;
        order.clone_from(&state.order);
        rng = state.rng.rng().map_err(corrupt)?;
        model.set_dropout_rng(state.dropout_rng.rng().map_err(corrupt)?);
        in_epoch.clone_from(&state.in_epoch);
        progress(Progress::Resumed {
            epochs_done: state.epochs_done,
            steps_done: in_epoch.as_ref().map_or(0, |p| p.steps),
            epochs: head_epochs + opts.epochs,
            stopped: false,
        });
        resume = Some((
            state.epochs_done,
            state.stage,
            state.steps,
            restored.moments,
        ));
    }
    // Saves the state after `epochs_done` epochs, or inside the next one
    // (`in_epoch`), of `stage`.
    let save_state = |epochs_done: usize,
                      stage: usize,
                      in_epoch: Option<InEpoch>,
                      step: usize,
                      order: &[usize],
                      rng: &rand_chacha::ChaCha12Rng,
                      best: &Option<(f64, usize, Vec<Tensor>)>,
                      history: &[PretrainEpoch],
                      opt: &GroupedAdamW|
     -> Result<(), ClassifierError> {
        let Some((checkpoint, run, _)) = &checkpoint else {
            return Ok(());
        };
        let (snapshot, best) = match best {
            Some((score, epoch, snapshot)) => (
                snapshot.as_slice(),
                Some(Best {
                    score: *score,
                    epoch: *epoch,
                    metrics: None,
                }),
            ),
            None => (&[][..], None),
        };
        let mut state = TrainState {
            format: STATE_FORMAT,
            run: run.clone(),
            epochs_done,
            stage,
            steps: step,
            stopped: false,
            order: order.to_vec(),
            rng: RngState::of(rng),
            dropout_rng: RngState::of(&model.dropout_rng()),
            best,
            history: history
                .iter()
                .map(|r| serde_json::to_value(r).expect("plain record"))
                .collect(),
            in_epoch,
            tensors: String::new(),
        };
        let tensors = checkpoint::tensors(&names, &vars, snapshot, opt.moments()?);
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
    // The head alone first (its variables lead `named`), then everything;
    // each stage with its own optimizer state and schedule.
    let stages = [
        (true, head_epochs, opts.head_lr, &named[..head_count]),
        (false, opts.epochs, opts.lr, &named[..]),
    ];
    let mut epoch = 0;
    for (stage, (head_only, epochs, lr, params)) in stages.into_iter().enumerate() {
        if epochs == 0 {
            continue;
        }
        let mut opt = optimizer(params, lr)?;
        let stage_vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        let total_steps = steps_per_epoch * epochs;
        let mut step = 0;
        // Epochs of this stage a saved state has done already.
        let mut done = 0;
        if let Some((epochs_done, saved_stage, steps, moments)) = &resume {
            done = epochs_done.saturating_sub(epoch).min(epochs);
            // Saved inside an epoch of this stage, or after one of its
            // epochs but its last.
            let inside = in_epoch.is_some() && *epochs_done >= epoch;
            if done < epochs && (done > 0 || inside) {
                // Stopped inside this stage: its optimizer goes on.
                if *saved_stage != stage {
                    return Err(corrupt(format!(
                        "its last epoch is of stage {saved_stage}, expected {stage}"
                    )));
                }
                opt.restore(*steps, moments)
                    .map_err(|e| corrupt(e.to_string()))?;
                step = *steps;
            }
        }
        epoch += done;
        for _ in done..epochs {
            epoch += 1;
            let started = std::time::Instant::now();
            // Resumed inside this epoch: its batches and where it stood.
            let (batches, steps_done, mut epoch_loss, mut epoch_tokens, seconds_before) =
                match in_epoch.take() {
                    Some(p) => (p.batches, p.steps, p.loss, p.count, p.seconds),
                    None => (
                        epoch_batches(&mut order, &lengths, opts.batch_size, true, &mut rng),
                        0,
                        0f64,
                        0usize,
                        0f64,
                    ),
                };
            for (s, idx) in batches.iter().enumerate().skip(steps_done) {
                let t0 = std::time::Instant::now();
                let masked: Vec<Masked> = idx
                    .iter()
                    .map(|&i| masker.mask(&train_ids[i], &mut rng))
                    .collect();
                let refs: Vec<&Masked> = masked.iter().collect();
                let n: usize = masked.iter().map(|m| m.targets.len()).sum();
                let (loss, _) = forward(&refs, Mode::Train, head_only)?;
                let mut grads = loss.backward()?;
                clip(&mut grads, &stage_vars, opts.clip_norm)?;
                opt.step(schedule(lr, opts.warmup, step, total_steps), &grads)?;
                step += 1;
                let lv = loss.to_scalar::<f32>()? as f64;
                epoch_loss += lv * n as f64;
                epoch_tokens = epoch_tokens.saturating_add(n);
                progress(Progress::Step {
                    epoch,
                    step: s + 1,
                    steps: steps_per_epoch,
                    loss: lv,
                    examples_per_s: idx.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                });
                if checkpoint.is_some() && save_due(opts.save_steps, s + 1, batches.len()) {
                    let here = InEpoch {
                        steps: s + 1,
                        batches: batches.clone(),
                        loss: epoch_loss,
                        count: epoch_tokens,
                        seconds: seconds_before + started.elapsed().as_secs_f64(),
                    };
                    save_state(
                        epoch - 1,
                        stage,
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
            let dev = evaluate()?;
            let record = PretrainEpoch {
                epoch,
                head_only,
                train_loss: epoch_loss / epoch_tokens.max(1) as f64,
                dev_loss: dev.map(|d| d.0),
                dev_accuracy: dev.map(|d| d.1),
                seconds,
                texts_per_s: train_ids.len() as f64 / seconds.max(1e-9),
            };
            progress(Progress::Pretrain(record.clone()));
            history.push(record);
            // Without held-out texts the last epoch is kept.
            let score = dev.map_or(-(epoch as f64), |d| d.0);
            if best.as_ref().is_none_or(|(b, ..)| score < *b) {
                let snapshot = vars
                    .iter()
                    .map(|v| v.as_tensor().copy())
                    .collect::<Result<_, _>>()?;
                best = Some((score, epoch, snapshot));
            }
            save_state(
                epoch, stage, None, step, &order, &rng, &best, &history, &opt,
            )?;
        }
    }
    let (_, best_epoch, snapshot) = best.expect("at least one epoch (checked above)");

    let mut tensors: HashMap<String, Tensor> = encoder
        .model()
        .named_parameters()
        .iter()
        .map(|(name, t)| (name.clone(), t.clone()))
        .collect();
    tensors.extend(named.iter().map(|(n, _)| n.clone()).zip(snapshot));
    let pretrained = Pretrained {
        history,
        best_epoch,
        dev_before,
        head_epochs,
        output_tokens,
        truncated_texts,
    };
    let counts = (train_ids.len(), dev_ids.len(), skipped.len());
    write_folder(opts, &tensors, &pretrained, counts)?;
    if let Some((checkpoint, ..)) = checkpoint {
        checkpoint.remove()?;
    }
    Ok(pretrained)
}

/// Writes the model folder (staged, swapped in whole). The counts: texts
/// trained on, held-out texts, texts left out (nothing to predict).
fn write_folder(
    opts: &PretrainOptions,
    tensors: &HashMap<String, Tensor>,
    done: &Pretrained,
    (texts, dev_texts, skipped): (usize, usize, usize),
) -> Result<(), ClassifierError> {
    let io =
        |what: &Path, e: std::io::Error| ClassifierError::Other(format!("{}: {e}", what.display()));
    let record = serde_json::json!({
        "base": opts.base.file_name().map(|n| n.to_string_lossy().into_owned()),
        "objective": "masked language modelling (BERT: 15 % of tokens, 80 % [MASK], 10 % random, 10 % kept)",
        "texts": texts, "dev_texts": dev_texts, "skipped_texts": skipped,
        "max_tokens": opts.max_tokens, "truncation": opts.truncation, "truncated_texts": done.truncated_texts, "epochs": opts.epochs, "batch_size": opts.batch_size,
        "lr": opts.lr, "warmup": opts.warmup, "weight_decay": opts.weight_decay,
        "mask_rate": opts.mask_rate, "seed": opts.seed, "clip_norm": opts.clip_norm,
        "train_embeddings": opts.train_embeddings,
        "head_epochs": done.head_epochs, "head_lr": opts.head_lr,
        "full_vocab": opts.full_vocab, "output_tokens": done.output_tokens,
        "best_epoch": done.best_epoch,
        "dev_before": done.dev_before.map(|(l, a)| serde_json::json!({"loss": l, "accuracy": a})),
        "history": done.history,
    });
    write_staged(&opts.out, |staging| {
        // The tokenizer and config files as they are (the weights are new).
        for entry in std::fs::read_dir(&opts.base).map_err(|e| io(&opts.base, e))? {
            let entry = entry.map_err(|e| io(&opts.base, e))?;
            let file = entry.file_name();
            let file = file.to_string_lossy();
            let keep = entry.path().is_file()
                && (file.ends_with(".json") || file.ends_with(".txt") || file.ends_with(".model"))
                && file != "pretrain.json"
                && file != "graft.json";
            if keep {
                std::fs::copy(entry.path(), staging.join(&*file))
                    .map_err(|e| io(&entry.path(), e))?;
            }
        }
        candle_core::safetensors::save(tensors, staging.join("model.safetensors"))?;
        std::fs::write(
            staging.join("pretrain.json"),
            serde_json::to_string_pretty(&record).expect("plain JSON"),
        )
        .map_err(|e| io(staging, e))
    })
}
