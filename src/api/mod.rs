//! The HTTP layer (actix-web): SPARQL 1.1 Protocol at `/sparql`, Graph Store
//! HTTP Protocol at `/store`, classification at `/v1/classify` and
//! `/v1/models`, entity linking at `/v1/link`, sentence embeddings at
//! `/v1/embed`, `/health`, `/metrics`, `/openapi.json` and the web console
//! at `/`. Thin over the core ([`crate::graph`], [`crate::serving`], ...):
//! it parses requests, negotiates formats, checks auth and limits, and maps
//! core errors to statuses; it owns no graph or model logic.

mod auth;
mod body;
mod classify;
mod console;
mod disconnect;
mod embed;
mod error;
mod graph_store;
mod health;
mod link;
pub mod metrics;
mod models;
pub mod negotiate;
pub mod openapi;
mod request_id;
mod sparql;
mod stream;

pub use error::ApiError;

use crate::encoder::Encoder;
use crate::graph::{GraphStore, SparqlOptions};
use crate::link::Linker;
use crate::serving::ClassifyService;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpServer};
use metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Everything `graft serve` is configured with (flags, env).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:8080` by default; port 0 picks a free one).
    pub bind: String,
    /// The bearer token writes must carry. `None`: every write is refused
    /// with 403 (graft never accepts anonymous writes).
    pub auth_token: Option<String>,
    /// Refuse every write with 403, token or not.
    pub read_only: bool,
    /// Time limit of one query or update; past it the operation is cancelled
    /// and the client gets 503.
    pub query_timeout: Duration,
    /// Largest request body accepted, in bytes; larger gets 413 unread.
    pub max_body_bytes: usize,
    /// Allow SPARQL `SERVICE` and `LOAD <url>`.
    pub allow_federation: bool,
    /// Default graph = union of all graphs for queries that name no dataset.
    pub union_default_graph: bool,
    /// Origins allowed by CORS; empty = CORS off (no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// Longest wait for a JSON request body; a slower client gets 408.
    pub body_timeout: Duration,
    /// Most requests of `/v1/classify`, `/v1/link` and `/v1/embed` in
    /// flight at once; more get 429 at once instead of queueing.
    pub max_concurrent: usize,
    /// The URL clients reach graft at (scheme, host, optional path prefix;
    /// no trailing slash, see [`public_url`]), for a server behind a proxy:
    /// the graphs `POST /store` creates are named under it, and relative
    /// IRIs in bodies sent to `?default` resolve against `PUBLIC_URL/store`.
    /// `None`: the request's scheme and `Host` header.
    pub public_url: Option<String>,
}

/// Why a `--public-url` is refused.
#[derive(Debug, thiserror::Error)]
pub enum PublicUrlError {
    /// Not an absolute IRI.
    #[error("{url:?} is not an absolute URL: {reason}")]
    NotAbsolute {
        /// The value given.
        url: String,
        /// The IRI parser's message.
        reason: String,
    },
    /// Not `http` or `https`, no host, user information, a bad port, a
    /// query or a fragment.
    #[error("{url:?} must be an http:// or https:// URL with a host, without user information, a query or a fragment (e.g. https://kb.example.org/graft)")]
    Unsupported {
        /// The value given.
        url: String,
    },
}

/// Checks a public base URL, writes its scheme and host in lower case and
/// drops its trailing slashes (`HTTPS://KB.example.org/graft/` →
/// `https://kb.example.org/graft`), so graph IRIs have one spelling.
///
/// # Errors
/// [`PublicUrlError`] for a relative IRI, a scheme other than http(s), an
/// empty host, user information (`user:pass@`: it would be in every graph
/// IRI), a port that is not a number, a query or a fragment.
pub fn public_url(url: &str) -> Result<String, PublicUrlError> {
    let iri = oxigraph::model::NamedNode::new(url).map_err(|e| PublicUrlError::NotAbsolute {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let unsupported = || PublicUrlError::Unsupported {
        url: url.to_owned(),
    };
    let s = iri.as_str();
    let (scheme, rest) = s.split_once("://").ok_or_else(unsupported)?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") || rest.contains(['?', '#']) {
        return Err(unsupported());
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    // The host is what precedes an optional `:port` (an IPv6 literal is
    // bracketed, so its colons come before the `]`).
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || authority.contains('@') || !port_ok {
        return Err(unsupported());
    }
    Ok(format!(
        "{scheme}://{}{}",
        authority.to_ascii_lowercase(),
        path.trim_end_matches('/')
    ))
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            auth_token: None,
            read_only: false,
            query_timeout: Duration::from_secs(30),
            max_body_bytes: 128 << 20,
            allow_federation: false,
            union_default_graph: false,
            cors_origins: Vec::new(),
            workers: 0,
            body_timeout: Duration::from_secs(30),
            public_url: None,
            max_concurrent: 256,
        }
    }
}

