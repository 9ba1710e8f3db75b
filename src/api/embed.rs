//! `POST /v1/embed`: sentence vectors from the server's encoder.

use super::{body, ApiError, AppState};
use crate::encoder::{EncoderError, Pooling};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Most texts one request may carry; more gets 413 `too_many_texts`.
pub const MAX_TEXTS: usize = 256;
/// Longest text, in Unicode scalar values; longer gets 413 `text_too_large`
/// (the encoder reads only its first 512 tokens, but tokenizing a huge
/// text still costs seconds).
pub const MAX_TEXT_CHARS: usize = crate::serving::MAX_TEXT_CHARS;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// The texts, 1 to [`MAX_TEXTS`], none empty. Longer than the model's
    /// positions: cut, and listed in `truncated`.
    pub texts: Vec<String>,
    /// `mean` (default), `cls` or `pooler`.
    #[serde(default = "default_pooling")]
    #[schema(value_type = String, example = "mean")]
    pub pooling: Pooling,
    /// L2-normalise each vector (default true).
    #[serde(default = "default_true")]
    pub normalize: bool,
}

fn default_pooling() -> Pooling {
    Pooling::Mean
}
fn default_true() -> bool {
    true
}

/// The answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbedResponse {
    /// One vector per text, in order: `[texts, dim]`.
    pub embeddings: Vec<Vec<f32>>,
    /// The vector width.
    pub dim: usize,
    /// The encoder's folder name.
    pub model: String,
    /// Tokens each text used, special tokens included.
    pub tokens: Vec<usize>,
    /// Indexes of the texts cut to the model's maximum length.
    pub truncated: Vec<usize>,
}

/// `POST /v1/embed` with `{"texts": [...], "pooling": "mean", "normalize": true}`.
#[utoipa::path(post, path = "/v1/embed", operation_id = "embed", tag = "embeddings",
    request_body = EmbedRequest,
    responses(
        (status = 200, description = "One vector per text", body = EmbedResponse),
        (status = 400, description = "Malformed JSON, empty list or text", body = super::openapi::ErrorSchema),
        (status = 408, description = "The body did not arrive in time", body = super::openapi::ErrorSchema),
        (status = 413, description = "More than 256 texts, or a text over 100,000 characters", body = super::openapi::ErrorSchema),
        (status = 415, description = "Not application/json", body = super::openapi::ErrorSchema),
        (status = 429, description = "Too many requests in flight", body = super::openapi::ErrorSchema),
        (status = 503, description = "No encoder (`--encoder`)", body = super::openapi::ErrorSchema),
    ))]
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request: EmbedRequest = body::json(&req, payload, &state.config).await?;
    // Taken once the body is in: clients that stall mid-body must not
    // hold the slots of the ones that are ready.
    let _permit = state.permit()?;
    let Some(encoder) = state.encoder.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_encoder",
            "this server has no encoder: start it with --encoder DIR",
        ));
    };
    if request.texts.len() > MAX_TEXTS {
        return Err(encoder_error(EncoderError::TooManyTexts {
            count: request.texts.len(),
            limit: MAX_TEXTS,
        }));
    }
    if let Some((index, chars)) = request
        .texts
        .iter()
        .map(|t| t.chars().count())
        .enumerate()
        .find(|&(_, n)| n > MAX_TEXT_CHARS)
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_large",
            format!("text {index} has {chars} characters: the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    let model = encoder
        .dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = web::block(move || {
        let refs: Vec<&str> = request.texts.iter().map(String::as_str).collect();
        encoder.embed(&refs, request.pooling, request.normalize)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(encoder_error)?;
    Ok(HttpResponse::Ok().json(EmbedResponse {
        truncated: out
            .truncated
            .iter()
            .enumerate()
            .filter_map(|(i, &t)| t.then_some(i))
            .collect(),
        embeddings: out.vectors,
        dim: out.dim,
        model,
        tokens: out.tokens,
    }))
}

/// Maps an encoder error to its status: 413 for too many texts, 400 for
/// other input errors, 500 for the rest.
pub fn encoder_error(e: EncoderError) -> ApiError {
    let status = match &e {
        EncoderError::TooManyTexts { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        e if e.is_client_error() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.kind(), e.to_string())
}
