//! `graft pretrain`: masked-LM further pre-training of an encoder on a
//! task's texts; thin over [`crate::classifier::pretrain`].

use super::classify::{bar, show_progress};
use super::CliResult;
use crate::classifier::data;
use crate::classifier::pretrain::{pretrain, PretrainOptions};
use crate::classifier::train::Progress;
use crate::encoder::mlm::MASK_RATE;
use crate::fusion::Truncation;
use clap::Args;
use std::path::PathBuf;

/// Flags of `graft pretrain`.
#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// The encoder to adapt (a Hugging Face folder, e.g. models/multilingual-e5-small).
    #[arg(long)]
    pub model: PathBuf,
    /// Texts to pre-train on: .jsonl, .csv or .tsv (the --text-field; labels
    /// are not read) or .txt (one text a line). Repeat for several files.
    #[arg(long, required = true)]
    pub texts: Vec<PathBuf>,
    /// Held-out texts: their masked-LM loss is reported before training and
    /// after each epoch, and the epoch with the lowest is saved (without
    /// them, the last).
    #[arg(long)]
    pub dev: Option<PathBuf>,
    /// Field (JSONL) or column (CSV/TSV) holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Where the adapted model folder goes (a Hugging Face folder that
    /// graft train --model reads).
    #[arg(long)]
    pub out: PathBuf,
    /// Longest text in tokens, special tokens included.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Which part of a longer text is kept: head (its start), tail (its
    /// end) or head+tail (a quarter of the room from the start, the rest
    /// from the end; Sun et al. 2019), as `graft train --truncation`: give
    /// both the same so the pre-training reads what the fine-tuning will.
    #[arg(long, value_name = "WHICH", default_value = "head")]
    pub truncation: Truncation,
    /// Passes that train the head and the encoder (after the head-only
    /// ones); 0 with --head-epochs trains only the head.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    /// Share of the steps spent warming the learning rate up.
    #[arg(long, default_value_t = 0.06)]
    pub warmup: f64,
    /// AdamW's decoupled weight decay, on weight matrices only.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Share of each text's tokens to predict (BERT: 0.15).
    #[arg(long, default_value_t = MASK_RATE)]
    pub mask_rate: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Largest global gradient norm.
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f64,
    /// Train the embeddings too (and the output projection tied to them):
    /// vocabulary × hidden more parameters, slow for large vocabularies.
    #[arg(long)]
    pub train_embeddings: bool,
    /// Passes that train only the masked-LM head (the encoder fixed: no
    /// backward pass through it) before the --epochs that train everything.
    /// Default: 1 when the model ships without a masked-LM head (a new one
    /// is made, e.g. sentence-embedding models), 0 when it has one.
    #[arg(long)]
    pub head_epochs: Option<usize>,
    /// Peak learning rate of the head-only passes.
    #[arg(long, default_value_t = 1e-3)]
    pub head_lr: f64,
    /// Predict over the whole vocabulary (slow for large vocabularies).
    /// Default: over the tokens that occur in the texts.
    #[arg(long)]
    pub full_vocab: bool,
    /// Save the state in this folder after every epoch (and every
    /// --save-steps steps); the same command again after an interruption
    /// resumes from the last saved step and writes the same model. Refused
    /// when it holds another run's state. Deleted once the model is
    /// written.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// With --checkpoint-dir: also save the state every N optimizer steps
    /// inside an epoch, so a stopped run loses at most N steps (0: at epoch
    /// ends only). The result is the same whatever N.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub save_steps: usize,
}

pub fn run(args: PretrainArgs) -> CliResult {
    let mut texts = Vec::new();
    for path in &args.texts {
        texts.extend(
            data::read_texts(path, &args.text_field)?
                .into_iter()
                .map(|e| e.text),
        );
    }
    let dev = match &args.dev {
        Some(p) => data::read_texts(p, &args.text_field)?
            .into_iter()
            .map(|e| e.text)
            .collect(),
        None => Vec::new(),
    };
    let opts = PretrainOptions {
        base: args.model.clone(),
        out: args.out.clone(),
        max_tokens: args.max_len,
        truncation: args.truncation,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        warmup: args.warmup,
        weight_decay: args.weight_decay,
        mask_rate: args.mask_rate,
        seed: args.seed,
        clip_norm: args.clip_norm,
        train_embeddings: args.train_embeddings,
        head_epochs: args.head_epochs,
        head_lr: args.head_lr,
        full_vocab: args.full_vocab,
        checkpoint_dir: args.checkpoint_dir.clone(),
        save_steps: args.save_steps,
    };
    let progress = bar(0, "{msg} [{bar:30}] {pos}/{len} ({elapsed})");
    let last_line = std::cell::Cell::new(std::time::Instant::now());
    let on_progress = |p: Progress| {
        if show_progress(&progress, &last_line, "tokenising", "texts", &p) {
            return;
        }
        match p {
            Progress::Pretrain(r) if r.epoch == 0 => progress.suspend(|| {
                eprintln!(
                    "before pre-training: dev loss {:.4}, dev accuracy {:.4}",
                    r.dev_loss.unwrap_or(f64::NAN),
                    r.dev_accuracy.unwrap_or(f64::NAN)
                )
            }),
            Progress::Pretrain(r) => progress.suspend(|| {
                let dev = match (r.dev_loss, r.dev_accuracy) {
                    (Some(l), Some(a)) => format!(", dev loss {l:.4}, dev accuracy {a:.4}"),
                    _ => String::new(),
                };
                eprintln!(
                    "epoch {}{}: train loss {:.4}{dev}, {:.1} texts/s",
                    r.epoch,
                    if r.head_only { " (head only)" } else { "" },
                    r.train_loss,
                    r.texts_per_s
                )
            }),
            _ => {}
        }
    };
    let done = pretrain(&opts, &texts, &dev, &on_progress)?;
    progress.finish_and_clear();
    if done.truncated_texts > 0 {
        eprintln!(
            "{} of {} training texts were cut to fit --max-len (--truncation {})",
            done.truncated_texts,
            texts.len(),
            opts.truncation
        );
    }
    eprintln!(
        "{} texts, best epoch {}; model written to {}",
        texts.len(),
        done.best_epoch,
        args.out.display()
    );
    println!(
        "{}",
        serde_json::json!({
            "best_epoch": done.best_epoch,
            "head_epochs": done.head_epochs,
            "output_tokens": done.output_tokens,
            "truncated_texts": done.truncated_texts,
            "dev_before": done.dev_before.map(|(l, a)| serde_json::json!({"loss": l, "accuracy": a})),
            "history": done.history,
        })
    );
    Ok(())
}
