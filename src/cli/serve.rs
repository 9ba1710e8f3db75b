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
    /// on /store) must carry. Without a token (file or GRAFT_AUTH_TOKEN), every
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
}

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
        bind: args.bind,
        auth_token,
        read_only: args.read_only,
        query_timeout: Duration::from_secs(args.query_timeout_s.max(1)),
        max_body_bytes: args.max_body_mb.saturating_mul(1 << 20),
        allow_federation: args.allow_federation,
        union_default_graph: args.union_default_graph,
        cors_origins: args.cors_origins,
        workers: args.workers,
    };
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
    if config.auth_token.is_none() && !config.read_only {
        tracing::warn!("no auth token configured: writes over HTTP are refused (set GRAFT_AUTH_TOKEN or --auth-token-file)");
    }
    actix_web::rt::System::new().block_on(async move {
        api::serve(store, linker, encoder, config, |addrs| {
            for addr in addrs {
                tracing::info!("graft listening on http://{addr}");
            }
        })
        .await
    })?;
    Ok(())
}
