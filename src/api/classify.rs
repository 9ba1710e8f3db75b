//! `POST /v1/classify`: labels, scores and the graph knowledge used, for one
//! text or a batch, from the served classifiers (see [`crate::serving`]).

use super::{body, ApiError, AppState};
use crate::serving::{Answer, ClassifyOptions, ServeError, MAX_TEXTS};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The request: `text` or `texts` (not both), and options.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// One text; the answer is one [`Answer`].
    #[schema(example = "Deutsche Bank shares fell after the bank reported a loss.")]
    pub text: Option<String>,
    /// 1 to 64 texts; the answer is `{"results": [Answer, ...]}` in the same order.
    pub texts: Option<Vec<String>>,
    /// The model's name (see `GET /v1/models`); the default model when absent.
    #[schema(example = "bbc")]
    pub model: Option<String>,
    /// Ranking entries returned (default 5).
    #[serde(default = "default_top_k")]
    #[schema(example = 5, minimum = 1)]
    pub top_k: usize,
    /// Below this probability the label is the server's fallback label
    /// (`--fallback-label`, default `out_of_scope`) and `fallback` is true.
    /// For multi-label models it is also the cut of `labels` (instead of the
    /// model's own threshold).
    #[schema(example = 0.5, minimum = 0.0, maximum = 1.0)]
    pub threshold: Option<f32>,
    /// Return the linked entities and the injected facts (default true).
    #[serde(default = "default_true")]
    pub explain: bool,
    /// Link entities and inject their facts (default true); false runs the
    /// same model without facts, to compare.
    #[serde(default = "default_true")]
    pub use_graph: bool,
    /// Language of the entity and fact labels (`en`, `zh`, ...); guessed from the script when absent.
    pub lang: Option<String>,
}

fn default_top_k() -> usize {
    5
}
fn default_true() -> bool {
    true
}

/// The answer of `POST /v1/classify`: one [`Answer`] for `text`, a
/// [`BatchAnswer`] for `texts`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ClassifyResponse {
    One(Box<Answer>),
    Batch(BatchAnswer),
}

/// The answer to a `texts` request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    /// One answer per text, in order.
    pub results: Vec<Answer>,
}

/// `POST /v1/classify`.
#[utoipa::path(
    post,
    path = "/v1/classify", operation_id = "classify",
    tag = "classification",
    request_body = ClassifyRequest,
    responses(
        (status = 200, description = "One `Answer` for `text`; `{\"results\": [Answer]}` for `texts`", body = ClassifyResponse),
        (status = 400, description = "Malformed JSON, a wrong type, an empty text or `texts`, both or neither of `text`/`texts`, invalid UTF-8", body = super::openapi::ErrorSchema),
        (status = 404, description = "Unknown model", body = super::openapi::ErrorSchema),
        (status = 408, description = "The body did not arrive in time", body = super::openapi::ErrorSchema),
        (status = 413, description = "More than 64 texts, a text over 100,000 characters, or a body over the limit", body = super::openapi::ErrorSchema),
        (status = 415, description = "Not application/json", body = super::openapi::ErrorSchema),
        (status = 429, description = "Too many requests in flight", body = super::openapi::ErrorSchema),
        (status = 503, description = "No model served, or the label index is still being built", body = super::openapi::ErrorSchema),
    )
)]
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: ClassifyRequest = body::json(&req, payload, &state.config).await?;
    // Taken once the body is in: clients that stall mid-body must not
    // hold the slots of the ones that are ready.
    let _permit = state.permit()?;
    let (texts, single) = match (request.text, request.texts) {
        (Some(text), None) => (vec![text], true),
        (None, Some(texts)) => (texts, false),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_request",
                "give `text` or `texts`, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "bad_request",
                "the request needs `text` (one text) or `texts` (a list)",
            ))
        }
    };
    let options = ClassifyOptions {
        top_k: request.top_k,
        threshold: request.threshold,
        explain: request.explain,
        use_graph: request.use_graph,
        lang: request.lang,
    };
    let work = state
        .classify
        .classify(request.model.as_deref(), texts, &options);
    let mut answers = tokio::select! {
        answers = work => answers.map_err(serve_error)?,
        () = super::disconnect::gone(&req) => {
            tracing::info!("client disconnected: classification abandoned");
            return Err(ApiError::new(
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "client_closed_request",
                "the client closed the connection before the answer was ready",
            ));
        }
    };
    Ok(HttpResponse::Ok().json(if single {
        ClassifyResponse::One(Box::new(answers.remove(0)))
    } else {
        ClassifyResponse::Batch(BatchAnswer { results: answers })
    }))
}

/// Maps a serving error to its one status.
pub fn serve_error(e: ServeError) -> ApiError {
    let status = match &e {
        ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ServeError::TooManyTexts { .. } | ServeError::TextTooLong { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        ServeError::UnknownModel { .. } => StatusCode::NOT_FOUND,
        ServeError::NoModel | ServeError::Starting | ServeError::LinkingUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ServeError::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ServeError::Model { .. } | ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.kind(), e.to_string())
}

const _: () = assert!(MAX_TEXTS == 64, "the OpenAPI text above says 64");
