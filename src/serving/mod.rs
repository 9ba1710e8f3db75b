//! Serving classifiers: the request path of `POST /v1/classify` without
//! HTTP. For each text: the answer cache; on a miss, entity linking and
//! fact retrieval, fusion into one encoder input, a dynamically batched
//! encoder pass ([`batcher`]), the decision with its threshold; then the
//! answer is cached. Several models are served at once and can be reloaded
//! without dropping requests ([`registry`]).
//!
//! Knows nothing of HTTP: errors are [`ServeError`]s, which the API maps to
//! statuses; measurements go to an [`Observer`], which the API turns into
//! Prometheus metrics.

pub mod batcher;
pub mod registry;

pub use batcher::BatchConfig;
pub use registry::{ModelRegistry, ServedModel};

use crate::cache::{self, AnswerCache, Epoch, KeyParts};
use crate::classifier::{injections, Scored};
use crate::fusion::{FusionMode, Injection};
use crate::graph::GraphStore;
use crate::knowledge::{link_spans, Fact, LinkAnswer};
use crate::link::{LinkError, LinkedEntity, Linker};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Most texts in one classification request.
pub const MAX_TEXTS: usize = 64;
/// Longest text, in Unicode scalar values (as the linker's limit).
pub const MAX_TEXT_CHARS: usize = 100_000;

/// Errors of the serving path; the API maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Malformed input: an empty text or list, a bad option value.
    #[error("{0}")]
    BadRequest(String),
    /// More than [`MAX_TEXTS`] texts.
    #[error("{count} texts in one request: the limit is {limit}")]
    TooManyTexts { count: usize, limit: usize },
    /// A text over the limit, in Unicode scalar values (`index` counts from 0).
    #[error("text {index} has {chars} characters: the limit is {limit}")]
    TextTooLong {
        index: usize,
        chars: usize,
        limit: usize,
    },
    /// A model name that is not served.
    #[error("no model called {name:?} (served: {})", known.join(", "))]
    UnknownModel { name: String, known: Vec<String> },
    /// No model is served at all.
    #[error("this server serves no classifier: start it with --model NAME=DIR")]
    NoModel,
    /// A model folder that does not load (at start-up or on reload).
    #[error("model {name:?} ({}) could not be loaded: {message}", dir.display())]
    Model {
        name: String,
        dir: PathBuf,
        message: String,
    },
    /// The label index is still being built.
    #[error("the label index is still being built; retry in a few seconds")]
    Starting,
    /// The label index could not be built.
    #[error("entity linking is unavailable: {0}")]
    LinkingUnavailable(String),
    /// The model's queue is full.
    #[error("the server is overloaded: the model's queue is full; retry later")]
    Overloaded,
    /// A failure of graft itself (the encoder, a worker, the store).
    #[error("{0}")]
    Internal(String),
}

impl ServeError {
    /// A stable machine-readable name of the error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::TooManyTexts { .. } => "too_many_texts",
            Self::TextTooLong { .. } => "text_too_large",
            Self::UnknownModel { .. } => "unknown_model",
            Self::NoModel => "no_model",
            Self::Model { .. } => "model_load_failed",
            Self::Starting => "starting",
            Self::LinkingUnavailable(_) => "label_index_failed",
            Self::Overloaded => "overloaded",
            Self::Internal(_) => "internal",
        }
    }
}

/// Where the service reports what it measures.
pub trait Observer: Send + Sync {
    /// One encoder pass: `sequences` inputs of `tokens` tokens in all.
    fn batch(&self, sequences: usize, tokens: usize, elapsed: Duration);
    /// Linking and fact retrieval of one text.
    fn link(&self, elapsed: Duration);
    /// A cache lookup.
    fn cache(&self, hit: bool);
}

/// An [`Observer`] that drops everything.
pub struct NoObserver;

impl Observer for NoObserver {
    fn batch(&self, _: usize, _: usize, _: Duration) {}
    fn link(&self, _: Duration) {}
    fn cache(&self, _: bool) {}
}

/// The options of a classification request that change its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyOptions {
    /// Ranking entries returned (at least 1).
    pub top_k: usize,
    /// Below this score the answer is the fallback label.
    pub threshold: Option<f32>,
    /// Return the linked entities and the injected facts.
    pub explain: bool,
    /// Link and inject facts (false: the same model, no facts).
    pub use_graph: bool,
    /// Language of the labels of entities and facts; guessed when `None`.
    pub lang: Option<String>,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            threshold: None,
            explain: true,
            use_graph: true,
            lang: None,
        }
    }
}

