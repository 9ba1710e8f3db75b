//! `graft link`: link the entities of a text (or of a JSONL file of texts)
//! and print them with their facts as JSON.

use super::CliResult;
use crate::graph::GraphStore;
use crate::knowledge::link_text;
use crate::link::{LinkConfig, Linker};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The text to link. Without it, --input must be given.
    #[arg(required_unless_present = "input")]
    pub text: Option<String>,
    /// A JSON Lines file, one `{"text": "...", "id": optional, "lang": optional}`
    /// per line; prints one JSON object per line, in order.
    #[arg(long, conflicts_with = "text")]
    pub input: Option<PathBuf>,
    /// Language of the labels in the answer (default: guessed from the script).
    #[arg(long)]
    pub lang: Option<String>,
    /// At most this many facts per text.
    #[arg(long)]
    pub max_facts: Option<usize>,
    /// A JSON file overriding linking settings (label predicates, thresholds, fact predicates...).
    #[arg(long)]
    pub link_config: Option<PathBuf>,
    /// Print the label index's size, build time and memory to stderr (one JSON line).
    #[arg(long)]
    pub index_stats: bool,
    /// With --input: print the linking throughput to stderr (one JSON line:
    /// texts, bytes, link_ms, texts_per_s, mb_per_s), linking and fact
    /// retrieval only (no index build, no output).
    #[arg(long, requires = "input")]
    pub timing: bool,
}

/// Reads `--link-config`, or the defaults.
pub fn load_config(path: Option<&Path>) -> Result<LinkConfig, String> {
    path.map_or_else(|| Ok(LinkConfig::default()), LinkConfig::from_file)
}

/// Builds the linker with a progress line on stderr.
pub fn build_linker(
    store: Arc<GraphStore>,
    config: LinkConfig,
) -> Result<Linker, crate::graph::GraphError> {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template(
            "{spinner} label index: {human_pos} label triples ({elapsed})",
        )
        .expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let linker = Linker::new(store, config, &|n| bar.set_position(n));
    bar.finish_and_clear();
    linker
}

#[derive(serde::Deserialize)]
struct InputLine {
    text: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    lang: Option<String>,
}

pub fn run(data_dir: &Path, args: LinkArgs) -> CliResult {
    let config = load_config(args.link_config.as_deref())?;
    let store = Arc::new(GraphStore::open(data_dir)?);
    let linker = build_linker(store, config)?;
    if args.index_stats {
        eprintln!("{}", serde_json::to_string(&linker.index()?.stats())?);
    }
    let answer =
        |text: &str, lang: Option<&str>| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
            let answer = link_text(&linker, text, lang.or(args.lang.as_deref()), args.max_facts)?;
            Ok(serde_json::to_value(answer)?)
        };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match (&args.text, &args.input) {
        (Some(text), _) => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&answer(text, None)?)?
        )?,
        (None, Some(path)) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let (mut texts, mut bytes, mut busy) = (0u64, 0u64, Duration::ZERO);
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let input: InputLine = serde_json::from_str(&line)
                    .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
                let start = std::time::Instant::now();
                let mut value = answer(&input.text, input.lang.as_deref())
                    .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
                busy += start.elapsed();
                texts += 1;
                bytes += input.text.len() as u64;
                if let Some(id) = input.id {
                    value["id"] = id;
                }
                writeln!(out, "{}", serde_json::to_string(&value)?)?;
            }
            if args.timing {
                let secs = busy.as_secs_f64().max(1e-9);
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "texts": texts,
                        "bytes": bytes,
                        "link_ms": busy.as_secs_f64() * 1e3,
                        "texts_per_s": texts as f64 / secs,
                        "mb_per_s": bytes as f64 / secs / 1e6,
                    })
                );
            }
        }
        (None, None) => return Err("give a TEXT or --input FILE".into()),
    }
    out.flush()?;
    Ok(())
}
