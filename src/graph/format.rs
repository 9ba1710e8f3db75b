//! Names of the RDF and SPARQL results formats: from file extensions, media
//! types and the short names users type (`--format ttl`).

use super::GraphError;
use oxigraph::io::RdfFormat;
use oxigraph::sparql::results::QueryResultsFormat;
use std::path::Path;

/// The RDF formats graft reads and writes, in the order offered by content negotiation.
pub const RDF_FORMATS: [RdfFormat; 6] = [
    RdfFormat::Turtle,
    RdfFormat::NTriples,
    RdfFormat::NQuads,
    RdfFormat::TriG,
    RdfFormat::JsonLd {
        profile: oxigraph::io::JsonLdProfileSet::empty(),
    },
    RdfFormat::RdfXml,
];

/// The SPARQL results formats graft writes, in the order offered by content negotiation.
pub const RESULTS_FORMATS: [QueryResultsFormat; 4] = [
    QueryResultsFormat::Json,
    QueryResultsFormat::Xml,
    QueryResultsFormat::Csv,
    QueryResultsFormat::Tsv,
];

/// Reads an RDF format from a short name (`turtle`, `ttl`, `nt`, `ntriples`,
/// `nq`, `nquads`, `trig`, `jsonld`, `json-ld`, `rdfxml`, `rdf`, `xml`) or a media type.
pub fn rdf_format_from_name(name: &str) -> Option<RdfFormat> {
    let lower = name.trim().to_ascii_lowercase();
    let alias = match lower.as_str() {
        "turtle" => "ttl",
        "ntriples" | "n-triples" => "nt",
        "nquads" | "n-quads" => "nq",
        "json-ld" | "jsonld" => "jsonld",
        "rdfxml" | "rdf/xml" | "rdf-xml" | "xml" | "owl" => "rdf",
        other => other,
    };
    RdfFormat::from_extension(alias).or_else(|| RdfFormat::from_media_type(&lower))
}

/// Reads a SPARQL results format from a short name (`json`, `xml`, `csv`,
/// `tsv`, `srj`, `srx`) or a media type.
pub fn results_format_from_name(name: &str) -> Option<QueryResultsFormat> {
    let lower = name.trim().to_ascii_lowercase();
    QueryResultsFormat::from_extension(&lower)
        .or_else(|| QueryResultsFormat::from_media_type(&lower))
}

/// The RDF format of a file from its extension, looking through a trailing
/// `.gz`. Returns the format and whether the file is gzip-compressed.
///
/// # Errors
/// [`GraphError::UnsupportedFormat`] when the extension names no RDF format.
pub fn rdf_format_from_path(path: &Path) -> Result<(RdfFormat, bool), GraphError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (stem, gzip) = match name.strip_suffix(".gz") {
        Some(stem) => (stem.to_owned(), true),
        None => (name.clone(), false),
    };
    let ext = Path::new(&stem)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let format = match ext {
        "json" => None, // ambiguous: JSON-LD files should say .jsonld
        other => rdf_format_from_name(other),
    };
    format.map(|f| (f, gzip)).ok_or_else(|| {
        GraphError::UnsupportedFormat(format!(
            "cannot tell the RDF format of {} from its extension; use --format \
             (ttl, nt, nq, trig, jsonld, rdf)",
            path.display()
        ))
    })
}

/// Reads an RDF format given by a user (name or media type).
///
/// # Errors
/// [`GraphError::UnsupportedFormat`] naming the accepted formats.
pub fn rdf_format_arg(name: &str) -> Result<RdfFormat, GraphError> {
    rdf_format_from_name(name).ok_or_else(|| {
        GraphError::UnsupportedFormat(format!(
            "unknown RDF format {name:?}: use turtle, ntriples, nquads, trig, jsonld or rdfxml"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_paths_and_names() {
        assert_eq!(
            rdf_format_from_path(Path::new("a/b.nt.gz")).unwrap(),
            (RdfFormat::NTriples, true)
        );
        assert_eq!(
            rdf_format_from_path(Path::new("x.TTL")).unwrap(),
            (RdfFormat::Turtle, false)
        );
        assert!(matches!(
            rdf_format_from_path(Path::new("x.json")),
            Err(GraphError::UnsupportedFormat(_))
        ));
        assert!(rdf_format_from_path(Path::new("noext")).is_err());
        assert_eq!(rdf_format_from_name("rdfxml"), Some(RdfFormat::RdfXml));
        assert_eq!(rdf_format_from_name("text/turtle"), Some(RdfFormat::Turtle));
        assert!(matches!(
            rdf_format_from_name("jsonld"),
            Some(RdfFormat::JsonLd { .. })
        ));
        assert_eq!(
            results_format_from_name("tsv"),
            Some(QueryResultsFormat::Tsv)
        );
        assert_eq!(
            results_format_from_name("application/sparql-results+json"),
            Some(QueryResultsFormat::Json)
        );
        assert_eq!(results_format_from_name("yaml"), None);
    }
}
