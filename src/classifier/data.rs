//! Labelled examples from CSV, TSV or JSON Lines files, checked line by line.
//!
//! Every problem names the file and the line: a missing column, an empty
//! text, a line that is not UTF-8, a line over the length bound, a label
//! outside the training labels (dev and test files).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Longest line read, in bytes; longer lines are an error, not read whole.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Its labels: one for single-label data, any number for multi-label.
    pub labels: Vec<String>,
    /// The 1-based line it came from.
    pub line: usize,
}

/// How to read a file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFormat {
    /// Field (JSONL) or column (CSV/TSV) holding the text.
    pub text_field: String,
    /// Field or column holding the label(s).
    pub label_field: String,
    /// For multi-label CSV/TSV: the separator inside the label column (e.g.
    /// `|`). In JSONL a list of strings is multi-label by itself.
    pub label_separator: Option<String>,
}

impl Default for DataFormat {
    fn default() -> Self {
        Self {
            text_field: "text".into(),
            label_field: "label".into(),
            label_separator: None,
        }
    }
}

/// Errors reading labelled data; each names the file and, where there is
/// one, the line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {file}: {message}")]
    Io { file: PathBuf, message: String },
    #[error("{file}: unknown format (use a .jsonl, .csv or .tsv file)")]
    UnknownFormat { file: PathBuf },
    #[error("{file} line {line}: not valid UTF-8")]
    NotUtf8 { file: PathBuf, line: usize },
    #[error("{file} line {line}: longer than {limit} bytes")]
    LineTooLong {
        file: PathBuf,
        line: usize,
        limit: usize,
    },
    #[error("{file} line {line}: no column or field \"{column}\"")]
    MissingColumn {
        file: PathBuf,
        line: usize,
        column: String,
    },
    #[error("{file} line {line}: {message}")]
    Malformed {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{file} line {line}: the text is empty")]
    EmptyText { file: PathBuf, line: usize },
    #[error("{file} line {line}: no label")]
    NoLabel { file: PathBuf, line: usize },
    #[error("{file} line {line}: label \"{label}\" does not occur in the training data")]
    UnknownLabel {
        file: PathBuf,
        line: usize,
        label: String,
    },
    #[error("{file}: no examples")]
    Empty { file: PathBuf },
    #[error("{file}: only one class (\"{label}\"): a classifier needs at least two")]
    OneClass { file: PathBuf, label: String },
    #[error("{file}: label \"{label}\" has only {count} example(s) (at least {min} needed; lower --min-examples-per-label to accept it)")]
    RareLabel {
        file: PathBuf,
        label: String,
        count: usize,
        min: usize,
    },
}

/// Reads every example of `path` (format from the extension: `.jsonl`,
/// `.json`, `.csv`, `.tsv`; `.gz` not supported).
///
/// Errors: as [`DataError`]; the first problem found stops the read.
pub fn read_examples(path: &Path, format: &DataFormat) -> Result<Vec<Example>, DataError> {
    read(path, format, true)
}

/// Reads the texts of `path` without labels (for masked-LM pre-training):
/// `.jsonl`/`.csv`/`.tsv` as [`read_examples`] but with no label field
/// read, or `.txt`, one text a line; blank lines are skipped. The
/// examples' `labels` are empty.
///
/// Errors: as [`DataError`] (no [`DataError::NoLabel`]).
pub fn read_texts(path: &Path, text_field: &str) -> Result<Vec<Example>, DataError> {
    if extension(path) == "txt" {
        let examples: Vec<Example> = read_lines(path)?
            .into_iter()
            .enumerate()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(i, text)| Example {
                text,
                labels: Vec::new(),
                line: i + 1,
            })
            .collect();
        if examples.is_empty() {
            return Err(DataError::Empty { file: path.into() });
        }
        return Ok(examples);
    }
    let format = DataFormat {
        text_field: text_field.into(),
        ..DataFormat::default()
    };
    read(path, &format, false)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// `labels`: whether the label field is read (and required).
fn read(path: &Path, format: &DataFormat, labels: bool) -> Result<Vec<Example>, DataError> {
    let lines = read_lines(path)?;
    let examples = match extension(path).as_str() {
        "jsonl" | "json" | "ndjson" => read_jsonl(path, &lines, format, labels)?,
        "csv" => read_delimited(path, &lines, format, b',', labels)?,
        "tsv" => read_delimited(path, &lines, format, b'\t', labels)?,
        _ => return Err(DataError::UnknownFormat { file: path.into() }),
    };
    if examples.is_empty() {
        return Err(DataError::Empty { file: path.into() });
    }
    Ok(examples)
}

