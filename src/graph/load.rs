//! Loading RDF files into the store with oxigraph's bulk loader.
//!
//! All or nothing per file: the bulk loader stages the file's quads in
//! RocksDB SST files and ingests them only at commit, so a file that fails to
//! parse — or a process killed mid-load — leaves the store as it was. With
//! `lenient`, malformed statements are skipped (and counted) instead.

use super::format::rdf_format_from_path;
use super::store::invalid_iri;
use super::{GraphError, GraphStore};
use oxigraph::io::{RdfFormat, RdfParseError, RdfParser};
use oxigraph::model::{GraphName, NamedNode};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

/// How to load a file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Put the file's default-graph triples into this named graph (quad
    /// formats keep their own graph names).
    pub graph: Option<NamedNode>,
    /// The format; `None` means: from the file extension (through `.gz`).
    pub format: Option<RdfFormat>,
    /// The base IRI for relative IRIs in the file.
    pub base_iri: Option<String>,
    /// Skip malformed statements instead of failing the whole file.
    pub lenient: bool,
}

/// What one file load did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    /// Quads read from the file and handed to the store (duplicates included).
    pub quads: u64,
    /// Parse errors skipped (only with `lenient`; one malformed statement can
    /// give more than one error while the parser finds its feet again).
    pub skipped: u64,
    /// The first skipped statement's error, for the user to see.
    pub first_error: Option<String>,
    /// Wall time of the load, in milliseconds.
    pub elapsed_ms: u64,
    /// The generation after the load.
    pub generation: u64,
}

impl GraphStore {
    /// Loads one RDF file (optionally gzip-compressed) with the bulk loader.
    /// `progress` is called from time to time with the number of quads read so far.
    ///
    /// # Errors
    /// [`GraphError::RdfSyntax`] with the file name and position when the file
    /// is malformed (nothing is loaded), [`GraphError::UnsupportedFormat`] when
    /// the format cannot be told, [`GraphError::Io`] when the file cannot be read.
    pub fn load_file(
        &self,
        path: &Path,
        options: &LoadOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<LoadReport, GraphError> {
        let (format, gzip) = match options.format {
            Some(f) => (f, path.extension().is_some_and(|e| e == "gz")),
            None => rdf_format_from_path(path)?,
        };
        let file = File::open(path).map_err(|e| GraphError::io(Some(path.to_owned()), e))?;
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                file,
            )))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        let mut parser = RdfParser::from_format(format).rename_blank_nodes();
        if let Some(graph) = &options.graph {
            parser = parser.with_default_graph(GraphName::NamedNode(graph.clone()));
        }
        if let Some(base) = &options.base_iri {
            parser = parser
                .with_base_iri(base.as_str())
                .map_err(|e| invalid_iri(base, e))?;
        }
        let name = path.display().to_string();
        let start = Instant::now();
        let mut read = 0u64;
        let mut skipped = 0u64;
        let mut first_error = None;
        let quads = parser.for_reader(reader).filter_map(|r| match r {
            Ok(q) => {
                read += 1;
                if read.is_multiple_of(100_000) {
                    progress(read);
                }
                Some(Ok(q))
            }
            Err(RdfParseError::Syntax(e)) if options.lenient => {
                skipped += 1;
                first_error.get_or_insert_with(|| e.to_string());
                None
            }
            Err(e) => Some(Err(GraphError::from_rdf_parse(e, Some(name.clone())))),
        });
        self.write(|store| {
            let mut loader = store.bulk_loader();
            // Stops at the first fatal error; dropping the loader without
            // commit then discards every staged quad.
            loader.load_ok_quads::<GraphError, GraphError>(quads)?;
            loader.commit()?;
            Ok(())
        })?;
        progress(read);
        Ok(LoadReport {
            quads: read,
            skipped,
            first_error,
            elapsed_ms: duration_ms(start.elapsed()),
            generation: self.generation(),
        })
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