impl ClassifyOptions {
    /// The canonical form that goes into the cache key.
    fn canonical(&self, fallback_label: &str) -> String {
        format!(
            "top_k={};threshold={};explain={};use_graph={};lang={};fallback={}",
            self.top_k,
            self.threshold
                .map_or_else(|| "none".to_owned(), |t| t.to_bits().to_string()),
            self.explain,
            self.use_graph,
            self.lang.as_deref().unwrap_or("auto"),
            fallback_label
        )
    }
}

/// Which model answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ModelRef {
    /// The name requests choose it by.
    #[schema(example = "bbc")]
    pub name: String,
    /// 16 hex digits identifying the model folder's bytes.
    #[schema(example = "3f9c2a71d04b5e88")]
    pub fingerprint: String,
}

/// Where the time of one answer went, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Timing {
    /// From the start of the request's work on this text to its answer.
    pub total: f64,
    /// Entity linking and fact retrieval.
    pub link: f64,
    /// Waiting for and running the (batched) encoder pass.
    pub encode: f64,
}

/// The answer for one text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Answer {
    /// The predicted label (the fallback label when `fallback`).
    #[schema(example = "business")]
    pub label: String,
    /// The best label's probability (softmax, or sigmoid for multi-label models).
    #[schema(example = 0.93)]
    pub score: f32,
    /// The `top_k` best labels with their probabilities, best first.
    pub ranking: Vec<Scored>,
    /// Multi-label models only: every label at or above the request's
    /// `threshold` (empty, with `fallback`, when none is), or without one,
    /// at or above the model's threshold (the best label when none is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// True when the best score was below the request's `threshold`, so
    /// `label` is the server's fallback label.
    pub fallback: bool,
    /// The linked entities (empty unless `explain`, or without the graph).
    pub entities: Vec<LinkedEntity>,
    /// The facts actually injected into the model's input (empty unless
    /// `explain`); `start`/`end` are the entity's Unicode scalar offsets.
    pub facts: Vec<Injection>,
    /// The text was cut to the model's maximum length.
    pub truncated: bool,
    /// The answer came from the cache.
    pub cached: bool,
    /// The model that answered.
    pub model: ModelRef,
    /// The store generation the answer was computed at.
    pub graph_generation: u64,
    /// Where the time went.
    pub timing_ms: Timing,
}

/// Bump when answers change shape or meaning, so a server upgraded over an
/// existing cache does not serve answers computed by the old code.
pub const CACHE_FORMAT: u32 = 3;

