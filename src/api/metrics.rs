//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of what the
//! server does: requests by route and status with latency histograms, cache
//! hits and misses, encoder batch sizes and times, linking times, the graph
//! generation, model reloads.

use super::{ApiError, AppState};
use crate::serving::Observer;
use actix_web::{web, HttpResponse};
use prometheus::{
    exponential_buckets, Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounterVec,
    IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Every metric graft exports, registered in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    cache_lookups: IntCounterVec,
    cache_entries: IntGauge,
    cache_bytes: IntGauge,
    batch_sequences: Histogram,
    batch_tokens: Histogram,
    encoder_seconds: Histogram,
    link_seconds: Histogram,
    generation: IntGauge,
    reloads: IntCounterVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails for malformed names or duplicate registration: a bug here, not input.
    r.expect("metric definitions are valid")
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = must(Registry::new_custom(Some("graft".into()), None));
        let requests = must(IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        ));
        let latency = must(HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route, from the request head to the response head",
            )
            .buckets(must(exponential_buckets(0.0005, 2.0, 16))),
            &["route"],
        ));
        let cache_lookups = must(IntCounterVec::new(
            Opts::new("cache_lookups_total", "Answer cache lookups by result"),
            &["result"],
        ));
        let cache_entries = must(IntGauge::new("cache_entries", "Answers in the cache"));
        let cache_bytes = must(IntGauge::new(
            "cache_bytes",
            "Bytes of keys and values in the answer cache",
        ));
        let batch_sequences = must(Histogram::with_opts(
            HistogramOpts::new("batch_sequences", "Inputs per encoder pass")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        ));
        let batch_tokens = must(Histogram::with_opts(
            HistogramOpts::new("batch_tokens", "Tokens per encoder pass")
                .buckets(must(exponential_buckets(16.0, 2.0, 12))),
        ));
        let encoder_seconds = must(Histogram::with_opts(
            HistogramOpts::new("encoder_seconds", "Time of one encoder pass")
                .buckets(must(exponential_buckets(0.001, 2.0, 14))),
        ));
        let link_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "link_seconds",
                "Entity linking and fact retrieval time per text",
            )
            .buckets(must(exponential_buckets(0.0001, 2.0, 16))),
        ));
        let generation = must(IntGauge::new(
            "graph_generation",
            "The store's generation counter (bumped by every committed write)",
        ));
        let reloads = must(IntCounterVec::new(
            Opts::new("model_reloads_total", "Model reloads by model and result"),
            &["model", "result"],
        ));
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(cache_entries.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(batch_sequences.clone()),
            Box::new(batch_tokens.clone()),
            Box::new(encoder_seconds.clone()),
            Box::new(link_seconds.clone()),
            Box::new(generation.clone()),
            Box::new(reloads.clone()),
        ] {
            must(registry.register(c));
        }
        Self {
            registry,
            requests,
            latency,
            cache_lookups,
            cache_entries,
            cache_bytes,
            batch_sequences,
            batch_tokens,
            encoder_seconds,
            link_seconds,
            generation,
            reloads,
        }
    }
}

impl Metrics {
    /// Counts one finished request; `route` is the matched route pattern
    /// (not the raw path, so the label set stays bounded).
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Makes `model_reloads_total` show `model` at 0 for both results before
    /// its first reload, so a dashboard's rate() and alerts see the series
    /// from the start (Prometheus' advice for labelled counters).
    pub fn declare_model(&self, model: &str) {
        for result in ["ok", "failed"] {
            self.reloads.with_label_values(&[model, result]);
        }
    }

    /// Counts one model reload.
    pub fn reload(&self, model: &str, ok: bool) {
        self.reloads
            .with_label_values(&[model, if ok { "ok" } else { "failed" }])
            .inc();
    }
}

impl Observer for Metrics {
    fn batch(&self, sequences: usize, tokens: usize, elapsed: Duration) {
        self.batch_sequences.observe(sequences as f64);
        self.batch_tokens.observe(tokens as f64);
        self.encoder_seconds.observe(elapsed.as_secs_f64());
    }

    fn link(&self, elapsed: Duration) {
        self.link_seconds.observe(elapsed.as_secs_f64());
    }

    fn cache(&self, hit: bool) {
        self.cache_lookups
            .with_label_values(&[if hit { "hit" } else { "miss" }])
            .inc();
    }
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    m.generation.set(state.store.generation() as i64);
    if let Some(cache) = &state.classify.cache {
        let stats = cache.stats();
        m.cache_entries.set(stats.entries as i64);
        m.cache_bytes.set(stats.bytes as i64);
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out))
}
