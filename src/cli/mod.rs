//! The `graft` command line: flag definitions (clap) and dispatch. Each
//! subcommand parses its flags and calls the core; no logic of its own.

mod classify;
mod embed;
mod graph;
mod link;
mod pretrain;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// graft: classify text with a BERT model that reads a knowledge graph.
///
/// graft keeps an RDF store on disk (under --data-dir), serves it over the
/// standard SPARQL 1.1 Protocol and Graph Store HTTP Protocol, and loads and
/// queries it from the command line. Only one process may open a store at a
/// time: stop `graft serve` before running `graft graph` on the same data dir.
#[derive(Debug, Parser)]
#[command(name = "graft", version, about, long_about)]
pub struct Cli {
    /// Directory holding the store (`store/`) and its generation counter; created when absent.
    #[arg(long, global = true, env = "GRAFT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Log format on stderr: human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the store and the classifiers over HTTP: /sparql (SPARQL 1.1 Protocol), /store (Graph Store Protocol), /v1/classify, /v1/models, /v1/link, /v1/embed, /health, /metrics, /openapi.json, and the web console at /.
    Serve(serve::ServeArgs),
    /// Load, query, update, dump and inspect the store.
    #[command(subcommand)]
    Graph(graph::GraphCommand),
    /// Link the entities a text mentions to graph nodes; print them and their facts as JSON.
    Link(link::LinkArgs),
    /// Embed texts with a BERT model folder; print {"embeddings": [[...]], "dim": N} as JSON.
    Embed(embed::EmbedArgs),
    /// Adapt an encoder to a domain before fine-tuning: masked-LM pre-training on its texts (labels unused); writes a model folder for graft train --model.
    Pretrain(Box<pretrain::PretrainArgs>),
    /// Fine-tune a classifier on labelled data, with graph facts fused into its input (K-BERT).
    Train(Box<classify::TrainArgs>),
    /// Evaluate a trained classifier: accuracy, per-label P/R/F1, confusion matrix (JSON, Markdown, SVG).
    Eval(classify::EvalArgs),
    /// Classify a text (or a JSON Lines file) with a trained model; print the label, the ranking, the entities and the injected facts, as POST /v1/classify answers.
    Classify(classify::ClassifyArgs),
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    init_logging(cli.log_format);
    if !matches!(cli.command, Command::Serve(_)) {
        // Commands that print end quietly when their reader goes away
        // (`graft classify --input big.jsonl | head`), as Unix tools do.
        // Not the server: it must survive clients that hang up.
        // SAFETY: restoring a signal's default disposition before any
        // other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(&cli.data_dir, args),
        Command::Graph(cmd) => graph::run(&cli.data_dir, cmd),
        Command::Link(args) => link::run(&cli.data_dir, args),
        Command::Embed(args) => embed::run(args),
        Command::Pretrain(args) => pretrain::run(*args),
        Command::Train(args) => classify::run_train(&cli.data_dir, *args),
        Command::Eval(args) => classify::run_eval(&cli.data_dir, args),
        Command::Classify(args) => classify::run_classify(&cli.data_dir, args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An error at the CLI edge: a message for the user.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;