/// The file's lines (1-based numbering by position), each checked for
/// UTF-8 and length before it is kept.
fn read_lines(path: &Path) -> Result<Vec<String>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::Io {
        file: path.into(),
        message: e.to_string(),
    })?;
    let mut reader = BufReader::new(file);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| DataError::Io {
                file: path.into(),
                message: e.to_string(),
            })?;
        if n == 0 {
            break;
        }
        let line = lines.len() + 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err(DataError::LineTooLong {
                file: path.into(),
                line,
                limit: MAX_LINE_BYTES,
            });
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = String::from_utf8(std::mem::take(&mut buf)).map_err(|_| DataError::NotUtf8 {
            file: path.into(),
            line,
        })?;
        lines.push(text);
    }
    Ok(lines)
}

fn read_jsonl(
    path: &Path,
    lines: &[String],
    format: &DataFormat,
    with_labels: bool,
) -> Result<Vec<Example>, DataError> {
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| DataError::Malformed {
                file: path.into(),
                line,
                message: format!("not a JSON object: {e}"),
            })?;
        let missing = |column: &str| DataError::MissingColumn {
            file: path.into(),
            line,
            column: column.into(),
        };
        let text = match value.get(&format.text_field) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(DataError::Malformed {
                    file: path.into(),
                    line,
                    message: format!("\"{}\" is not a string", format.text_field),
                })
            }
            None => return Err(missing(&format.text_field)),
        };
        if !with_labels {
            out.push(check(path, line, text, Vec::new(), false)?);
            continue;
        }
        let labels = match value.get(&format.label_field) {
            Some(serde_json::Value::String(s)) => split_label(s, format),
            Some(serde_json::Value::Number(n)) => vec![n.to_string()],
            Some(serde_json::Value::Bool(b)) => vec![b.to_string()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s.trim().to_string()),
                    serde_json::Value::Number(n) => Ok(n.to_string()),
                    _ => Err(DataError::Malformed {
                        file: path.into(),
                        line,
                        message: "labels must be strings or numbers".into(),
                    }),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(DataError::Malformed {
                    file: path.into(),
                    line,
                    message: format!(
                        "\"{}\" must be a string, a number or a list",
                        format.label_field
                    ),
                })
            }
            None => return Err(missing(&format.label_field)),
        };
        out.push(check(path, line, text, labels, true)?);
    }
    Ok(out)
}

fn read_delimited(
    path: &Path,
    lines: &[String],
    format: &DataFormat,
    delimiter: u8,
    with_labels: bool,
) -> Result<Vec<Example>, DataError> {
    let joined = lines.join("\n");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(joined.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| DataError::Malformed {
            file: path.into(),
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| DataError::MissingColumn {
                file: path.into(),
                line: 1,
                column: name.into(),
            })
    };
    let text_col = column(&format.text_field)?;
    let label_col = if with_labels {
        Some(column(&format.label_field)?)
    } else {
        None
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| DataError::Malformed {
            file: path.into(),
            line: e.position().map_or(0, |p| p.line() as usize),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let get = |col: usize, name: &str| {
            record.get(col).ok_or_else(|| DataError::MissingColumn {
                file: path.into(),
                line,
                column: name.into(),
            })
        };
        let text = get(text_col, &format.text_field)?.to_string();
        let Some(label_col) = label_col else {
            out.push(check(path, line, text, Vec::new(), false)?);
            continue;
        };
        let labels = split_label(get(label_col, &format.label_field)?, format);
        out.push(check(path, line, text, labels, true)?);
    }
    Ok(out)
}

fn split_label(s: &str, format: &DataFormat) -> Vec<String> {
    match &format.label_separator {
        Some(sep) => s
            .split(sep.as_str())
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        None => vec![s.trim().to_string()],
    }
}

fn check(
    path: &Path,
    line: usize,
    text: String,
    labels: Vec<String>,
    labels_required: bool,
) -> Result<Example, DataError> {
    if text.trim().is_empty() {
        return Err(DataError::EmptyText {
            file: path.into(),
            line,
        });
    }
    let labels: Vec<String> = labels.into_iter().filter(|l| !l.is_empty()).collect();
    if labels_required && labels.is_empty() {
        return Err(DataError::NoLabel {
            file: path.into(),
            line,
        });
    }
    Ok(Example { text, labels, line })
}

/// Checks single-label data has one label per example.
///
/// Errors: [`DataError::Malformed`] naming the first line with several.
pub fn check_single_label(path: &Path, examples: &[Example]) -> Result<(), DataError> {
    match examples.iter().find(|e| e.labels.len() > 1) {
        Some(e) => Err(DataError::Malformed {
            file: path.into(),
            line: e.line,
            message: format!(
                "{} labels ({}); pass --multi-label for multi-label data",
                e.labels.len(),
                e.labels.join(", ")
            ),
        }),
        None => Ok(()),
    }
}

/// The label set of training data, sorted, after checking there are at
/// least two classes and `min_examples` examples of each.
///
/// Errors: [`DataError::OneClass`], [`DataError::RareLabel`].
pub fn label_set(
    path: &Path,
    examples: &[Example],
    min_examples: usize,
) -> Result<Vec<String>, DataError> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in examples {
        for l in &e.labels {
            *counts.entry(l).or_default() += 1;
        }
    }
    if counts.len() < 2 {
        return Err(DataError::OneClass {
            file: path.into(),
            label: counts
                .keys()
                .next()
                .copied()
                .unwrap_or_default()
                .to_string(),
        });
    }
    if let Some((label, count)) = counts.iter().find(|(_, &c)| c < min_examples) {
        return Err(DataError::RareLabel {
            file: path.into(),
            label: label.to_string(),
            count: *count,
            min: min_examples,
        });
    }
    Ok(counts.keys().map(|l| l.to_string()).collect())
}

