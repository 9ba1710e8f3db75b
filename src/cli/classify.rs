//! `graft train`, `graft eval`, `graft classify`: thin over
//! [`crate::classifier`]; the graph's facts come from the store under
//! `--data-dir` through the entity linker.

use super::CliResult;
use crate::classifier::report::{markdown, svg, EvalReport};
use crate::classifier::train::{evaluate_examples, train, Progress, TrainOptions};
use crate::classifier::{data, injections, Classifier, DataFormat};
use crate::encoder::Pooling;
use crate::fusion::{FusionLimits, FusionMode, Truncation};
use crate::graph::GraphStore;
use crate::knowledge::link_spans;
use crate::link::Linker;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Flags shared by the commands that read labelled files.
#[derive(Debug, Args, Clone)]
pub struct FieldArgs {
    /// Field (JSONL) or column (CSV/TSV, with a header row) holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Field or column holding the label: a string, or for multi-label data a
    /// JSON list or a string split at --label-separator.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    /// Separator between labels inside one CSV/TSV label cell (multi-label).
    #[arg(long)]
    pub label_separator: Option<String>,
}

impl FieldArgs {
    fn format(&self) -> DataFormat {
        DataFormat {
            text_field: self.text_field.clone(),
            label_field: self.label_field.clone(),
            label_separator: self.label_separator.clone(),
        }
    }
}

/// Flags of `graft train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training examples (.jsonl, .csv or .tsv).
    #[arg(long)]
    pub train: PathBuf,
    /// Development examples: early stopping and the best checkpoint by their macro-F1.
    #[arg(long)]
    pub dev: PathBuf,
    /// Test examples: evaluated once with the best checkpoint, written into graft.json.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// The base encoder (a Hugging Face folder, e.g. models/all-MiniLM-L6-v2).
    #[arg(long)]
    pub model: PathBuf,
    /// Where the trained model folder goes.
    #[arg(long)]
    pub out: PathBuf,
    /// How graph facts enter the input: kbert (sentence tree), append (second segment) or none.
    #[arg(long, default_value = "kbert")]
    pub fusion: FusionMode,
    /// Longest input in tokens, special tokens and injected facts included.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Facts injected per entity mention.
    #[arg(long, default_value_t = 2)]
    pub max_facts_per_entity: usize,
    /// Tokens of one injected fact.
    #[arg(long, default_value_t = 8)]
    pub max_tokens_per_fact: usize,
    /// Injected tokens per input, all facts together.
    #[arg(long, default_value_t = 32)]
    pub max_injected_tokens: usize,
    /// Which part of a text too long for the input is kept (the room for
    /// text is --max-len less [CLS], [SEP] and, in modes that inject, the
    /// room for facts): head (its start), tail (its end) or head+tail (a
    /// quarter of the room from the start, the rest from the end; Sun et al.
    /// 2019). Only the kept parts are linked. Saved with the model.
    #[arg(long, value_name = "WHICH", default_value = "head")]
    pub truncation: Truncation,
    /// Epochs (default: 30 with --freeze-encoder, 3 otherwise).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Peak learning rate (default: 5e-3 with --freeze-encoder, 5e-5 otherwise).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Share of the steps spent warming the learning rate up.
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    /// AdamW's decoupled weight decay, on weight matrices only (not on
    /// biases and layer norms, as BERT's own optimizer).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay ξ (Sun et al. 2019): the top layer and
    /// the head train at --lr, each layer below at ξ times the rate of the
    /// one above, the embeddings last. 1 = off; 0.9–0.95 are usual.
    #[arg(long, value_name = "XI", default_value_t = 1.0)]
    pub layer_lr_decay: f64,
    /// Label smoothing ε (Szegedy et al. 2016): the target puts 1 − ε on the
    /// gold label and spreads ε over all labels, so a few wrong labels in
    /// the training set cost less. 0 = off; 0.1 is usual. At least 0, below 1.
    #[arg(long, value_name = "EPSILON", default_value_t = 0.0)]
    pub label_smoothing: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Train only the head on vectors encoded once (fast); the encoder stays as it is.
    #[arg(long)]
    pub freeze_encoder: bool,
    /// Fine-tune only the top N transformer layers and the head; the
    /// embeddings and the layers below stay frozen and run once per input.
    /// A middle ground in time and accuracy between --freeze-encoder and
    /// full fine-tuning; N = all layers trains every layer but the embeddings.
    #[arg(long, value_name = "N", conflicts_with = "freeze_encoder")]
    pub train_layers: Option<usize>,
    /// Batch examples of similar length together (less padding, faster
    /// epochs on texts of mixed lengths).
    #[arg(long)]
    pub group_by_length: bool,
    /// Stop after this many epochs without a better dev macro-F1.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Largest global gradient norm.
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f64,
    /// Do not weight the loss by inverse class frequency.
    #[arg(long)]
    pub no_class_weights: bool,
    /// Several labels per text (sigmoid per label, threshold 0.5).
    #[arg(long)]
    pub multi_label: bool,
    /// How token vectors become the vector the head reads.
    #[arg(long, default_value = "mean")]
    pub pooling: Pooling,
    /// Refuse a training label with fewer examples than this.
    #[arg(long, default_value_t = 2)]
    pub min_examples_per_label: usize,
    /// Language of the fact labels (default: guessed per text).
    #[arg(long)]
    pub lang: Option<String>,
    /// With --freeze-encoder: keep encoded vectors in this folder so runs
    /// that differ only in seed or head settings encode once.
    #[arg(long)]
    pub feature_cache: Option<PathBuf>,
    /// Save the training state in this folder after every epoch (and every
    /// --save-steps steps); run the same command again after an
    /// interruption and training resumes from the last saved step, ending
    /// with the same model. Refused when it holds another run's state.
    /// Deleted once the model is written.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// With --checkpoint-dir: also save the state every N optimizer steps
    /// inside an epoch, so a stopped run loses at most N steps (0: at epoch
    /// ends only). The result is the same whatever N, and a run may resume
    /// with another N.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub save_steps: usize,
    #[command(flatten)]
    pub fields: FieldArgs,
}

