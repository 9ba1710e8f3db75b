//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated
//! from the request and response types and the handlers' annotations
//! (utoipa), so it cannot drift from the code.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The JSON body of every error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorSchema {
    /// What went wrong, for people.
    #[schema(example = "no model called \"news\" (served: bbc)")]
    error: String,
    /// A stable name for programs.
    #[schema(example = "unknown_model")]
    kind: String,
    /// For syntax errors: where the parser stopped (1-based).
    line: Option<u64>,
    column: Option<u64>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "graft",
        description = "Text classification with a BERT model that reads a knowledge graph: SPARQL 1.1 endpoints, entity linking, embeddings, classification.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::classify::post,
        super::models::list,
        super::models::reload,
        super::link::post,
        super::embed::post,
        super::sparql::get,
        super::sparql::post,
        super::graph_store::get,
        super::graph_store::head,
        super::graph_store::put,
        super::graph_store::post,
        super::graph_store::delete,
        super::health::get,
        super::metrics::get,
        get,
        super::console::get,
    ),
    components(schemas(ErrorSchema)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn get() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
