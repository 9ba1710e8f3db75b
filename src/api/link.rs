//! `POST /v1/link`: entity linking and the facts of the linked entities.

use super::{body, ApiError, AppState};
use crate::knowledge::link_text;
use crate::link::LinkError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The text to link (at most `max_text_chars` Unicode scalars, 100,000 by default).
    pub text: String,
    /// Language of the labels in the answer (`en`, `zh`...); guessed from the script when absent.
    pub lang: Option<String>,
    /// At most this many facts (default: the configured `max_facts_per_text`).
    pub max_facts: Option<usize>,
}

/// `POST /v1/link` with `{"text": "...", "lang": optional, "max_facts": optional}`.
#[utoipa::path(post, path = "/v1/link", operation_id = "link", tag = "linking",
    request_body = LinkRequest,
    responses(
        (status = 200, description = "The linked entities and their facts", body = crate::knowledge::LinkAnswer),
        (status = 400, description = "Malformed JSON", body = super::openapi::ErrorSchema),
        (status = 408, description = "The body did not arrive in time", body = super::openapi::ErrorSchema),
        (status = 413, description = "A text over 100,000 characters", body = super::openapi::ErrorSchema),
        (status = 415, description = "Not application/json", body = super::openapi::ErrorSchema),
        (status = 429, description = "Too many requests in flight", body = super::openapi::ErrorSchema),
        (status = 503, description = "The label index is still being built", body = super::openapi::ErrorSchema),
    ))]
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: LinkRequest = body::json(&req, payload, &state.config).await?;
    // Taken once the body is in: clients that stall mid-body must not
    // hold the slots of the ones that are ready.
    let _permit = state.permit()?;
    let linker = match state.linker.get() {
        Some(Ok(linker)) => linker.clone(),
        Some(Err(e)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "label_index_failed",
                format!("entity linking is unavailable: the label index could not be built: {e}"),
            ))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting",
                "the label index is still being built; retry in a few seconds",
            ))
        }
    };
    let metrics = state.metrics.clone();
    let answer = web::block(move || {
        let started = std::time::Instant::now();
        let answer = link_text(
            &linker,
            &request.text,
            request.lang.as_deref(),
            request.max_facts,
        );
        crate::serving::Observer::link(&*metrics, started.elapsed());
        answer
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        LinkError::TextTooLong { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_large",
            e.to_string(),
        ),
        LinkError::Graph(g) => g.into(),
    })?;
    Ok(HttpResponse::Ok().json(answer))
}