/// Flags of `graft eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A trained model folder (from graft train).
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled test examples.
    #[arg(long)]
    pub test: PathBuf,
    /// Write the report here as JSON, and beside it FILE.md and FILE.svg.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Language of the fact labels (default: guessed per text).
    #[arg(long)]
    pub lang: Option<String>,
    #[command(flatten)]
    pub fields: FieldArgs,
}

/// Flags of `graft classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// A trained model folder.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to classify. Without it, --input must be given.
    #[arg(required_unless_present = "input")]
    pub text: Option<String>,
    /// A JSON Lines file (`-` = standard input), one `{"text": "...", "id":
    /// optional}` per line; prints one answer per line (with its `id`), in
    /// order. Other fields (such as a data set's `label`) are ignored, so a
    /// prepared split can be classified as it is. Texts are classified in
    /// batches of 64, as the server does.
    #[arg(long, conflicts_with = "text")]
    pub input: Option<PathBuf>,
    /// Labels in the ranking.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Below this probability the label is `out_of_scope` (`fallback: true`).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Run the model without graph facts (to compare).
    #[arg(long)]
    pub no_graph: bool,
    /// Language of the fact labels (default: guessed from the text).
    #[arg(long)]
    pub lang: Option<String>,
    /// With --input: print the throughput to stderr (one JSON line).
    #[arg(long, requires = "input")]
    pub timing: bool,
    /// A JSON file overriding entity-linking settings (as `graft serve
    /// --link-config`; see docs/linking.md).
    #[arg(long)]
    pub link_config: Option<PathBuf>,
}

type Knowledge = Box<crate::classifier::train::Knowledge>;

/// The linker over the store, when the fusion mode needs facts.
fn linker(
    data_dir: &Path,
    needed: bool,
) -> Result<Option<Arc<Linker>>, Box<dyn std::error::Error>> {
    if !needed {
        return Ok(None);
    }
    let store = Arc::new(GraphStore::open(data_dir)?);
    let linker = super::link::build_linker(store, crate::link::LinkConfig::default())?;
    Ok(Some(Arc::new(linker)))
}

