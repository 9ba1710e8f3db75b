//! The HTTP layer (actix-web): SPARQL 1.1 Protocol at `/sparql`, Graph Store
//! HTTP Protocol at `/store`, entity linking at `/v1/link`, sentence embeddings at `/v1/embed`, `/health`. Thin over [`crate::graph`]: it
//! parses requests, negotiates formats, checks auth and limits, and maps
//! [`crate::graph::GraphError`] to statuses; it owns no graph logic.

mod auth;
mod body;
mod embed;
mod error;
mod graph_store;
mod health;
mod link;
pub mod negotiate;
mod sparql;
mod stream;

pub use error::ApiError;

use crate::encoder::Encoder;
use crate::graph::{GraphStore, SparqlOptions};
use crate::link::Linker;
use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub store: Arc<GraphStore>,
    /// The entity linker, set once its label index is built (the server
    /// answers before that; `/v1/link` says 503 until then).
    pub linker: LinkerSlot,
    /// The encoder of `POST /v1/embed`, when `--encoder` was given.
    pub encoder: Option<Arc<Encoder>>,
    pub config: ServeConfig,
    health: health::CountCache,
}

impl AppState {
    /// State over an open store.
    pub fn new(
        store: Arc<GraphStore>,
        linker: LinkerSlot,
        encoder: Option<Arc<Encoder>>,
        config: ServeConfig,
    ) -> Self {
        Self {
            store,
            linker,
            encoder,
            config,
            health: health::CountCache::default(),
        }
    }
}

/// Registers graft's routes on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/sparql")
            .route(web::get().to(sparql::get))
            .route(web::post().to(sparql::post))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        // `/store?graph=IRI` (indirect) and the graphs it names itself (direct).
        web::resource(["/store", "/store/graphs/{id}"])
            .route(web::get().to(graph_store::get))
            .route(web::head().to(graph_store::head))
            .route(web::put().to(graph_store::put))
            .route(web::post().to(graph_store::post))
            .route(web::delete().to(graph_store::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/health")
            .route(web::get().to(health::get))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/embed")
            .route(web::post().to(embed::post))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/link")
            .route(web::post().to(link::post))
            .default_service(web::to(method_not_allowed)),
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

async fn method_not_allowed(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// Binds, serves until SIGINT/SIGTERM, then drains requests and flushes the store.
///
/// `on_bound` is called with the bound addresses before serving (used to
/// print the real port when binding port 0).
///
/// # Errors
/// An I/O error when the address cannot be bound.
pub async fn serve(
    store: Arc<GraphStore>,
    linker: LinkerSlot,
    encoder: Option<Arc<Encoder>>,
    config: ServeConfig,
    on_bound: impl FnOnce(&[SocketAddr]),
) -> std::io::Result<()> {
    let state = web::Data::new(AppState::new(
        store.clone(),
        linker,
        encoder,
        config.clone(),
    ));
    let cors_origins = config.cors_origins.clone();
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
            .app_data(state.clone())
            .wrap(cors)
            .wrap_fn(|req, srv| {
                let start = Instant::now();
                let method = req.method().clone();
                let path = req.path().to_owned();
                let fut = srv.call(req);
                async move {
                    let res = fut.await;
                    let status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(500);
                    tracing::info!(%method, %path, status, elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "request");
                    res
                }
            })
            .configure(configure)
    })
    // Responses are written in pieces (head, body chunks); without
    // TCP_NODELAY, Nagle's algorithm and the client's delayed ACK hold the
    // last piece back by up to 40 ms.
    .on_connect(|conn, _| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        }
    })
    .shutdown_timeout(10)
    .bind(&config.bind)?;
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    on_bound(&server.addrs());
    server.run().await?;
    tracing::info!("shutting down: flushing the store");
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "flush on shutdown failed");
    }
    Ok(())
}