/// What besides the model and the graph generation decides an answer: the
/// cache format, the linking settings (a restart with another
/// `--link-config` must not serve the old facts) and the store's identity
/// ([`crate::graph::GraphStore::identity`]: a store made again counts its
/// generations from 0 again). 16 hex digits.
pub fn cache_context(link_config: &crate::link::LinkConfig, store_identity: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::digest(format!("{CACHE_FORMAT}|{store_identity}|{link_config:?}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The classification service: models, linker, store and cache.
pub struct ClassifyService {
    /// The served models.
    pub models: ModelRegistry,
    /// Set once the label index is built (see `api::LinkerSlot`).
    pub linker: Arc<OnceLock<Result<Arc<Linker>, String>>>,
    /// The store (its generation is part of every cache key).
    pub store: Arc<GraphStore>,
    /// The answer cache; `None` with `--no-cache`.
    pub cache: Option<AnswerCache>,
    /// [`cache_context`] of the server's settings; part of every cache epoch.
    pub cache_context: String,
    /// The label answered below a request's threshold.
    pub fallback_label: String,
    /// Where measurements go (the Prometheus metrics in `graft serve`).
    pub observer: Arc<dyn Observer>,
}

struct Work {
    index: usize,
    text: String,
    key: Option<[u8; 32]>,
}

impl ClassifyService {
    /// Classifies `texts` with the model `model` (the default one for
    /// `None`), answers in the order given.
    ///
    /// Texts are taken as sent, not normalised: entity offsets point into
    /// what the client sent, as `/v1/link`'s do (the linker folds case,
    /// width and Unicode forms internally), and the cache key is the exact
    /// text.
    ///
    /// # Errors
    /// Bad input ([`ServeError::BadRequest`], [`ServeError::TooManyTexts`],
    /// [`ServeError::TextTooLong`]), [`ServeError::UnknownModel`],
    /// [`ServeError::NoModel`], [`ServeError::Starting`] before the label
    /// index is built, [`ServeError::LinkingUnavailable`] when it could not
    /// be built, [`ServeError::TextTooLong`] also for the linker's own limit,
    /// [`ServeError::Overloaded`], [`ServeError::Internal`]. Nothing is
    /// cached from a request that fails.
    pub async fn classify(
        self: &Arc<Self>,
        model: Option<&str>,
        texts: Vec<String>,
        options: &ClassifyOptions,
    ) -> Result<Vec<Answer>, ServeError> {
        let started = Instant::now();
        check_texts(&texts)?;
        if options.top_k == 0 {
            return Err(ServeError::BadRequest("top_k must be at least 1".into()));
        }
        if let Some(t) = options.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(ServeError::BadRequest(format!(
                    "threshold {t} is not in [0, 1]"
                )));
            }
        }
        let served = self.models.get(model)?;
        let generation = self.store.generation();
        let epoch = Epoch {
            fingerprint: self.epoch_id(&served),
            generation,
        };
        let canonical = options.canonical(&self.fallback_label);
        let mut answers: Vec<Option<Answer>> = vec![None; texts.len()];
        let mut work = Vec::new();
        for (index, text) in texts.into_iter().enumerate() {
            let key = self.cache.as_ref().map(|_| {
                cache::key(&KeyParts {
                    epoch: &epoch,
                    options: &canonical,
                    text: &text,
                })
            });
            if let (Some(cache), Some(key)) = (&self.cache, &key) {
                let hit = cache
                    .get(key)
                    .and_then(|bytes| serde_json::from_slice::<Answer>(&bytes).ok());
                self.observer.cache(hit.is_some());
                if let Some(mut answer) = hit {
                    answer.cached = true;
                    // Two names may serve the same folder (same fingerprint,
                    // same entries): the answer names the one asked.
                    answer.model.name.clone_from(&served.name);
                    answer.timing_ms = Timing {
                        total: ms(started.elapsed()),
                        ..Timing::default()
                    };
                    answers[index] = Some(answer);
                    continue;
                }
            }
            work.push(Work { index, text, key });
        }
        if !work.is_empty() {
            let computed = self.compute(&served, &work, options, generation).await?;
            // A reload or a write while this request ran makes its key
            // unreachable already; storing it would only wait for a purge.
            let still_current = self.store.generation() == generation
                && self
                    .models
                    .get(model)
                    .is_ok_and(|current| Arc::ptr_eq(&current, &served));
            for (w, mut answer) in work.iter().zip(computed) {
                if let (Some(cache), Some(key), true) = (&self.cache, &w.key, still_current) {
                    match serde_json::to_vec(&answer) {
                        Ok(bytes) => {
                            if let Err(e) = cache.insert(key, &epoch, &bytes) {
                                tracing::warn!(error = %e, "cache insert failed");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot serialise an answer"),
                    }
                }
                answer.timing_ms.total = ms(started.elapsed());
                answers[w.index] = Some(answer);
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// Links, fuses and encodes the texts the cache did not have.
    async fn compute(
        self: &Arc<Self>,
        served: &Arc<ServedModel>,
        work: &[Work],
        options: &ClassifyOptions,
        generation: u64,
    ) -> Result<Vec<Answer>, ServeError> {
        let card = &served.classifier.card;
        let linker = if options.use_graph && card.fusion != FusionMode::None {
            Some(self.linker()?)
        } else {
            None
        };
        let texts: Vec<String> = work.iter().map(|w| w.text.clone()).collect();
        // Positions in the request, for errors that name a text.
        let positions: Vec<usize> = work.iter().map(|w| w.index).collect();
        let (model, lang, observer) = (served.clone(), options.lang.clone(), self.observer.clone());
        // Linking (SPARQL per entity) and tokenization block: off the runtime.
        let fused = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .enumerate()
                .map(|(index, text)| -> Result<_, ServeError> {
                    let cut = model
                        .classifier
                        .cut(text)
                        .map_err(|e| ServeError::Internal(e.to_string()))?;
                    let t = Instant::now();
                    let answer = match &linker {
                        // Only the parts of a long text the input keeps.
                        Some(l) => link_spans(l, text, cut.spans(), lang.as_deref(), None)
                            .map_err(|e| link_error(e, positions[index]))?,
                        None => LinkAnswer {
                            entities: Vec::new(),
                            facts: Vec::<Fact>::new(),
                            graph_generation: generation,
                        },
                    };
                    let link_time = t.elapsed();
                    if linker.is_some() {
                        observer.link(link_time);
                    }
                    let facts = injections(&answer);
                    let input = model
                        .classifier
                        .fuse_cut(&cut, &facts)
                        .map_err(|e| ServeError::Internal(e.to_string()))?;
                    Ok((answer, facts, input, link_time))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ServeError::Internal(e.to_string()))??;
        let encode_started = Instant::now();
        let probs = served
            .batcher
            .submit(fused.iter().map(|f| f.2.sequence.clone()).collect())
            .await?;
        let encode = ms(encode_started.elapsed());
        let model = ModelRef {
            name: served.name.clone(),
            fingerprint: served.fingerprint.clone(),
        };
        Ok(fused
            .into_iter()
            .zip(probs)
            .map(|((linked, facts, input, link_time), probs)| {
                let classifier = &served.classifier;
                let mut ranking = classifier.ranking(&probs);
                let best = ranking[0].clone();
                let fallback = options.threshold.is_some_and(|t| best.score < t);
                // Multi-label: every label at or above the request's
                // threshold (none: fallback), else the model's decision.
                let labels = card.multi_label.then(|| {
                    let chosen = match options.threshold {
                        Some(t) => (0..probs.len()).filter(|&i| probs[i] >= t).collect(),
                        None => classifier.decide(&probs),
                    };
                    chosen.into_iter().map(|i| card.labels[i].clone()).collect()
                });
                ranking.truncate(options.top_k);
                let injected: Vec<Injection> =
                    input.injected.iter().map(|&i| facts[i].clone()).collect();
                Answer {
                    label: if fallback {
                        self.fallback_label.clone()
                    } else {
                        best.label
                    },
                    score: best.score,
                    ranking,
                    labels,
                    fallback,
                    entities: if options.explain {
                        linked.entities
                    } else {
                        Vec::new()
                    },
                    facts: if options.explain {
                        injected
                    } else {
                        Vec::new()
                    },
                    truncated: input.truncated,
                    cached: false,
                    model: model.clone(),
                    graph_generation: linked.graph_generation,
                    timing_ms: Timing {
                        total: 0.0,
                        link: ms(link_time),
                        encode,
                    },
                }
            })
            .collect())
    }

    /// The cache epoch's identity of a model: its fingerprint and the
    /// service's [`cache_context`].
    fn epoch_id(&self, model: &ServedModel) -> String {
        format!("{}/{}", model.fingerprint, self.cache_context)
    }

    fn linker(&self) -> Result<Arc<Linker>, ServeError> {
        match self.linker.get() {
            Some(Ok(l)) => Ok(l.clone()),
            Some(Err(e)) => Err(ServeError::LinkingUnavailable(e.clone())),
            None => Err(ServeError::Starting),
        }
    }

    /// Deletes cache entries no served model can reach any more (another
    /// graph generation, a replaced model); returns how many. Blocking.
    pub fn purge_cache(&self) -> usize {
        let Some(cache) = &self.cache else {
            return 0;
        };
        let generation = self.store.generation();
        let live: Vec<String> = self
            .models
            .all()
            .into_iter()
            .map(|(_, m)| self.epoch_id(&m))
            .collect();
        cache.purge(|e| e.generation == generation && live.contains(&e.fingerprint))
    }
}

fn link_error(e: LinkError, index: usize) -> ServeError {
    match e {
        // The linker's own limit (`max_text_chars` of --link-config) may be
        // lower than the service's.
        LinkError::TextTooLong { chars, limit } => ServeError::TextTooLong {
            index,
            chars,
            limit,
        },
        LinkError::Graph(g) => ServeError::Internal(g.to_string()),
    }
}

fn check_texts(texts: &[String]) -> Result<(), ServeError> {
    if texts.is_empty() {
        return Err(ServeError::BadRequest("`texts` is empty".into()));
    }
    if texts.len() > MAX_TEXTS {
        return Err(ServeError::TooManyTexts {
            count: texts.len(),
            limit: MAX_TEXTS,
        });
    }
    for (index, text) in texts.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(ServeError::BadRequest(format!("text {index} is empty")));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(ServeError::TextTooLong {
                index,
                chars,
                limit: MAX_TEXT_CHARS,
            });
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}
