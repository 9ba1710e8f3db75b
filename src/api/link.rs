//! `POST /v1/link`: entity linking and the facts of the linked entities.

use super::{body, ApiError, AppState};
use crate::knowledge::link_text;
use crate::link::LinkError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// The request body.
#[derive(Debug, Deserialize)]
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
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: LinkRequest = body::json(&req, payload, state.config.max_body_bytes).await?;
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
    let answer = web::block(move || {
        link_text(
            &linker,
            &request.text,
            request.lang.as_deref(),
            request.max_facts,
        )
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
