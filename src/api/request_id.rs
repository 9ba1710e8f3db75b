//! Request IDs, the request log line and the request metrics, as one
//! middleware: each request gets an ID (the client's `X-Request-Id` when it
//! is a short printable token, else 16 random hex digits), every log line
//! of the request carries it (a `request` span), and the response returns
//! it in `X-Request-Id`.

use super::AppState;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn request_id(req: &ServiceRequest) -> String {
    let given = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(id) => id.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// The middleware (for `App::wrap_fn`).
pub fn log_and_measure<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let start = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.path().to_owned();
    // The route pattern (`/v1/models/{name}/reload`), not the path: the
    // metric's label set must stay bounded.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", id = %id);
    let fut = span.in_scope(|| srv.call(req));
    async move {
        let mut res = fut.await;
        let status = res.as_ref().map_or(500, |r| r.status().as_u16());
        if let Ok(r) = &mut res {
            if let Ok(v) = HeaderValue::from_str(&id) {
                r.headers_mut().insert(HEADER, v);
            }
        }
        if let Some(state) = state {
            // Methods are client text: only the standard ones become labels.
            let method_label = match method.as_str() {
                m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH") => m,
                _ => "other",
            };
            state
                .metrics
                .request(&route, method_label, status, start.elapsed());
        }
        tracing::info!(%method, %path, status, elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "request");
        res
    }
    .instrument(span)
}
