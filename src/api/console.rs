//! `GET /`: the web console, one self-contained HTML page compiled into the
//! binary (no CDN, no other file): classify a text and see the label, the
//! score bars, the linked entities in the text and the injected facts; run
//! a SPARQL query and see the table.

use actix_web::http::header;
use actix_web::HttpResponse;

const PAGE: &str = include_str!("console/index.html");

/// `GET /`.
#[utoipa::path(get, path = "/", operation_id = "console", tag = "operations",
    responses((status = 200, description = "The web console", content_type = "text/html")))]
pub async fn get() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // Everything is inline; nothing may be loaded from elsewhere.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
        ))
        .body(PAGE)
}