/// Warns when the store is not the graph the model was trained with.
fn check_graph(classifier: &Classifier, linker: &Option<Arc<Linker>>) {
    if let (Some(l), Some(g)) = (linker, &classifier.card.graph) {
        let labels = l.index().map(|i| i.stats().labels).unwrap_or(0);
        if labels == 0 {
            tracing::warn!("the store has no labelled nodes: no facts will be injected (use the --data-dir the model was trained with)");
        } else if l.indexed_generation() != g.generation {
            tracing::warn!(
                trained = g.generation,
                now = l.indexed_generation(),
                "the store's generation differs from the one the model was trained with"
            );
        }
    }
}

fn knowledge(linker: Option<Arc<Linker>>, lang: Option<String>) -> Knowledge {
    Box::new(
        move |text: &str, spans: &[std::ops::Range<usize>]| match &linker {
            None => Ok(Vec::new()),
            Some(l) => link_spans(l, text, spans, lang.as_deref(), None)
                .map(|a| injections(&a))
                .map_err(|e| e.to_string()),
        },
    )
}

/// Shows the progress events every training command shares on `bar`:
/// inputs being built (`preparing`) and a step (`unit`: what the step's
/// speed counts, "examples" or "texts"). Without a terminal the bar is
/// hidden, so a step line is printed once a minute instead (`last_line`).
/// Returns false for the events each command prints itself.
pub(super) fn show_progress(
    bar: &ProgressBar,
    last_line: &std::cell::Cell<std::time::Instant>,
    preparing: &str,
    unit: &str,
    p: &Progress,
) -> bool {
    match *p {
        Progress::Preparing { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(preparing.to_owned());
        }
        Progress::Step {
            epoch,
            step,
            steps,
            loss,
            examples_per_s,
        } => {
            bar.set_length(steps as u64);
            bar.set_position(step as u64);
            bar.set_message(format!(
                "epoch {epoch} loss {loss:.4} {examples_per_s:.0} {unit}/s"
            ));
            if bar.is_hidden() && last_line.get().elapsed().as_secs() >= 60 {
                last_line.set(std::time::Instant::now());
                eprintln!(
                    "epoch {epoch}: step {step}/{steps}, loss {loss:.4}, {examples_per_s:.1} {unit}/s"
                );
            }
        }
        Progress::Resumed {
            epochs_done,
            steps_done,
            epochs,
            stopped,
        } => bar.suspend(|| {
            if stopped {
                eprintln!("resuming: early stopping ended this run after epoch {epochs_done}; writing its model (--checkpoint-dir)")
            } else if steps_done > 0 {
                eprintln!(
                    "resuming after step {steps_done} of epoch {} of {epochs} from the saved state (--checkpoint-dir)",
                    epochs_done + 1
                )
            } else {
                eprintln!("resuming after epoch {epochs_done} of {epochs} from the saved state (--checkpoint-dir)")
            }
        }),
        Progress::Saved { epoch, step, steps } => {
            // A line in logs; on a terminal the bar shows progress.
            if bar.is_hidden() {
                eprintln!("epoch {epoch}: state saved after step {step}/{steps} (--checkpoint-dir)");
            }
        }
        Progress::FeatureCache {
            ref path,
            vectors,
            read,
        } => bar.suspend(|| {
            let (verb, way) = if read { ("read", "from") } else { ("wrote", "to") };
            eprintln!(
                "{verb} the vectors of {vectors} inputs {way} the feature cache ({})",
                path.display()
            )
        }),
        Progress::Epoch(_) | Progress::Pretrain(_) => return false,
    }
    true
}

pub(super) fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(template).expect("static template"));
    bar
}

