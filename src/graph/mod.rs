//! The graph part: graft's persistent RDF store.
//!
//! Owns the oxigraph store on disk (RocksDB), loading RDF files and request
//! bodies (Turtle, N-Triples, N-Quads, TriG, RDF/XML, JSON-LD), SPARQL 1.1
//! query and update, the Graph Store operations (read, replace, add, delete a
//! graph), statistics, and the generation counter bumped on every committed
//! change. It knows nothing of HTTP or models.
//!
//! Concurrency: reads (queries, dumps) run on snapshots and never wait; writes
//! are serialized by one lock so that the generation counter orders them.

mod error;
pub mod format;
mod generation;
mod load;
pub mod nesting;
mod sparql;
mod store;

pub use error::{GraphError, TextPosition};
pub use generation::Generation;
pub use load::{LoadOptions, LoadReport};
pub use sparql::{
    PreparedQuery, QueryForm, QueryRequest, ResultFormat, SparqlOptions, UpdateRequest,
    WriteCancellation,
};
pub use store::{GraphStats, GraphStore, GraphTarget, StoreStats};

/// Re-exports of the oxigraph types that appear in this module's API.
pub use oxigraph::io::RdfFormat;
pub use oxigraph::model::NamedNode;
pub use oxigraph::sparql::results::QueryResultsFormat;

/// Parses an absolute IRI (a graph name, a base IRI).
///
/// # Errors
/// [`GraphError::InvalidIri`] when `iri` is not a valid absolute IRI (RFC 3987).
pub fn parse_iri(iri: &str) -> Result<NamedNode, GraphError> {
    NamedNode::new(iri).map_err(|e| GraphError::InvalidIri {
        iri: iri.to_owned(),
        message: e.to_string(),
    })
}
