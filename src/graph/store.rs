//! [`GraphStore`]: the oxigraph store, its data directory, the write lock and
//! the generation counter; the Graph Store operations and statistics.

use super::{Generation, GraphError};
use oxigraph::io::{RdfFormat, RdfParser, RdfSerializer};
use oxigraph::model::{GraphName, GraphNameRef, NamedNode, NamedOrBlankNode};
use oxigraph::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The graph a Graph Store operation addresses: `?default` or `?graph=IRI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphTarget {
    /// The store's default graph.
    Default,
    /// A named graph.
    Named(NamedNode),
}

impl GraphTarget {
    fn as_ref(&self) -> GraphNameRef<'_> {
        match self {
            Self::Default => GraphNameRef::DefaultGraph,
            Self::Named(n) => n.as_ref().into(),
        }
    }
}

impl std::fmt::Display for GraphTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("the default graph"),
            Self::Named(n) => write!(f, "{n}"),
        }
    }
}

/// The number of triples in one graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GraphStats {
    /// The graph's IRI (or blank node), or `null` for the default graph.
    pub graph: Option<String>,
    /// Triples in the graph.
    pub triples: u64,
}

/// What `graft graph stats` and `/health` report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStats {
    /// The generation counter: committed writes since the store was created.
    pub generation: u64,
    /// Quads in the whole store (all graphs).
    pub quads: u64,
    /// Triples per graph, the default graph first, then named graphs by IRI.
    pub graphs: Vec<GraphStats>,
    /// Bytes of the RocksDB directory (`DATA_DIR/store`) on disk.
    pub size_on_disk_bytes: u64,
}

/// graft's persistent RDF store: an oxigraph store in `DATA_DIR/store`, its
/// generation counter in `DATA_DIR/generation` (or both in memory, see
/// [`GraphStore::in_memory`]).
pub struct GraphStore {
    store: Store,
    /// `DATA_DIR/store`, or `None` in memory.
    dir: Option<PathBuf>,
    generation: Generation,
    write_lock: Mutex<()>,
}

impl GraphStore {
    /// Opens (creating when absent) the store under `data_dir`.
    ///
    /// # Errors
    /// [`GraphError::Locked`] when another process holds the store open (RocksDB
    /// allows one writer process), [`GraphError::Io`]/[`GraphError::Storage`] otherwise.
    pub fn open(data_dir: &Path) -> Result<Self, GraphError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| GraphError::io(Some(data_dir.to_owned()), e))?;
        let dir = data_dir.join("store");
        let store = Store::open(&dir).map_err(|e| {
            let message = e.to_string();
            if message.contains("lock") || message.contains("LOCK") {
                GraphError::Locked {
                    path: dir.clone(),
                    message,
                }
            } else {
                GraphError::Storage(message)
            }
        })?;
        let generation = Generation::open(&data_dir.join("generation"))?;
        Ok(Self {
            store,
            dir: Some(dir),
            generation,
            write_lock: Mutex::new(()),
        })
    }

    /// An empty store that lives in memory and is gone when dropped: for a
    /// command that needs no graph (e.g. `graft classify` with a model
    /// trained without facts), so that it neither creates nor locks a data
    /// directory. Its identity is empty, its size on disk 0 and its
    /// generation starts at 0 on every run, so it must not back anything
    /// persistent keyed by identity and generation (the answer cache).
    ///
    /// # Errors
    /// [`GraphError::Storage`] when oxigraph cannot make the store.
    pub fn in_memory() -> Result<Self, GraphError> {
        Ok(Self {
            store: Store::new().map_err(|e| GraphError::Storage(e.to_string()))?,
            dir: None,
            generation: Generation::in_memory(),
            write_lock: Mutex::new(()),
        })
    }

    /// The store's identity: the UUID RocksDB wrote to `store/IDENTITY` when
    /// the database was created, so a store deleted and made again (its
    /// generation counting from 0 again) is told apart from the old one.
    /// Empty when the file cannot be read.
    pub fn identity(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join("IDENTITY")).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// The underlying oxigraph store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current generation: the number of committed writes so far.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Runs the write `f` under the write lock and bumps the generation when it
    /// succeeds (see [`Generation`] for the write-ahead rule). A failed write
    /// leaves both the store and the counter as they were.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.generation.get();
        self.generation.persist(current + 1)?;
        match f(&self.store) {
            Ok(value) => {
                self.generation.publish(current + 1);
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = self.generation.persist(current) {
                    // Harmless: the counter is ahead of the data, a spurious invalidation.
                    tracing::warn!(error = %rollback, "could not roll back the generation counter");
                    self.generation.publish(current + 1);
                }
                Err(e)
            }
        }
    }

    /// Flushes RocksDB's memory tables to disk (called on shutdown).
    ///
    /// # Errors
    /// [`GraphError::Storage`] when RocksDB fails.
    pub fn flush(&self) -> Result<(), GraphError> {
        Ok(self.store.flush()?)
    }

    /// Whether `target` exists: the default graph always does; a named graph
    /// does once created or given a triple.
    pub fn graph_exists(&self, target: &GraphTarget) -> Result<bool, GraphError> {
        match target {
            GraphTarget::Default => Ok(true),
            GraphTarget::Named(n) => Ok(self.store.contains_named_graph(n)?),
        }
    }

    /// Writes the triples of `target` to `writer` in `format` (a triple format,
    /// or a quad format whose quads then all carry the graph name).
    ///
    /// # Errors
    /// [`GraphError::GraphNotFound`] for an absent named graph, `Io` on write failure.
    pub fn read_graph<W: Write>(
        &self,
        target: &GraphTarget,
        format: RdfFormat,
        writer: W,
    ) -> Result<W, GraphError> {
        if !self.graph_exists(target)? {
            return Err(GraphError::GraphNotFound(target.to_string()));
        }
        let mut serializer = RdfSerializer::from_format(format).for_writer(writer);
        for quad in self
            .store
            .quads_for_pattern(None, None, None, Some(target.as_ref()))
        {
            let quad = quad?;
            let res = if format.supports_datasets() {
                serializer.serialize_quad(&quad)
            } else {
                serializer.serialize_triple(quad.as_ref())
            };
            res.map_err(|e| GraphError::io(None, e))?;
        }
        serializer.finish().map_err(|e| GraphError::io(None, e))
    }

    /// Writes the whole dataset (every graph) to `writer` in a quad format.
    ///
    /// # Errors
    /// [`GraphError::UnsupportedFormat`] for a triple-only format.
    pub fn dump_dataset<W: Write>(&self, format: RdfFormat, writer: W) -> Result<W, GraphError> {
        if !format.supports_datasets() {
            return Err(GraphError::UnsupportedFormat(format!(
                "{} holds one graph only: dump the whole store as N-Quads or TriG, or pick a graph",
                format.name()
            )));
        }
        self.store
            .dump_to_writer(RdfSerializer::from_format(format), writer)
            .map_err(|e| GraphError::Storage(e.to_string()))
    }

    /// Replaces the content of `target` with the RDF document `body` in one
    /// transaction (Graph Store Protocol PUT). Returns whether the graph was
    /// created (it did not exist before).
    ///
    /// # Errors
    /// [`GraphError::RdfSyntax`] (with position) for a malformed document; the
    /// store is then untouched.
    pub fn replace_graph(
        &self,
        target: &GraphTarget,
        format: RdfFormat,
        base_iri: Option<&str>,
        body: &[u8],
    ) -> Result<bool, GraphError> {
        self.load_graph(target, format, base_iri, body, true)
    }

    /// Adds the triples of the RDF document `body` to `target` (Graph Store
    /// Protocol POST). Returns whether the graph was created.
    ///
    /// # Errors
    /// As [`GraphStore::replace_graph`].
    pub fn add_to_graph(
        &self,
        target: &GraphTarget,
        format: RdfFormat,
        base_iri: Option<&str>,
        body: &[u8],
    ) -> Result<bool, GraphError> {
        self.load_graph(target, format, base_iri, body, false)
    }

    fn load_graph(
        &self,
        target: &GraphTarget,
        format: RdfFormat,
        base_iri: Option<&str>,
        body: &[u8],
        replace: bool,
    ) -> Result<bool, GraphError> {
        let parser = graph_parser(target, format, base_iri)?;
        super::nesting::check_document(body, nesting_syntax(format))?;
        self.write(|store| {
            let existed = graph_exists_in(store, target)?;
            let mut tx = store.start_transaction()?;
            if replace && existed {
                tx.clear_graph(target.as_ref())?;
            }
            if let GraphTarget::Named(n) = target {
                tx.insert_named_graph(n.as_ref());
            }
            tx.load_from_slice(parser, body)
                .map_err(|e| GraphError::from_loader(e, None))?;
            tx.commit()?;
            Ok(!existed)
        })
    }

    /// Adds the quads of a dataset document (N-Quads, TriG, JSON-LD) to the
    /// store in one transaction.
    ///
    /// # Errors
    /// As [`GraphStore::replace_graph`].
    pub fn add_dataset(
        &self,
        format: RdfFormat,
        base_iri: Option<&str>,
        body: &[u8],
    ) -> Result<(), GraphError> {
        let mut parser = RdfParser::from_format(format);
        if let Some(base) = base_iri {
            parser = parser
                .with_base_iri(base)
                .map_err(|e| invalid_iri(base, e))?;
        }
        super::nesting::check_document(body, nesting_syntax(format))?;
        self.write(|store| {
            store
                .load_from_slice(parser, body)
                .map_err(|e| GraphError::from_loader(e, None))
        })
    }

    /// Deletes `target` (Graph Store Protocol DELETE): a named graph is
    /// removed, the default graph emptied.
    ///
    /// # Errors
    /// [`GraphError::GraphNotFound`] for an absent named graph (nothing changes,
    /// and the generation does not move).
    pub fn delete_graph(&self, target: &GraphTarget) -> Result<(), GraphError> {
        self.write(|store| {
            match target {
                GraphTarget::Default => store.clear_graph(GraphNameRef::DefaultGraph)?,
                GraphTarget::Named(n) => {
                    if !store.contains_named_graph(n)? {
                        return Err(GraphError::GraphNotFound(target.to_string()));
                    }
                    store.remove_named_graph(n)?;
                }
            }
            Ok(())
        })
    }

    /// Counts triples per graph and measures the store on disk.
    ///
    /// Counting walks every quad: O(store size), about a second per few million quads.
    pub fn stats(&self) -> Result<StoreStats, GraphError> {
        let mut graphs = vec![GraphStats {
            graph: None,
            triples: count(self.store.quads_for_pattern(
                None,
                None,
                None,
                Some(GraphNameRef::DefaultGraph),
            ))?,
        }];
        let mut names = self
            .store
            .named_graphs()
            .collect::<Result<Vec<NamedOrBlankNode>, _>>()?;
        names.sort_by_key(|n| n.to_string());
        for name in names {
            let triples =
                count(
                    self.store
                        .quads_for_pattern(None, None, None, Some(name.as_ref().into())),
                )?;
            graphs.push(GraphStats {
                graph: Some(match &name {
                    NamedOrBlankNode::NamedNode(n) => n.as_str().to_owned(),
                    NamedOrBlankNode::BlankNode(b) => b.to_string(),
                }),
                triples,
            });
        }
        Ok(StoreStats {
            generation: self.generation(),
            quads: graphs.iter().map(|g| g.triples).sum(),
            graphs,
            size_on_disk_bytes: self.dir.as_deref().map_or(0, dir_size),
        })
    }

    /// The number of quads in the store (all graphs). O(store size).
    pub fn len(&self) -> Result<u64, GraphError> {
        Ok(self.store.len()? as u64)
    }

    /// Whether the store holds no quad at all.
    pub fn is_empty(&self) -> Result<bool, GraphError> {
        Ok(self.store.is_empty()?)
    }
}

fn graph_exists_in(store: &Store, target: &GraphTarget) -> Result<bool, GraphError> {
    match target {
        GraphTarget::Default => Ok(true),
        GraphTarget::Named(n) => Ok(store.contains_named_graph(n)?),
    }
}

/// The lexical rules [`super::nesting`] scans a document of `format` with.
fn nesting_syntax(format: RdfFormat) -> super::nesting::Syntax {
    use super::nesting::Syntax;
    match format {
        RdfFormat::JsonLd { .. } => Syntax::Json,
        RdfFormat::RdfXml => Syntax::Other,
        _ => Syntax::Sparql,
    }
}

/// A parser for a graph document bound for `target`: triples go into the
/// target graph; named graphs inside the document are refused.
fn graph_parser(
    target: &GraphTarget,
    format: RdfFormat,
    base_iri: Option<&str>,
) -> Result<RdfParser, GraphError> {
    let mut parser = RdfParser::from_format(format).without_named_graphs();
    if let GraphTarget::Named(n) = target {
        parser = parser.with_default_graph(GraphName::NamedNode(n.clone()));
    }
    if let Some(base) = base_iri {
        parser = parser
            .with_base_iri(base)
            .map_err(|e| invalid_iri(base, e))?;
    }
    Ok(parser)
}

pub(crate) fn invalid_iri(iri: &str, e: impl std::fmt::Display) -> GraphError {
    GraphError::InvalidIri {
        iri: iri.to_owned(),
        message: e.to_string(),
    }
}

fn count<E>(iter: impl Iterator<Item = Result<impl Sized, E>>) -> Result<u64, GraphError>
where
    GraphError: From<E>,
{
    let mut n = 0;
    for item in iter {
        item?;
        n += 1;
    }
    Ok(n)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_store_counts_writes_and_has_no_disk() {
        let store = GraphStore::in_memory().unwrap();
        let graph = GraphTarget::Named(crate::graph::parse_iri("http://example.org/g").unwrap());
        store
            .replace_graph(
                &graph,
                RdfFormat::Turtle,
                None,
                b"<http://example.org/a> <http://example.org/p> \"x\" .".as_slice(),
            )
            .unwrap();
        assert_eq!(store.generation(), 1);
        let stats = store.stats().unwrap();
        assert_eq!((stats.quads, stats.size_on_disk_bytes), (1, 0));
        assert_eq!(store.identity(), "");
    }
}
