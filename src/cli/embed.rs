//! `graft embed`: sentence vectors from a BERT model folder, as JSON.

use super::CliResult;
use crate::encoder::{Encoder, Pooling};
use clap::Args;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Flags of `graft embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The texts to embed. Without them, --input must be given.
    #[arg(required_unless_present = "input")]
    pub texts: Vec<String>,
    /// A Hugging Face model folder (config.json, tokenizer.json, model.safetensors or pytorch_model.bin).
    #[arg(long, env = "GRAFT_ENCODER")]
    pub model: PathBuf,
    /// A file with one text per line (`-` = standard input), instead of TEXT arguments.
    #[arg(long, conflicts_with = "texts")]
    pub input: Option<PathBuf>,
    /// How token vectors become one vector: the [CLS] token, the mean over tokens, or BERT's pooler.
    #[arg(long, default_value = "mean")]
    pub pooling: Pooling,
    /// Divide each vector by its L2 norm (cosine similarity = dot product).
    #[arg(long)]
    pub normalize: bool,
    /// Cut texts to this many tokens, special tokens included (default: the model's positions).
    #[arg(long)]
    pub max_tokens: Option<usize>,
}

/// The JSON printed on stdout.
#[derive(serde::Serialize)]
struct Output<'a> {
    embeddings: &'a [Vec<f32>],
    dim: usize,
    /// Tokens each text used (special tokens included).
    tokens: &'a [usize],
    /// Indexes of the texts cut to the maximum length.
    truncated: Vec<usize>,
}

pub fn run(args: EmbedArgs) -> CliResult {
    let texts = match &args.input {
        None => args.texts.clone(),
        Some(path) => read_lines(path)?,
    };
    let mut encoder = Encoder::load(&args.model)?;
    if let Some(n) = args.max_tokens {
        encoder.set_max_tokens(n)?;
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = encoder.embed(&refs, args.pooling, args.normalize)?;
    let truncated: Vec<usize> = out
        .truncated
        .iter()
        .enumerate()
        .filter_map(|(i, &t)| t.then_some(i))
        .collect();
    if !truncated.is_empty() {
        tracing::warn!(
            texts = ?truncated,
            max_tokens = encoder.tokenizer().max_tokens(),
            "texts cut to the maximum length"
        );
    }
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    serde_json::to_writer(
        &mut w,
        &Output {
            embeddings: &out.vectors,
            dim: out.dim,
            tokens: &out.tokens,
            truncated,
        },
    )?;
    writeln!(w)?;
    w.flush()?;
    Ok(())
}

fn read_lines(path: &PathBuf) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ))
    };
    let mut texts = Vec::new();
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let text = String::from_utf8(line)
            .map_err(|_| format!("{} line {}: not valid UTF-8", path.display(), n + 1))?;
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            return Err(format!(
                "{} line {}: empty (every line is one text)",
                path.display(),
                n + 1
            )
            .into());
        }
        texts.push(text.to_string());
    }
    Ok(texts)
}