impl ServeConfig {
    pub(crate) fn sparql_options(&self) -> SparqlOptions {
        SparqlOptions {
            allow_federation: self.allow_federation,
            union_default_graph: self.union_default_graph,
            timeout: Some(self.query_timeout),
        }
    }
}

/// Where the linker lands once built in the background: `Ok` with it, or
/// `Err` with why the label index could not be built.
pub type LinkerSlot = Arc<std::sync::OnceLock<Result<Arc<Linker>, String>>>;

/// Shared state of every request handler.
pub struct AppState {
    /// The RDF store.
    pub store: Arc<GraphStore>,
    /// The entity linker, set once its label index is built (the server
    /// answers before that; `/v1/link` says 503 until then).
    pub linker: LinkerSlot,
    /// The encoder of `POST /v1/embed`, when `--encoder` was given.
    pub encoder: Option<Arc<Encoder>>,
    /// The classifiers of `/v1/classify` (possibly none) and the cache.
    pub classify: Arc<ClassifyService>,
    /// The Prometheus metrics of `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Flags and limits.
    pub config: ServeConfig,
    limiter: Arc<tokio::sync::Semaphore>,
    health: health::CountCache,
}

impl AppState {
    /// State over an open store; `classify` shares the store, the linker slot
    /// and (as its observer) `metrics`.
    pub fn new(
        classify: Arc<ClassifyService>,
        encoder: Option<Arc<Encoder>>,
        metrics: Arc<Metrics>,
        config: ServeConfig,
    ) -> Self {
        for name in classify.models.names() {
            metrics.declare_model(&name);
        }
        Self {
            store: classify.store.clone(),
            linker: classify.linker.clone(),
            encoder,
            classify,
            metrics,
            limiter: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent.max(1))),
            config,
            health: health::CountCache::default(),
        }
    }

    /// A slot among the `max_concurrent` requests in flight, held until
    /// dropped.
    ///
    /// # Errors
    /// 429 `too_many_requests` when every slot is taken.
    pub fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.limiter.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "{} requests are already in flight; retry shortly",
                    self.config.max_concurrent
                ),
            )
        })
    }
}

/// Registers graft's routes on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/sparql")
            .route(web::get().to(sparql::get))
            .route(web::post().to(sparql::post))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        // `/store?graph=IRI` (indirect) and the graphs it names itself (direct).
        web::resource(["/store", "/store/graphs/{id}"])
            .route(web::get().to(graph_store::get))
            .route(web::head().to(graph_store::head))
            .route(web::put().to(graph_store::put))
            .route(web::post().to(graph_store::post))
            .route(web::delete().to(graph_store::delete))
            .default_service(not_allowed("GET, HEAD, PUT, POST, DELETE")),
    )
    .service(
        web::resource("/health")
            .route(web::get().to(health::get))
            // Load balancers probe with HEAD; actix sends the head only.
            .route(web::head().to(health::get))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/v1/embed")
            .route(web::post().to(embed::post))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/v1/link")
            .route(web::post().to(link::post))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/v1/classify")
            .route(web::post().to(classify::post))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/v1/models")
            .route(web::get().to(models::list))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/v1/models/{name}/reload")
            .route(web::post().to(models::reload))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics::get))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi::get))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/")
            .route(web::get().to(console::get))
            .route(web::head().to(console::get))
            .default_service(not_allowed("GET, HEAD")),
    )
    .default_service(web::to(not_found));
}

async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {} {}", req.method(), req.path()),
    ))
}

/// The answer to a method a resource does not have: 405
/// `method_not_allowed` with the `Allow` header listing the ones it has
/// (RFC 9110 §15.5.6).
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move |req: actix_web::HttpRequest| async move {
        let mut response = actix_web::ResponseError::error_response(&ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not allowed on {} (allowed: {allow})",
                req.method(),
                req.path()
            ),
        ));
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    })
}