/// Checks that every label of `examples` is in `labels`.
///
/// Errors: [`DataError::UnknownLabel`] naming the first offending line.
pub fn check_known(path: &Path, examples: &[Example], labels: &[String]) -> Result<(), DataError> {
    for e in examples {
        if let Some(l) = e.labels.iter().find(|l| !labels.contains(l)) {
            return Err(DataError::UnknownLabel {
                file: path.into(),
                line: e.line,
                label: l.clone(),
            });
        }
    }
    Ok(())
}

/// SHA-256 of a file as lower-case hex (recorded in `graft.json` so a model
/// says which data it was trained on).
pub fn file_sha256(path: &Path) -> Result<String, DataError> {
    use sha2::Digest;
    let io = |e: std::io::Error| DataError::Io {
        file: path.into(),
        message: e.to_string(),
    };
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_read_without_labels_in_every_format() {
        let tmp = tempfile::tempdir().unwrap();
        let csv = tmp.path().join("t.csv");
        std::fs::write(&csv, "id,body\n1,first text\n2,\"second, quoted\"\n\n").unwrap();
        let texts = read_texts(&csv, "body").unwrap();
        let got: Vec<(&str, usize)> = texts.iter().map(|e| (e.text.as_str(), e.line)).collect();
        assert_eq!(got, [("first text", 2), ("second, quoted", 3)]);
        assert!(texts.iter().all(|e| e.labels.is_empty()));
        // The same file as labelled data lacks its label column.
        let format = DataFormat {
            text_field: "body".into(),
            ..DataFormat::default()
        };
        assert!(matches!(
            read_examples(&csv, &format),
            Err(DataError::MissingColumn { column, .. }) if column == "label"
        ));
        let tsv = tmp.path().join("t.tsv");
        std::fs::write(&tsv, "text\tlabel\na text\t\n").unwrap();
        assert_eq!(read_texts(&tsv, "text").unwrap()[0].text, "a text");
        let jsonl = tmp.path().join("t.jsonl");
        std::fs::write(&jsonl, "{\"text\": \"x\"}\n{\"text\": \" \"}\n").unwrap();
        assert!(matches!(
            read_texts(&jsonl, "text"),
            Err(DataError::EmptyText { line: 2, .. })
        ));
        let txt = tmp.path().join("t.txt");
        std::fs::write(&txt, "one\n\ntwo\n").unwrap();
        let lines: Vec<usize> = read_texts(&txt, "text")
            .unwrap()
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, [1, 3]);
        let md = tmp.path().join("t.md");
        std::fs::write(&md, "x").unwrap();
        assert!(matches!(
            read_texts(&md, "text"),
            Err(DataError::UnknownFormat { .. })
        ));
    }
}
