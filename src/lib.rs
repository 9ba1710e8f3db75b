//! graft: text classification with a BERT model that reads a knowledge graph.
//!
//! This crate is the library the `graft` binary is a thin layer over. Its parts,
//! one module each (see `docs/architecture.md`):
//!
//! - [`graph`]: the persistent RDF store (oxigraph on RocksDB), loading, SPARQL
//!   query and update, the generation counter. Knows nothing of HTTP.
//! - [`link`]: entity linking: the label index over the graph, mention
//!   detection (English and Chinese), candidate ranking, confidence, NIL.
//! - [`knowledge`]: the facts of linked entities, ranked, bounded, in words.
//! - [`encoder`]: the BERT encoder on candle: Hugging Face model folders,
//!   the forward pass with position ids and a 3-D attention mask, pooling.
//! - [`fusion`]: text + facts → one encoder input: K-BERT sentence trees
//!   (soft positions, visible matrix), a second segment, or nothing.
//! - [`classifier`]: labelled data, fine-tuning, evaluation, the model folder.
//! - [`serving`]: the classification request path: cache, linking, fusion,
//!   dynamic batching, several reloadable models. Knows nothing of HTTP.
//! - [`cache`]: the answer cache (sled): keys, size bound, purge by epoch.
//! - [`api`]: the actix-web service: SPARQL 1.1 Protocol, Graph Store HTTP
//!   Protocol, health. Translates HTTP to calls on the core and errors to statuses.
//! - [`cli`]: the `graft` subcommands; parses flags and calls the parts.
//! - [`runtime`]: process-wide tuning (the allocator's) applied in `main`.
pub mod api;
pub mod cache;
pub mod classifier;
pub mod cli;
pub mod encoder;
pub mod fusion;
pub mod graph;
pub mod knowledge;
pub mod link;
pub mod runtime;
pub mod serving;