pub fn run_train(data_dir: &Path, args: TrainArgs) -> CliResult {
    let format = args.fields.format();
    let train_examples = data::read_examples(&args.train, &format)?;
    let dev_examples = data::read_examples(&args.dev, &format)?;
    let test_examples = match &args.test {
        Some(p) => Some(data::read_examples(p, &format)?),
        None => None,
    };
    if !args.multi_label {
        data::check_single_label(&args.train, &train_examples)?;
        data::check_single_label(&args.dev, &dev_examples)?;
    }
    let labels = data::label_set(&args.train, &train_examples, args.min_examples_per_label)?;
    data::check_known(&args.dev, &dev_examples, &labels)?;
    if let (Some(p), Some(t)) = (&args.test, &test_examples) {
        data::check_known(p, t, &labels)?;
    }
    let frozen = args.freeze_encoder;
    let opts = TrainOptions {
        base: args.model.clone(),
        out: args.out.clone(),
        fusion: args.fusion,
        limits: FusionLimits {
            max_tokens: args.max_len,
            max_facts_per_entity: args.max_facts_per_entity,
            max_tokens_per_fact: args.max_tokens_per_fact,
            max_injected_tokens: args.max_injected_tokens,
            truncation: args.truncation,
        },
        pooling: args.pooling,
        epochs: args.epochs.unwrap_or(if frozen { 30 } else { 3 }),
        batch_size: args.batch_size.max(1),
        lr: args.lr.unwrap_or(if frozen { 5e-3 } else { 5e-5 }),
        warmup: args.warmup,
        weight_decay: args.weight_decay,
        layer_lr_decay: args.layer_lr_decay,
        seed: args.seed,
        freeze_encoder: frozen,
        train_layers: args.train_layers,
        group_by_length: args.group_by_length,
        patience: args.patience,
        clip_norm: args.clip_norm,
        balanced: !args.no_class_weights,
        multi_label: args.multi_label,
        head_dropout: 0.1,
        label_smoothing: args.label_smoothing,
        feature_cache: args.feature_cache.clone(),
        checkpoint_dir: args.checkpoint_dir.clone(),
        save_steps: args.save_steps,
    };
    let linker = linker(data_dir, args.fusion != FusionMode::None)?;
    if let Some(l) = &linker {
        if l.index()?.stats().labels == 0 {
            return Err(format!(
                "--fusion {} needs graph facts, but the store under --data-dir {} has no labelled nodes: load a graph first (graft graph load)",
                args.fusion,
                data_dir.display()
            )
            .into());
        }
    }
    let graph = linker
        .as_ref()
        .map(|l| (l.indexed_generation(), l.config().fact_predicates.clone()));
    let know = knowledge(linker, args.lang.clone());
    let data_info = serde_json::json!({
        "train": {"file": args.train.display().to_string(), "sha256": data::file_sha256(&args.train)?, "examples": train_examples.len()},
        "dev": {"file": args.dev.display().to_string(), "sha256": data::file_sha256(&args.dev)?, "examples": dev_examples.len()},
    });
    let progress = bar(0, "{msg} [{bar:30}] {pos}/{len} ({elapsed})");
    let last_line = std::cell::Cell::new(std::time::Instant::now());
    let on_progress = |p: Progress| {
        if show_progress(&progress, &last_line, "building inputs", "examples", &p) {
            return;
        }
        if let Progress::Epoch(r) = p {
            // Printed even without a terminal (a hidden bar drops println).
            progress.suspend(|| {
                eprintln!(
                    "epoch {}: train loss {:.4}, dev accuracy {:.4}, dev macro-F1 {:.4}, {:.1} examples/s",
                    r.epoch, r.train_loss, r.dev_accuracy, r.dev_macro_f1, r.examples_per_s
                )
            });
        }
    };
    let trained = train(
        &opts,
        &labels,
        &train_examples,
        &dev_examples,
        &know,
        graph,
        data_info,
        &on_progress,
    )?;
    progress.finish_and_clear();
    let mut card = trained.card.clone();
    let cut = card.training["truncated"]["train"].as_u64().unwrap_or(0);
    if cut > 0 {
        eprintln!(
            "{cut} of {} training texts were cut to fit --max-len (--truncation {} keeps {})",
            train_examples.len(),
            args.truncation,
            match args.truncation {
                Truncation::Head => "their start",
                Truncation::Tail => "their end",
                Truncation::HeadTail => "their start and their end",
            }
        );
    }
    if let (Some(path), Some(test)) = (&args.test, &test_examples) {
        let classifier = Classifier::load(&args.out)?;
        let (metrics, coverage) = evaluate_examples(&classifier, test, &know, &|_| {})?;
        card.metrics["test"] = serde_json::to_value(&metrics)?;
        card.metrics["test_coverage"] = coverage.into();
        card.training["data"]["test"] = serde_json::json!({
            "file": path.display().to_string(), "sha256": data::file_sha256(path)?, "examples": test.len()});
        crate::classifier::train::write_card(&args.out, &card)?;
        eprintln!(
            "test: accuracy {:.4}, macro-F1 {:.4} ({} examples)",
            metrics.accuracy, metrics.macro_avg.f1, metrics.examples
        );
    }
    // Training and the card are complete: the saved state has done its job.
    if let Some(checkpoint) = trained.checkpoint {
        checkpoint.remove()?;
    }
    eprintln!(
        "dev (best epoch): accuracy {:.4}, macro-F1 {:.4}; model written to {}",
        trained.dev.accuracy,
        trained.dev.macro_avg.f1,
        args.out.display()
    );
    println!("{}", serde_json::to_string(&card.metrics)?);
    Ok(())
}

