//! `graft serve`.

use super::CliResult;
use crate::api::{self, ServeConfig};
use crate::graph::GraphStore;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Flags of `graft serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Port 0 picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// File holding the bearer token that writes (SPARQL update, PUT/POST/DELETE
    /// on /store) and model reloads must carry. Without a token (file or GRAFT_AUTH_TOKEN), every
    /// write over HTTP is refused with 403; reads stay open.
    #[arg(long)]
    pub auth_token_file: Option<PathBuf>,

    /// Refuse every write with 403, even with a valid token.
    #[arg(long)]
    pub read_only: bool,

    /// Time limit of one query or update, in seconds; past it the operation is
    /// cancelled and the client gets 503.
    #[arg(long, default_value_t = 30)]
    pub query_timeout_s: u64,

    /// Largest request body accepted, in MiB; larger bodies get 413 unread.
    #[arg(long, default_value_t = 128)]
    pub max_body_mb: usize,

    /// Allow SPARQL SERVICE (federated query) and LOAD <url>. Both make the
    /// server fetch URLs its clients choose (http:// only in this build); off by default.
    #[arg(long)]
    pub allow_federation: bool,

    /// Queries that name no dataset see the union of all graphs as their default graph.
    #[arg(long)]
    pub union_default_graph: bool,

    /// Allow cross-origin requests from this origin (repeatable; `*` for any).
    /// CORS is off when not given.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,

    /// A JSON file overriding entity-linking settings (see docs/linking.md).
    #[arg(long)]
    pub link_config: Option<PathBuf>,

    /// A Hugging Face BERT model folder for POST /v1/embed (e.g. models/all-MiniLM-L6-v2).
    /// Without it /v1/embed answers 503 `no_encoder`.
    #[arg(long, env = "GRAFT_ENCODER")]
    pub encoder: Option<PathBuf>,

    /// HTTP worker threads (0 = one per CPU core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// A classifier for POST /v1/classify, as NAME=DIR (a folder written by
    /// `graft train`). Repeatable; the first is the default model.
    #[arg(long = "model", value_name = "NAME=DIR")]
    pub models: Vec<String>,

    /// Serve every classifier folder (one with a graft.json) under DIR, named
    /// after its folder, after the --model ones.
    #[arg(long, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,

    /// The label answered when the best score is below a request's `threshold`.
    #[arg(long, default_value = "out_of_scope")]
    pub fallback_label: String,

    /// Do not cache classification answers (by default they are kept in
    /// DATA_DIR/cache, keyed by model, graph generation, options and text).
    #[arg(long)]
    pub no_cache: bool,

    /// Size bound of the answer cache, in MiB; past it the oldest answers go.
    #[arg(long, default_value_t = 512)]
    pub cache_mb: u64,

    /// Most /v1/classify, /v1/link and /v1/embed requests in flight; more get 429.
    #[arg(long, default_value_t = 256)]
    pub max_concurrent: usize,

    /// Longest time a request waits for others to share its encoder pass, in ms.
    #[arg(long, default_value_t = 2)]
    pub batch_wait_ms: u64,

    /// Tokens past which a batch of requests takes no more (each encoder pass
    /// inside it is further bounded to 32 texts and 8192 padded tokens).
    #[arg(long, default_value_t = 8192)]
    pub max_batch_tokens: usize,

    /// Longest wait for a JSON request body, in seconds; slower clients get 408.
    #[arg(long, default_value_t = 30)]
    pub body_timeout_s: u64,

    /// The URL clients reach graft at when it is behind a proxy (e.g.
    /// https://kb.example.org/graft): graphs created by POST /store are
    /// named ORIGIN/store/graphs/ID under it. Default: the request's scheme
    /// and Host header.
    #[arg(long, env = "GRAFT_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The `(name, folder)` pairs of `--model` and `--models-dir`.
fn model_list(args: &ServeArgs) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    for spec in &args.models {
        let (name, dir) = spec
            .split_once('=')
            .ok_or_else(|| format!("--model {spec:?}: expected NAME=DIR"))?;
        out.push((name.trim().to_owned(), PathBuf::from(dir)));
    }
    if let Some(root) = &args.models_dir {
        let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(root)
            .map_err(|e| format!("--models-dir {}: {e}", root.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("graft.json").is_file())
            .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p)))
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Runs `graft serve` until SIGINT/SIGTERM.
pub fn run(data_dir: &Path, args: ServeArgs) -> CliResult {
    let auth_token = match &args.auth_token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --auth-token-file {}: {e}", path.display()))?;
            Some(token.trim().to_owned())
        }
        None => std::env::var("GRAFT_AUTH_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned()),
    };
    if auth_token.as_deref() == Some("") {
        return Err("the auth token is empty".into());
    }
    let config = ServeConfig {
        bind: args.bind.clone(),
        auth_token,
        read_only: args.read_only,
        query_timeout: Duration::from_secs(args.query_timeout_s.max(1)),
        max_body_bytes: args.max_body_mb.saturating_mul(1 << 20),
        allow_federation: args.allow_federation,
        union_default_graph: args.union_default_graph,
        cors_origins: args.cors_origins.clone(),
        workers: args.workers,
        body_timeout: Duration::from_secs(args.body_timeout_s.max(1)),
        max_concurrent: args.max_concurrent.max(1),
        public_url: args
            .public_url
            .as_deref()
            .map(api::public_url)
            .transpose()
            .map_err(|e| format!("--public-url {e}"))?,
    };
    let models = model_list(&args)?;
    let link_config = super::link::load_config(args.link_config.as_deref())?;
    let encoder = match &args.encoder {
        Some(dir) => {
            let encoder = crate::encoder::Encoder::load(dir)
                .map_err(|e| format!("--encoder {}: {e}", dir.display()))?;
            tracing::info!(model = %dir.display(), dim = encoder.config().hidden_size, "encoder loaded");
            Some(Arc::new(encoder))
        }
        None => None,
    };
    let store = Arc::new(GraphStore::open(data_dir)?);
    let cache_context = crate::serving::cache_context(&link_config, &store.identity());
    // The label index is built in the background: the SPARQL endpoints answer
    // at once, /v1/link once the index is ready (503 `starting` until then).
    let linker: api::LinkerSlot = Arc::default();
    {
        let (slot, store) = (linker.clone(), store.clone());
        std::thread::spawn(move || {
            tracing::info!("building the label index");
            let built = crate::link::Linker::new(store, link_config, &|n| {
                tracing::debug!(label_triples = n, "label index");
            })
            .map(Arc::new)
            .map_err(|e| e.to_string());
            if let Ok(linker) = &built {
                linker.keep_fresh();
            }
            match &built {
                Ok(linker) => {
                    if let Ok(index) = linker.index() {
                        let stats = index.stats();
                        tracing::info!(
                            labels = stats.labels,
                            nodes = stats.nodes,
                            build_ms = stats.build_ms,
                            memory_bytes = stats.memory_bytes,
                            "label index built"
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "the label index could not be built"),
            }
            let _ = slot.set(built);
        });
    }
    let metrics = Arc::new(crate::api::metrics::Metrics::default());
    let batch = crate::serving::BatchConfig {
        max_batch_tokens: args.max_batch_tokens.max(1),
        max_wait: Duration::from_millis(args.batch_wait_ms),
        ..Default::default()
    };
    let registry = crate::serving::ModelRegistry::load(&models, batch, metrics.clone())?;
    for (dir, m) in registry.all() {
        let card = &m.classifier.card;
        tracing::info!(model = %m.name, dir = %dir.display(), fingerprint = %m.fingerprint, fusion = ?card.fusion, labels = card.labels.len(), "classifier loaded");
    }
    // Models that read facts need the graph they were trained with: say so
    // once the label index is known (as `graft eval` and `classify` do).
    let expected: Vec<(String, u64)> = registry
        .all()
        .iter()
        .filter(|(_, m)| m.classifier.card.fusion != crate::fusion::FusionMode::None)
        .filter_map(|(_, m)| Some((m.name.clone(), m.classifier.card.graph.as_ref()?.generation)))
        .collect();
    if !expected.is_empty() {
        let slot = linker.clone();
        std::thread::spawn(move || loop {
            match slot.get() {
                None => std::thread::sleep(Duration::from_millis(100)),
                Some(Err(_)) => return,
                Some(Ok(l)) => {
                    let labels = l.index().map(|i| i.stats().labels).unwrap_or(0);
                    for (name, trained) in &expected {
                        if labels == 0 {
                            tracing::warn!(model = %name, "the store has no labelled nodes: this model will get no facts (serve the --data-dir it was trained with)");
                        } else if l.indexed_generation() != *trained {
                            tracing::warn!(model = %name, trained = *trained, now = l.indexed_generation(), "the store's generation differs from the one the model was trained with");
                        }
                    }
                    return;
                }
            }
        });
    }
    let cache = if args.no_cache {
        None
    } else {
        match crate::cache::AnswerCache::open(&data_dir.join("cache"), args.cache_mb << 20) {
            Ok((cache, warning)) => {
                if let Some(w) = warning {
                    tracing::warn!("{w}");
                }
                Some(cache)
            }
            Err(e) => {
                tracing::warn!(error = %e, "running without the answer cache");
                None
            }
        }
    };
    let classify = Arc::new(crate::serving::ClassifyService {
        models: registry,
        linker,
        store,
        cache,
        cache_context,
        fallback_label: args.fallback_label.clone(),
        observer: metrics.clone(),
    });
    if config.auth_token.is_none() && !config.read_only {
        tracing::warn!("no auth token configured: writes over HTTP are refused (set GRAFT_AUTH_TOKEN or --auth-token-file)");
    }
    let state = api::AppState::new(classify, encoder, metrics, config);
    actix_web::rt::System::new().block_on(async move {
        api::serve(state, |addrs| {
            for addr in addrs {
                tracing::info!("graft listening on http://{addr}");
            }
        })
        .await
    })?;
    Ok(())
}
