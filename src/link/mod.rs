//! The link part: entity linking of mentions in a text (English, Chinese,
//! any mix) to nodes of the graph.
//!
//! Owns the label index built from the store ([`index`]), text
//! normalisation ([`normalize`]), mention detection ([`detect`]) and
//! candidate ranking with confidence and NIL ([`rank`]). Knows nothing of
//! HTTP or tensors. Fact retrieval for the linked entities is
//! [`crate::knowledge`].
//!
//! The index follows the store: when the store's generation has moved, the
//! next [`Linker::link`] rebuilds it and swaps it in atomically; links
//! already running finish on the index they started with.

pub mod config;
pub mod detect;
pub mod index;
pub mod normalize;
pub mod rank;

pub use config::LinkConfig;
pub use index::{IndexStats, LabelIndex};
pub use rank::LinkedEntity;

use crate::graph::{GraphError, GraphStore};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

/// Errors of linking.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The text is longer than `max_text_chars` Unicode scalars.
    #[error("the text has {chars} characters; the limit is {limit}")]
    TextTooLong { chars: usize, limit: usize },
    /// The store failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The entities of one text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Linked {
    pub entities: Vec<LinkedEntity>,
    /// The language used for labels: the one asked for, else `zh` when the
    /// text has Han or kana characters, else `en`.
    pub lang: String,
    /// The store generation of the index used.
    pub graph_generation: u64,
}

/// Links texts to the graph of one store.
pub struct Linker {
    store: Arc<GraphStore>,
    config: LinkConfig,
    index: ArcSwap<LabelIndex>,
    rebuilding: Mutex<()>,
}

impl Linker {
    /// Builds the label index (one pass over the store's labels); `progress`
    /// gets the number of label triples read so far.
    ///
    /// # Errors
    /// [`GraphError`] when the store cannot be read.
    pub fn new(
        store: Arc<GraphStore>,
        config: LinkConfig,
        progress: &dyn Fn(u64),
    ) -> Result<Self, GraphError> {
        let index = LabelIndex::build(&store, &config, progress)?;
        Ok(Self {
            store,
            config,
            index: ArcSwap::from_pointee(index),
            rebuilding: Mutex::new(()),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The store linked against.
    pub fn store(&self) -> &Arc<GraphStore> {
        &self.store
    }

    /// The current index, rebuilt first when the store has changed since it was built.
    ///
    /// # Errors
    /// [`GraphError`] when a rebuild fails (the old index stays in place).
    pub fn index(&self) -> Result<Arc<LabelIndex>, GraphError> {
        let current = self.index.load_full();
        if current.generation() == self.store.generation() {
            return Ok(current);
        }
        // One rebuild at a time; whoever waited here finds it done.
        let _guard = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.index.load_full();
        let generation = self.store.generation();
        if current.generation() == generation {
            return Ok(current);
        }
        let fresh = Arc::new(LabelIndex::build(&self.store, &self.config, &|_| {})?);
        tracing::info!(
            generation = fresh.generation(),
            build_ms = fresh.stats().build_ms,
            "label index rebuilt"
        );
        self.index.store(fresh.clone());
        Ok(fresh)
    }

    /// The generation of the index in place now (without rebuilding it).
    pub fn indexed_generation(&self) -> u64 {
        self.index.load().generation()
    }

    /// Keeps the index fresh in the background, so that a link after a write
    /// seldom waits for a rebuild: a thread checks the store's generation
    /// every 250 ms and rebuilds once it has stopped moving for a second (a
    /// burst of writes costs one rebuild, not one per write). The thread ends
    /// when the linker is dropped.
    pub fn keep_fresh(self: &Arc<Self>) {
        let linker = Arc::downgrade(self);
        std::thread::spawn(move || {
            let tick = std::time::Duration::from_millis(250);
            let mut seen = (0u64, std::time::Instant::now());
            loop {
                std::thread::sleep(tick);
                let Some(linker) = linker.upgrade() else {
                    return;
                };
                let generation = linker.store.generation();
                if generation != seen.0 {
                    seen = (generation, std::time::Instant::now());
                    continue;
                }
                let stale = linker.index.load().generation() != generation;
                if stale && seen.1.elapsed() >= std::time::Duration::from_secs(1) {
                    if let Err(e) = linker.index() {
                        tracing::warn!(error = %e, "background label index rebuild failed");
                    }
                }
            }
        });
    }

    /// Finds the mentions of `text` and links them (see [`rank`] for the
    /// score). `lang` picks the label language (default: guessed from the script).
    ///
    /// Empty or whitespace-only text gives no entities.
    ///
    /// # Errors
    /// [`LinkError::TextTooLong`] over `max_text_chars`; [`LinkError::Graph`].
    pub fn link(&self, text: &str, lang: Option<&str>) -> Result<Linked, LinkError> {
        let chars = text.chars().count();
        if chars > self.config.max_text_chars {
            return Err(LinkError::TextTooLong {
                chars,
                limit: self.config.max_text_chars,
            });
        }
        let lang = lang
            .map(str::to_owned)
            .unwrap_or_else(|| guess_lang(text).to_owned());
        let index = self.index()?;
        let normalized = normalize::NormalizedText::new(text);
        let mut mentions = detect::detect(&index, &normalized);
        // Bound the ranking work: beyond this many mentions the rest stay unlinked.
        mentions.truncate(self.config.max_entities.saturating_mul(4));
        let entities = rank::rank(&index, &self.config, &mentions, &lang);
        Ok(Linked {
            entities,
            lang,
            graph_generation: index.generation(),
        })
    }
}

/// `zh` when the text has Han or kana characters, else `en`.
pub fn guess_lang(text: &str) -> &'static str {
    if text.chars().any(normalize::is_unspaced_script) {
        "zh"
    } else {
        "en"
    }
}
