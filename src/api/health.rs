//! `GET /health`: liveness plus the store's generation and triple count.

use super::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use std::sync::Mutex;

/// The triple count, recounted only when the generation moved (counting is
/// O(store size); probes come far more often than writes).
#[derive(Default)]
pub struct CountCache(Mutex<Option<(u64, u64)>>);

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    generation: u64,
    triples: u64,
    /// `building`, `ready` or `failed`: entity linking answers once `ready`.
    label_index: &'static str,
    /// The store generation the label index was built from (behind
    /// `generation` for a moment after a write, until it is rebuilt).
    #[serde(skip_serializing_if = "Option::is_none")]
    label_index_generation: Option<u64>,
}

/// `{"status": "ok", "generation": N, "triples": N, "label_index": "ready"}`
/// (triples = quads in all graphs).
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\", \"generation\": N, \"triples\": N, \"label_index\": \"building\" | \"ready\" | \"failed\", \"label_index_generation\": N}`", body = Object)))]
pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let state2 = state.clone();
    let (generation, triples) = web::block(move || {
        let generation = state2.store.generation();
        let mut cache = state2.health.0.lock().unwrap_or_else(|p| p.into_inner());
        match *cache {
            Some((g, n)) if g == generation => Ok((g, n)),
            _ => {
                let n = state2.store.len()?;
                *cache = Some((generation, n));
                Ok::<_, crate::graph::GraphError>((generation, n))
            }
        }
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        generation,
        triples,
        label_index: match state.linker.get() {
            None => "building",
            Some(Ok(_)) => "ready",
            Some(Err(_)) => "failed",
        },
        label_index_generation: match state.linker.get() {
            Some(Ok(linker)) => Some(linker.indexed_generation()),
            _ => None,
        },
    }))
}
