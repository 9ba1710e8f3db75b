//! Typed errors of the graph part; the HTTP and CLI edges turn them into messages.

use std::path::PathBuf;

/// A position in a parsed text: 1-based line and column (Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TextPosition {
    /// 1-based line number.
    pub line: u64,
    /// 1-based column, counted in Unicode scalar values.
    pub column: u64,
}

/// Everything that can go wrong in the graph part.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A SPARQL query or update that does not parse. `position` is where the
    /// parser stopped, when it says.
    #[error("SPARQL syntax error: {message}")]
    SparqlSyntax {
        message: String,
        position: Option<TextPosition>,
    },
    /// An RDF document that does not parse (Turtle, N-Triples, RDF/XML, JSON-LD...).
    #[error("RDF syntax error{}: {message}", source_name.as_ref().map(|s| format!(" in {s}")).unwrap_or_default())]
    RdfSyntax {
        message: String,
        position: Option<TextPosition>,
        /// The file or request the document came from, when known.
        source_name: Option<String>,
    },
    /// A string that is not a valid IRI where one is needed (graph name, base IRI).
    #[error("invalid IRI <{iri}>: {message}")]
    InvalidIri { iri: String, message: String },
    /// A serialization format graft cannot read or write, or one that does not
    /// fit the operation (e.g. CSV for a CONSTRUCT result).
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    /// The named graph does not exist in the store.
    /// (The string is the graph as [`super::GraphTarget`] displays it: `<IRI>`.)
    #[error("graph {0} does not exist")]
    GraphNotFound(String),
    /// The operation was refused by configuration (e.g. `SERVICE` or `LOAD`
    /// without `--allow-federation`).
    #[error("{0}")]
    Forbidden(String),
    /// The query or update ran past its time limit and was cancelled.
    #[error("the operation exceeded its time limit of {0:?} and was cancelled")]
    Timeout(std::time::Duration),
    /// A SPARQL evaluation error that is the query's fault (e.g. `CREATE` of an
    /// existing graph, an unsupported service).
    #[error("SPARQL evaluation error: {0}")]
    Evaluation(String),
    /// The store directory is in use by another process (RocksDB lock).
    #[error("the store at {} is in use by another process (is `graft serve` running on it?): {message}", path.display())]
    Locked { path: PathBuf, message: String },
    /// A failure of the storage engine or the file system.
    #[error("storage error: {0}")]
    Storage(String),
    /// An I/O error while reading input or writing output.
    #[error("I/O error{}: {source}", path.as_ref().map(|p| format!(" on {}", p.display())).unwrap_or_default())]
    Io {
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
}

impl GraphError {
    /// A stable, machine-readable name of the error kind (the `kind` field of
    /// the HTTP error body).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SparqlSyntax { .. } => "sparql_syntax",
            Self::RdfSyntax { .. } => "rdf_syntax",
            Self::InvalidIri { .. } => "invalid_iri",
            Self::UnsupportedFormat(_) => "unsupported_format",
            Self::GraphNotFound(_) => "graph_not_found",
            Self::Forbidden(_) => "forbidden",
            Self::Timeout(_) => "timeout",
            Self::Evaluation(_) => "sparql_evaluation",
            Self::Locked { .. } => "store_locked",
            Self::Storage(_) => "storage",
            Self::Io { .. } => "io",
        }
    }

    /// The position in the input where parsing failed, when known.
    pub fn position(&self) -> Option<TextPosition> {
        match self {
            Self::SparqlSyntax { position, .. } | Self::RdfSyntax { position, .. } => *position,
            _ => None,
        }
    }

    pub(crate) fn io(path: Option<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path, source }
    }

    /// Builds an [`GraphError::RdfSyntax`] (or `Io`) from an oxigraph parse error.
    pub(crate) fn from_rdf_parse(
        e: oxigraph::io::RdfParseError,
        source_name: Option<String>,
    ) -> Self {
        match e {
            oxigraph::io::RdfParseError::Io(source) => {
                // Parsers report invalid UTF-8 as an I/O error of kind InvalidData.
                if source.kind() == std::io::ErrorKind::InvalidData {
                    Self::RdfSyntax {
                        message: source.to_string(),
                        position: None,
                        source_name,
                    }
                } else {
                    Self::io(source_name.map(PathBuf::from), source)
                }
            }
            oxigraph::io::RdfParseError::Syntax(s) => Self::RdfSyntax {
                message: s.to_string(),
                position: s.location().map(|l| TextPosition {
                    line: l.start.line + 1,
                    column: l.start.column + 1,
                }),
                source_name,
            },
        }
    }

    /// Builds an error from an oxigraph loader error.
    pub(crate) fn from_loader(
        e: oxigraph::store::LoaderError,
        source_name: Option<String>,
    ) -> Self {
        match e {
            oxigraph::store::LoaderError::Parsing(p) => Self::from_rdf_parse(p, source_name),
            oxigraph::store::LoaderError::Storage(s) => Self::from(s),
            oxigraph::store::LoaderError::InvalidBaseIri { iri, error } => Self::InvalidIri {
                iri,
                message: error.to_string(),
            },
        }
    }

    /// Builds a [`GraphError::SparqlSyntax`] from the parser's message, which
    /// carries the position as `at LINE:COLUMN`.
    pub(crate) fn from_sparql_syntax(e: &impl std::fmt::Display) -> Self {
        let message = e.to_string();
        let position = parse_line_col(&message);
        Self::SparqlSyntax { message, position }
    }
}

/// Finds the first `LINE:COLUMN` pair after "at " in a parser message.
fn parse_line_col(message: &str) -> Option<TextPosition> {
    let rest = &message[message.find("at ")? + 3..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let (line, column) = rest[..end].trim_end_matches(':').split_once(':')?;
    Some(TextPosition {
        line: line.parse().ok()?,
        column: column.parse().ok()?,
    })
}

impl From<oxigraph::store::StorageError> for GraphError {
    fn from(e: oxigraph::store::StorageError) -> Self {
        Self::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_read_from_parser_messages() {
        assert_eq!(
            parse_line_col("error at 3:17: expected one of ..."),
            Some(TextPosition {
                line: 3,
                column: 17
            })
        );
        assert_eq!(parse_line_col("no position here"), None);
    }
}
