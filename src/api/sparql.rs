//! `/sparql`: the SPARQL 1.1 Protocol (W3C Recommendation, 2013), query via
//! GET and POST (direct `application/sparql-query` or form), update via POST
//! (direct `application/sparql-update` or form).

use super::{auth, body, negotiate, stream, ApiError, AppState};
use crate::graph::{GraphError, QueryRequest, UpdateRequest, WriteCancellation};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// `GET /sparql?query=...&default-graph-uri=...&named-graph-uri=...`
#[utoipa::path(get, path = "/sparql", operation_id = "sparql_get", tag = "sparql",
    params(
        ("query" = String, Query, description = "A SPARQL 1.1 query"),
        ("default-graph-uri" = Option<Vec<String>>, Query, description = "Graphs whose union is the default graph"),
        ("named-graph-uri" = Option<Vec<String>>, Query, description = "The named graphs the query sees"),
    ),
    responses(
        (status = 200, description = "Results by `Accept`: SPARQL JSON, XML, CSV, TSV; Turtle, N-Triples, N-Quads, TriG, JSON-LD, RDF/XML for graphs", content((String = "application/sparql-results+json"), (String = "application/sparql-results+xml"), (String = "text/csv"), (String = "text/tab-separated-values"), (String = "text/turtle"), (String = "application/n-triples"))),
        (status = 400, description = "Syntax error (with line and column)", body = super::openapi::ErrorSchema),
        (status = 403, description = "SERVICE without --allow-federation", body = super::openapi::ErrorSchema),
        (status = 406, description = "No acceptable format", body = super::openapi::ErrorSchema),
        (status = 503, description = "Query timeout", body = super::openapi::ErrorSchema),
    ))]
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let params = body::form_pairs(req.query_string().as_bytes());
    let Some(query) = body::single(&params, "query")? else {
        if body::single(&params, "update")?.is_some() {
            return Err(ApiError::bad_request(
                "bad_request",
                "SPARQL updates must be sent with POST (SPARQL 1.1 Protocol, 2.2)",
            ));
        }
        return Err(ApiError::bad_request(
            "missing_query",
            "no `query` parameter: GET /sparql?query=...",
        ));
    };
    run_query(&req, &state, query_request(query, &params)).await
}

/// `POST /sparql`: a query or an update, by content type.
#[utoipa::path(post, path = "/sparql", operation_id = "sparql_post", tag = "sparql",
    request_body(description = "A query (`application/sparql-query`, or form `query=`) or an update (`application/sparql-update`, or form `update=`; needs the bearer token)", content((String = "application/sparql-query"), (String = "application/sparql-update"), (String = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Query results, negotiated as for GET"),
        (status = 204, description = "Update committed"),
        (status = 400, description = "Syntax error (with line and column)", body = super::openapi::ErrorSchema),
        (status = 401, description = "Update without a valid bearer token", body = super::openapi::ErrorSchema),
        (status = 403, description = "Writes disabled or read-only; federation refused", body = super::openapi::ErrorSchema),
        (status = 413, description = "Body over the limit", body = super::openapi::ErrorSchema),
        (status = 415, description = "Unsupported Content-Type", body = super::openapi::ErrorSchema),
        (status = 503, description = "Timeout (a timed-out update is not committed)", body = super::openapi::ErrorSchema),
    ),
    security((), ("bearer" = [])))]
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let media = body::media_type(&req)?;
    let url_params = body::form_pairs(req.query_string().as_bytes());
    match media.as_str() {
        "application/sparql-query" => {
            let bytes = body::read(&req, payload, &state.config).await?;
            let query = body::utf8(&bytes)?.to_owned();
            run_query(&req, &state, query_request(query, &url_params)).await
        }
        "application/sparql-update" => {
            auth::authorize_write(&req, &state)?;
            let bytes = body::read(&req, payload, &state.config).await?;
            let update = body::utf8(&bytes)?.to_owned();
            run_update(&state, update_request(update, &url_params)).await
        }
        "application/x-www-form-urlencoded" => {
            let bytes = body::read(&req, payload, &state.config).await?;
            body::utf8(&bytes)?;
            let form = body::form_pairs(&bytes);
            match (
                body::single(&form, "query")?,
                body::single(&form, "update")?,
            ) {
                (Some(query), None) => run_query(&req, &state, query_request(query, &form)).await,
                (None, Some(update)) => {
                    auth::authorize_write(&req, &state)?;
                    run_update(&state, update_request(update, &form)).await
                }
                (Some(_), Some(_)) => Err(ApiError::bad_request(
                    "bad_request",
                    "a request carries either `query` or `update`, not both",
                )),
                (None, None) => Err(ApiError::bad_request(
                    "missing_query",
                    "the form has neither a `query` nor an `update` field",
                )),
            }
        }
        other => Err(body::unsupported(&format!(
            "Content-Type {other} is not a SPARQL request: use application/sparql-query, \
             application/sparql-update or application/x-www-form-urlencoded"
        ))),
    }
}

fn query_request(query: String, params: &[(String, String)]) -> QueryRequest {
    QueryRequest {
        query,
        default_graph_uris: body::values(params, "default-graph-uri"),
        named_graph_uris: body::values(params, "named-graph-uri"),
        base_iri: None,
    }
}

fn update_request(update: String, params: &[(String, String)]) -> UpdateRequest {
    UpdateRequest {
        update,
        using_graph_uris: body::values(params, "using-graph-uri"),
        using_named_graph_uris: body::values(params, "using-named-graph-uri"),
        base_iri: None,
    }
}

async fn run_query(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    request: QueryRequest,
) -> Result<HttpResponse, ApiError> {
    let prepared = state
        .store
        .prepare_query(&request, &state.config.sparql_options())?;
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = negotiate::query_result_format(accept, prepared.form())?;
    let token = prepared.cancellation_token();
    let store = state.store.clone();
    stream::respond(
        format.media_type(),
        state.config.query_timeout,
        move || token.cancel(),
        move |writer| prepared.execute_to(&store, format, writer),
    )
    .await
}

async fn run_update(
    state: &web::Data<AppState>,
    request: UpdateRequest,
) -> Result<HttpResponse, ApiError> {
    let options = state.config.sparql_options();
    let timeout = state.config.query_timeout;
    let cancellation = Arc::new(WriteCancellation::new());
    let store = state.store.clone();
    let worker = {
        let cancellation = cancellation.clone();
        web::block(move || store.update(&request, &options, &cancellation))
    };
    tokio::pin!(worker);
    let result = tokio::select! {
        r = &mut worker => r,
        () = tokio::time::sleep(timeout) => {
            cancellation.cancel();
            tokio::select! {
                r = &mut worker => r,
                () = tokio::time::sleep(UPDATE_GRACE) => {
                    if cancellation.abandon() {
                        // Never committed: the worker drops its transaction when it notices.
                        return Err(GraphError::Timeout(timeout).into());
                    }
                    // The commit had begun before the deadline passed: report its outcome.
                    worker.await
                }
            }
        }
    };
    result.map_err(ApiError::internal)??;
    Ok(HttpResponse::NoContent().finish())
}

/// How long a cancelled update may take to stop before the client is told 503.
const UPDATE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
