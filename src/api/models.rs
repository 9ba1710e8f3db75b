//! `GET /v1/models` (what is served) and `POST /v1/models/{name}/reload`
//! (swap in a retrained folder without dropping requests).

use super::classify::serve_error;
use super::{auth, ApiError, AppState};
use crate::classifier::model::EncoderCard;
use crate::fusion::{FusionMode, Truncation};
use crate::serving::ServedModel;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// One served model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The name requests choose it by.
    #[schema(example = "bbc")]
    pub name: String,
    /// Its folder on the server.
    pub dir: String,
    /// 16 hex digits over the folder's files; changes when it is retrained.
    pub fingerprint: String,
    /// The labels, in the head's order.
    pub labels: Vec<String>,
    /// Sigmoid per label (several labels per text) rather than softmax.
    pub multi_label: bool,
    /// How facts enter the input: `kbert`, `append` or `none`.
    #[schema(value_type = String, example = "kbert")]
    pub fusion: FusionMode,
    /// Longest input in tokens, facts included.
    pub max_tokens: usize,
    /// Which part of a longer text is kept: head, tail or head+tail.
    #[schema(value_type = String, example = "head")]
    pub truncation: Truncation,
    /// The encoder it was fine-tuned from.
    #[schema(value_type = Object)]
    pub encoder: EncoderCard,
    /// The graph it was trained with (generation, fact predicates, coverage), if any.
    #[schema(value_type = Object)]
    pub graph: serde_json::Value,
    /// Dev and test metrics recorded at training time.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    /// When this copy was loaded, seconds since the Unix epoch.
    pub loaded_at: u64,
}

/// The answer of `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// The model used when a request names none.
    pub default: Option<String>,
    /// Every served model, default first.
    pub models: Vec<ModelInfo>,
}

/// The answer of a reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    /// The model's name.
    pub name: String,
    /// The fingerprint of the copy now serving.
    pub fingerprint: String,
    /// The fingerprint of the copy it replaced (equal when the folder did not change).
    pub previous_fingerprint: String,
}

fn info(dir: &std::path::Path, m: &ServedModel) -> ModelInfo {
    let card = &m.classifier.card;
    ModelInfo {
        name: m.name.clone(),
        dir: dir.display().to_string(),
        fingerprint: m.fingerprint.clone(),
        labels: card.labels.clone(),
        multi_label: card.multi_label,
        fusion: card.fusion,
        max_tokens: card.fusion_limits.max_tokens,
        truncation: card.fusion_limits.truncation,
        encoder: card.encoder.clone(),
        graph: serde_json::to_value(&card.graph).unwrap_or_default(),
        metrics: card.metrics.clone(),
        loaded_at: m
            .loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// `GET /v1/models`.
#[utoipa::path(get, path = "/v1/models", operation_id = "list_models", tag = "classification",
    responses((status = 200, description = "The served models, default first", body = ModelList)))]
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let models = state.classify.models.all();
    HttpResponse::Ok().json(ModelList {
        default: models.first().map(|(_, m)| m.name.clone()),
        models: models.iter().map(|(dir, m)| info(dir, m)).collect(),
    })
}

/// `POST /v1/models/{name}/reload`: loads the model's folder again and swaps
/// it in; requests running finish on the old copy. Needs the bearer token.
#[utoipa::path(post, path = "/v1/models/{name}/reload", operation_id = "reload_model", tag = "classification",
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "Reloaded", body = Reloaded),
        (status = 401, description = "Missing or wrong bearer token", body = super::openapi::ErrorSchema),
        (status = 403, description = "No token configured", body = super::openapi::ErrorSchema),
        (status = 404, description = "Unknown model", body = super::openapi::ErrorSchema),
        (status = 500, description = "The folder no longer loads; the old copy keeps serving", body = super::openapi::ErrorSchema),
    ),
    security(("bearer" = [])))]
pub async fn reload(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth::authorize_token(&req, &state)?;
    let name = path.into_inner();
    let (old, new) = reload_model(&state, name.clone()).await?;
    Ok(HttpResponse::Ok().json(Reloaded {
        name,
        fingerprint: new.fingerprint.clone(),
        previous_fingerprint: old.fingerprint.clone(),
    }))
}

/// Reloads `name` off the runtime, counts it, and purges the cache entries
/// of the replaced copy in the background.
pub async fn reload_model(
    state: &web::Data<AppState>,
    name: String,
) -> Result<(Arc<ServedModel>, Arc<ServedModel>), ApiError> {
    let service = state.classify.clone();
    let n = name.clone();
    let result = web::block(move || service.models.reload(&n))
        .await
        .map_err(ApiError::internal)?;
    // Only served names get a metric: a request cannot mint label values.
    if !matches!(result, Err(crate::serving::ServeError::UnknownModel { .. })) {
        state.metrics.reload(&name, result.is_ok());
    }
    let (old, new) = result.map_err(serve_error)?;
    tracing::info!(model = %name, fingerprint = %new.fingerprint, previous = %old.fingerprint, "model reloaded");
    if old.fingerprint != new.fingerprint {
        let service = state.classify.clone();
        std::thread::spawn(move || service.purge_cache());
    }
    Ok((old, new))
}
