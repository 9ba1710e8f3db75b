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
    /// A JSON Lines file (`-` = standard input), one `{"text": "...", "id":
    /// optional, "lang": optional, "max_facts": optional}` per line; prints one
    /// JSON object per line, in order. A bad line gets `{"line": N, "error":
    /// "..."}` in its place, the rest is still linked, and the exit status is 1.
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
#[serde(deny_unknown_fields)]
struct InputLine {
    text: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    max_facts: Option<usize>,
}

pub fn run(data_dir: &Path, args: LinkArgs) -> CliResult {
    let config = load_config(args.link_config.as_deref())?;
    let store = Arc::new(GraphStore::open(data_dir)?);
    let linker = build_linker(store, config)?;
    if args.index_stats {
        eprintln!("{}", serde_json::to_string(&linker.index()?.stats())?);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let Some(path) = &args.input else {
        let text = args.text.as_deref().ok_or("give a TEXT or --input FILE")?;
        let answer = link_text(&linker, text, args.lang.as_deref(), args.max_facts)?;
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
        out.flush()?;
        return Ok(());
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    // A bad line gets an error object in its place; the others are still linked.
    let (mut texts, mut bytes, mut busy, mut failed) = (0u64, 0u64, Duration::ZERO, 0u64);
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let start = std::time::Instant::now();
        let result = serde_json::from_str::<InputLine>(&line)
            .map_err(|e| e.to_string())
            .and_then(|input| {
                let lang = input.lang.as_deref().or(args.lang.as_deref());
                let answer = link_text(
                    &linker,
                    &input.text,
                    lang,
                    input.max_facts.or(args.max_facts),
                )
                .map_err(|e| e.to_string())?;
                bytes += input.text.len() as u64;
                let mut value = serde_json::to_value(answer).map_err(|e| e.to_string())?;
                if let Some(id) = input.id {
                    value["id"] = id;
                }
                Ok(value)
            });
        busy += start.elapsed();
        let value = result.unwrap_or_else(|error| {
            failed += 1;
            eprintln!("{}:{}: {error}", path.display(), n + 1);
            serde_json::json!({ "line": n + 1, "error": error })
        });
        texts += 1;
        writeln!(out, "{}", serde_json::to_string(&value)?)?;
    }
    out.flush()?;
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
    if failed > 0 {
        return Err(format!(
            "{failed} of {texts} lines failed (each has an error object in the output)"
        )
        .into());
    }
    Ok(())
}