pub fn run_eval(data_dir: &Path, args: EvalArgs) -> CliResult {
    let classifier = Classifier::load(&args.model)?;
    let examples = data::read_examples(&args.test, &args.fields.format())?;
    data::check_known(&args.test, &examples, &classifier.card.labels)?;
    let linker = linker(data_dir, classifier.card.fusion != FusionMode::None)?;
    check_graph(&classifier, &linker);
    let know = knowledge(linker, args.lang.clone());
    let started = std::time::Instant::now();
    let (metrics, coverage) = evaluate_examples(&classifier, &examples, &know, &|_| {})?;
    let report = EvalReport {
        model: args.model.display().to_string(),
        test_file: args.test.display().to_string(),
        test_sha256: data::file_sha256(&args.test)?,
        fusion: classifier.card.fusion.to_string(),
        coverage,
        metrics,
        examples_per_s: examples.len() as f64 / started.elapsed().as_secs_f64().max(1e-9),
    };
    let md = markdown(&report, &classifier.card);
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(path.with_extension("md"), &md)?;
        svg(&path.with_extension("svg"), &report, &classifier.card)?;
        eprintln!(
            "report: {}, {}, {}",
            path.display(),
            path.with_extension("md").display(),
            path.with_extension("svg").display()
        );
    }
    println!("{md}");
    Ok(())
}

/// One answer line of `graft classify --input`: the answer and the line's `id`.
#[derive(serde::Serialize)]
struct AnswerLine<'a> {
    #[serde(flatten)]
    answer: &'a crate::serving::Answer,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
}