/// Binds, serves until SIGINT/SIGTERM, then drains requests and flushes
/// the store and the cache. SIGHUP reloads every model. A background task
/// purges cache entries made unreachable by graph writes and reloads.
///
/// `on_bound` is called with the bound addresses before serving (used to
/// print the real port when binding port 0).
///
/// # Errors
/// An I/O error when the address cannot be bound.
pub async fn serve(state: AppState, on_bound: impl FnOnce(&[SocketAddr])) -> std::io::Result<()> {
    let config = state.config.clone();
    let state = web::Data::new(state);
    let cors_origins = config.cors_origins.clone();
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        let cors = if cors_origins.is_empty() {
            actix_cors::Cors::default().block_on_origin_mismatch(false)
        } else {
            cors_origins.iter().fold(
                actix_cors::Cors::default()
                    .allowed_methods(["GET", "HEAD", "POST", "PUT", "DELETE"])
                    .allow_any_header()
                    .max_age(3600),
                |c, o| {
                    if o == "*" {
                        c.allow_any_origin()
                    } else {
                        c.allowed_origin(o)
                    }
                },
            )
        };
        App::new()
            .app_data(app_state.clone())
            .wrap(cors)
            .wrap_fn(request_id::log_and_measure)
            .configure(configure)
    })
    // Responses are written in pieces (head, body chunks); without
    // TCP_NODELAY, Nagle's algorithm and the client's delayed ACK hold the
    // last piece back by up to 40 ms.
    .on_connect(|conn, data| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            data.insert(disconnect::Peer::of(tcp));
        }
    })
    .shutdown_timeout(10)
    .bind(&config.bind)
    .map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot listen on {}: {e} (choose another address with --bind)",
                config.bind
            ),
        )
    })?;
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    on_bound(&server.addrs());
    let reloader = actix_web::rt::spawn(reload_on_sighup(state.clone()));
    let purger = actix_web::rt::spawn(purge_cache(state.clone()));
    server.run().await?;
    reloader.abort();
    purger.abort();
    tracing::info!("shutting down: flushing the store");
    if let Err(e) = state.store.flush() {
        tracing::error!(error = %e, "flush on shutdown failed");
    }
    if let Some(cache) = &state.classify.cache {
        cache.flush();
    }
    Ok(())
}

/// Reloads every model on SIGHUP (as `POST /v1/models/{name}/reload`).
async fn reload_on_sighup(state: web::Data<AppState>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: reload models over HTTP instead");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading every model");
        for name in state.classify.models.names() {
            if let Err(e) = models::reload_model(&state, name.clone()).await {
                tracing::error!(model = %name, error = %e, "reload failed: the old copy keeps serving");
            }
        }
    }
}

/// Every 5 s: when the graph generation moved since the last purge, deletes
/// the cache entries of older generations.
async fn purge_cache(state: web::Data<AppState>) {
    if state.classify.cache.is_none() {
        return;
    }
    let mut purged_at = None;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let generation = state.store.generation();
        if purged_at == Some(generation) {
            continue;
        }
        let service = state.classify.clone();
        if let Ok(n) = web::block(move || service.purge_cache()).await {
            if n > 0 {
                tracing::info!(entries = n, generation, "purged stale cache entries");
            }
        }
        purged_at = Some(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::{public_url, PublicUrlError};

    #[test]
    fn a_public_url_is_checked_and_loses_its_trailing_slash() {
        assert_eq!(
            public_url("https://kb.example.org/graft/").unwrap(),
            "https://kb.example.org/graft"
        );
        assert_eq!(
            public_url("HTTP://KB.Example.org:8443/Graft").unwrap(),
            "http://kb.example.org:8443/Graft",
            "scheme and host in lower case, the path as given"
        );
        assert_eq!(
            public_url("http://[::1]:8080/").unwrap(),
            "http://[::1]:8080"
        );
        for not_an_iri in ["kb.example.org", "/graft", "", "http://kb.example.org:80x"] {
            assert!(
                matches!(
                    public_url(not_an_iri),
                    Err(PublicUrlError::NotAbsolute { .. })
                ),
                "{not_an_iri:?}"
            );
        }
        for unsupported in [
            "ftp://kb.example.org",
            "urn:graft:kb",
            "http:///path",
            "https://kb.example.org/?a=1",
            "https://kb.example.org/#top",
            "http://:8080",
            "http://:",
            "https://user@/graft",
            "https://user:secret@kb.example.org",
        ] {
            let e = public_url(unsupported).unwrap_err();
            assert!(
                matches!(e, PublicUrlError::Unsupported { .. }),
                "{unsupported:?}"
            );
            assert!(e.to_string().contains(unsupported), "{e}");
        }
    }
}