/// One line of `graft classify --input`; fields other than `text` and `id`
/// are ignored (a data set's `label`, say), with a warning on stderr the
/// first time a field other than `label`/`labels` is seen (a misspelled
/// `id` would otherwise vanish silently).
#[derive(serde::Deserialize)]
struct ClassifyLine {
    text: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Fields of an input line that are ignored without a warning: the labels a
/// prepared split (`data/datasets/*/*.jsonl`) carries.
const QUIET_FIELDS: [&str; 2] = ["label", "labels"];

/// `graft classify`: the serving path of `POST /v1/classify` (linking,
/// fusion, batched encoding, the decision) without HTTP and without the cache.
pub fn run_classify(data_dir: &Path, args: ClassifyArgs) -> CliResult {
    use crate::serving::{ClassifyOptions, ClassifyService, ModelRegistry, NoObserver};
    // The folder's name, made a valid model name (it only labels the answers).
    let name: String = args
        .model
        .file_name()
        .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let observer: Arc<dyn crate::serving::Observer> = Arc::new(NoObserver);
    let models = ModelRegistry::load(
        &[(name, args.model.clone())],
        crate::serving::BatchConfig::default(),
        observer.clone(),
    )?;
    let classifier = models.get(None)?.classifier.clone();
    let needs_graph = !args.no_graph && classifier.card.fusion != FusionMode::None;
    // A model trained without facts (or --no-graph) reads no graph: no data
    // directory is created or locked for it.
    let store = Arc::new(if needs_graph {
        GraphStore::open(data_dir)?
    } else {
        GraphStore::in_memory()?
    });
    let slot: crate::api::LinkerSlot = Arc::default();
    if needs_graph {
        let linker = Arc::new(super::link::build_linker(
            store.clone(),
            super::link::load_config(args.link_config.as_deref())?,
        )?);
        check_graph(&classifier, &Some(linker.clone()));
        let _ = slot.set(Ok(linker));
    }
    let service = Arc::new(ClassifyService {
        models,
        linker: slot,
        store,
        cache: None,
        cache_context: String::new(),
        fallback_label: "out_of_scope".into(),
        observer,
    });
    let options = ClassifyOptions {
        top_k: args.top_k.max(1),
        threshold: args.threshold,
        explain: true,
        use_graph: !args.no_graph,
        lang: args.lang.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let classify = |texts: Vec<String>| runtime.block_on(service.classify(None, texts, &options));
    let Some(path) = &args.input else {
        let text = args.text.clone().ok_or("give a TEXT or --input FILE")?;
        let answer = classify(vec![text])?.remove(0);
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    };
    let reader: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let started = std::time::Instant::now();
    let (mut texts, mut failed) = (0usize, 0usize);
    let mut pending: Vec<(usize, ClassifyLine)> = Vec::new();
    let mut warned = std::collections::BTreeSet::new();
    let flush = |pending: &mut Vec<(usize, ClassifyLine)>,
                 out: &mut dyn std::io::Write|
     -> Result<usize, Box<dyn std::error::Error>> {
        if pending.is_empty() {
            return Ok(0);
        }
        let batch: Vec<String> = pending.iter().map(|(_, l)| l.text.clone()).collect();
        let mut bad = 0;
        match classify(batch) {
            Ok(answers) => {
                for ((_, line), answer) in pending.iter().zip(&answers) {
                    let value = AnswerLine {
                        answer,
                        id: line.id.as_ref(),
                    };
                    writeln!(out, "{}", serde_json::to_string(&value)?)?;
                }
            }
            // One bad text fails its batch: answer the batch's lines one by
            // one, so only the bad line gets an error object.
            Err(_) => {
                for (n, line) in pending.iter() {
                    let text = match classify(vec![line.text.clone()]) {
                        Ok(a) => serde_json::to_string(&AnswerLine {
                            answer: &a[0],
                            id: line.id.as_ref(),
                        })?,
                        Err(e) => {
                            bad += 1;
                            eprintln!("{}:{n}: {e}", path.display());
                            let mut v = serde_json::json!({"line": n, "error": e.to_string(), "kind": e.kind()});
                            if let Some(id) = &line.id {
                                v["id"] = id.clone();
                            }
                            v.to_string()
                        }
                    };
                    writeln!(out, "{text}")?;
                }
            }
        }
        pending.clear();
        Ok(bad)
    };
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        texts += 1;
        match serde_json::from_str::<ClassifyLine>(&line) {
            Ok(parsed) => {
                for field in parsed.other.keys() {
                    if !QUIET_FIELDS.contains(&field.as_str()) && warned.insert(field.clone()) {
                        eprintln!(
                            "{}:{}: field `{field}` ignored (a line is {{\"text\": ..., \"id\": optional}}); warned once",
                            path.display(),
                            n + 1
                        );
                    }
                }
                pending.push((n + 1, parsed));
                if pending.len() == crate::serving::MAX_TEXTS {
                    failed += flush(&mut pending, &mut out)?;
                }
            }
            Err(e) => {
                failed += flush(&mut pending, &mut out)?;
                failed += 1;
                eprintln!("{}:{}: {e}", path.display(), n + 1);
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"line": n + 1, "error": e.to_string(), "kind": "bad_json"})
                )?;
            }
        }
    }
    failed += flush(&mut pending, &mut out)?;
    out.flush()?;
    if args.timing {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "{}",
            serde_json::json!({"texts": texts, "seconds": secs, "texts_per_s": texts as f64 / secs})
        );
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {texts} lines failed (each has an error object in the output)"
        )
        .into());
    }
    Ok(())
}
