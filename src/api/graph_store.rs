//! `/store`: the SPARQL 1.1 Graph Store HTTP Protocol (W3C Recommendation,
//! 2013). `?graph=IRI` names a graph, `?default` the default graph; with
//! neither, GET returns the whole dataset and POST adds a dataset document
//! (or, for a triple format, creates a new graph and answers 201 with its IRI,
//! `ORIGIN/store/graphs/ID`, which is also served directly at that URL).
//! `ORIGIN` is `--public-url` when set (behind a proxy), else the request's
//! scheme and `Host`.

use super::{auth, body, negotiate, stream, ApiError, AppState};
use crate::graph::format::RDF_FORMATS;
use crate::graph::{parse_iri, GraphTarget, RdfFormat};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// What the query string addresses.
enum Addressed {
    Graph(GraphTarget),
    Dataset,
}

/// Where clients reach graft: `ServeConfig::public_url` when set, else the
/// scheme and host of the request (its `Host`, or a `Forwarded` /
/// `X-Forwarded-Host` header, as actix reads them). No trailing slash.
fn origin(req: &HttpRequest, config: &super::ServeConfig) -> String {
    match &config.public_url {
        Some(url) => url.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

fn addressed(req: &HttpRequest, config: &super::ServeConfig) -> Result<Addressed, ApiError> {
    if req.match_info().get("id").is_some() {
        // Direct identification (Graph Store Protocol 4.1): the request URL is
        // the graph's IRI, as for the graphs POST /store creates.
        let iri = format!("{}{}", origin(req, config), req.path());
        return Ok(Addressed::Graph(GraphTarget::Named(parse_iri(&iri)?)));
    }
    let params = body::form_pairs(req.query_string().as_bytes());
    let graph = body::single(&params, "graph")?;
    let default = params.iter().any(|(k, _)| k == "default");
    match (graph, default) {
        (Some(_), true) => Err(ApiError::bad_request(
            "bad_request",
            "give either ?graph=IRI or ?default, not both",
        )),
        (Some(iri), false) => Ok(Addressed::Graph(GraphTarget::Named(parse_iri(&iri)?))),
        (None, true) => Ok(Addressed::Graph(GraphTarget::Default)),
        (None, false) => Ok(Addressed::Dataset),
    }
}

fn accept(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
}

/// The RDF format of a request body from its `Content-Type`.
fn body_format(req: &HttpRequest) -> Result<RdfFormat, ApiError> {
    let media = body::media_type(req)?;
    let format = match media.as_str() {
        "application/xml" | "text/xml" => Some(RdfFormat::RdfXml),
        "application/json" => Some(RDF_FORMATS[4]),
        m => RdfFormat::from_media_type(m),
    };
    format.ok_or_else(|| {
        body::unsupported(&format!(
            "Content-Type {media} is not an RDF format graft reads: use text/turtle, \
             application/n-triples, application/n-quads, application/trig, \
             application/ld+json or application/rdf+xml"
        ))
    })
}

/// `GET /store?graph=IRI|default`: the graph in the negotiated format.
#[utoipa::path(get, path = "/store", operation_id = "graph_store_get", tag = "graph store",
    params(("graph" = Option<String>, Query, description = "The graph's IRI"), ("default" = Option<String>, Query, description = "The default graph (no value)")),
    responses(
        (status = 200, description = "The graph (or the whole dataset without parameters) in the negotiated RDF format", content((String = "text/turtle"), (String = "application/n-triples"), (String = "application/n-quads"), (String = "application/trig"), (String = "application/ld+json"), (String = "application/rdf+xml"))),
        (status = 404, description = "No such graph", body = super::openapi::ErrorSchema),
        (status = 406, description = "No acceptable format", body = super::openapi::ErrorSchema),
    ))]
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let timeout = state.config.query_timeout;
    match addressed(&req, &state.config)? {
        Addressed::Graph(target) => {
            let format = negotiate::rdf_format(accept(&req), &RDF_FORMATS)?;
            if !state.store.graph_exists(&target)? {
                return Err(crate::graph::GraphError::GraphNotFound(target.to_string()).into());
            }
            stream::respond(
                format.media_type(),
                timeout,
                || {},
                move |w| store.read_graph(&target, format, w),
            )
            .await
        }
        Addressed::Dataset => {
            let quad_formats: Vec<RdfFormat> = RDF_FORMATS
                .into_iter()
                .filter(|f| f.supports_datasets())
                .collect();
            let format = negotiate::rdf_format(accept(&req), &quad_formats)?;
            stream::respond(
                format.media_type(),
                timeout,
                || {},
                move |w| store.dump_dataset(format, w),
            )
            .await
        }
    }
}

/// `HEAD /store?...`: as GET without the body (200, 404, 406).
#[utoipa::path(head, path = "/store", operation_id = "graph_store_head", tag = "graph store",
    params(("graph" = Option<String>, Query, description = "The graph's IRI"), ("default" = Option<String>, Query, description = "The default graph")),
    responses((status = 200, description = "The graph exists"), (status = 404, description = "No such graph"), (status = 406, description = "No acceptable format")))]
pub async fn head(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (format, exists) = match addressed(&req, &state.config)? {
        Addressed::Graph(target) => (
            negotiate::rdf_format(accept(&req), &RDF_FORMATS)?,
            state.store.graph_exists(&target)?,
        ),
        Addressed::Dataset => {
            let quad_formats: Vec<RdfFormat> = RDF_FORMATS
                .into_iter()
                .filter(|f| f.supports_datasets())
                .collect();
            (negotiate::rdf_format(accept(&req), &quad_formats)?, true)
        }
    };
    if exists {
        Ok(HttpResponse::Ok()
            .content_type(format.media_type())
            .finish())
    } else {
        Ok(HttpResponse::NotFound().finish())
    }
}

/// `PUT /store?graph=IRI|default`: replace; 201 when the graph is new, else 204.
#[utoipa::path(put, path = "/store", operation_id = "graph_store_put", tag = "graph store",
    params(("graph" = Option<String>, Query, description = "The graph's IRI"), ("default" = Option<String>, Query, description = "The default graph")),
    request_body(description = "An RDF document", content((String = "text/turtle"), (String = "application/n-triples"), (String = "application/rdf+xml"), (String = "application/ld+json"))),
    responses(
        (status = 201, description = "Created"), (status = 204, description = "Replaced"),
        (status = 400, description = "Malformed RDF (with line and column)", body = super::openapi::ErrorSchema),
        (status = 401, description = "No valid bearer token", body = super::openapi::ErrorSchema), (status = 403, description = "Writes disabled", body = super::openapi::ErrorSchema),
        (status = 413, description = "Body over the limit", body = super::openapi::ErrorSchema), (status = 415, description = "Unsupported Content-Type", body = super::openapi::ErrorSchema),
    ),
    security(("bearer" = [])))]
pub async fn put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth::authorize_write(&req, &state)?;
    let Addressed::Graph(target) = addressed(&req, &state.config)? else {
        return Err(ApiError::bad_request(
            "bad_request",
            "PUT needs ?graph=IRI or ?default",
        ));
    };
    let format = body_format(&req)?;
    let bytes = body::read(&req, payload, &state.config).await?;
    let base = base_iri(&req, &state.config, &target);
    let store = state.store.clone();
    let created = web::block(move || store.replace_graph(&target, format, Some(&base), &bytes))
        .await
        .map_err(ApiError::internal)??;
    Ok(created_or_no_content(created))
}

/// `POST /store?graph=IRI|default`: add; 201 when the graph is new, else 204.
/// Without a graph parameter: a dataset document is added (204), a graph
/// document becomes a new graph (201, `Location` = its IRI).
#[utoipa::path(post, path = "/store", operation_id = "graph_store_post", tag = "graph store",
    params(("graph" = Option<String>, Query, description = "The graph's IRI (absent: a new server-named graph, or a dataset document)"), ("default" = Option<String>, Query, description = "The default graph")),
    request_body(description = "An RDF document to add", content((String = "text/turtle"), (String = "application/n-triples"), (String = "application/n-quads"), (String = "application/trig"), (String = "application/rdf+xml"), (String = "application/ld+json"))),
    responses(
        (status = 201, description = "A new graph; `Location` is its URL"), (status = 204, description = "Added"),
        (status = 400, description = "Malformed RDF", body = super::openapi::ErrorSchema),
        (status = 401, description = "No valid bearer token", body = super::openapi::ErrorSchema), (status = 403, description = "Writes disabled", body = super::openapi::ErrorSchema),
        (status = 413, description = "Body over the limit", body = super::openapi::ErrorSchema), (status = 415, description = "Unsupported Content-Type", body = super::openapi::ErrorSchema),
    ),
    security(("bearer" = [])))]
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth::authorize_write(&req, &state)?;
    let addressed = addressed(&req, &state.config)?;
    let format = body_format(&req)?;
    let bytes = body::read(&req, payload, &state.config).await?;
    let store = state.store.clone();
    match addressed {
        Addressed::Graph(target) => {
            let base = base_iri(&req, &state.config, &target);
            let created =
                web::block(move || store.add_to_graph(&target, format, Some(&base), &bytes))
                    .await
                    .map_err(ApiError::internal)??;
            Ok(created_or_no_content(created))
        }
        Addressed::Dataset if format.supports_datasets() => {
            web::block(move || store.add_dataset(format, None, &bytes))
                .await
                .map_err(ApiError::internal)??;
            Ok(HttpResponse::NoContent().finish())
        }
        Addressed::Dataset => {
            // Graph Store Protocol 5.5: the server names the new graph.
            let iri = format!(
                "{}/store/graphs/{}",
                origin(&req, &state.config),
                new_graph_id()
            );
            let target = GraphTarget::Named(parse_iri(&iri)?);
            let base = iri.clone();
            web::block(move || store.add_to_graph(&target, format, Some(&base), &bytes))
                .await
                .map_err(ApiError::internal)??;
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, iri))
                .finish())
        }
    }
}

/// `DELETE /store?graph=IRI|default`: 204, or 404 for an absent graph.
#[utoipa::path(delete, path = "/store", operation_id = "graph_store_delete", tag = "graph store",
    params(("graph" = Option<String>, Query, description = "The graph's IRI"), ("default" = Option<String>, Query, description = "The default graph")),
    responses(
        (status = 204, description = "Deleted"), (status = 404, description = "No such graph", body = super::openapi::ErrorSchema),
        (status = 401, description = "No valid bearer token", body = super::openapi::ErrorSchema), (status = 403, description = "Writes disabled", body = super::openapi::ErrorSchema),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth::authorize_write(&req, &state)?;
    let Addressed::Graph(target) = addressed(&req, &state.config)? else {
        return Err(ApiError::bad_request(
            "bad_request",
            "DELETE needs ?graph=IRI or ?default (graft does not delete the whole dataset over HTTP)",
        ));
    };
    let store = state.store.clone();
    web::block(move || store.delete_graph(&target))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::NoContent().finish())
}

fn created_or_no_content(created: bool) -> HttpResponse {
    if created {
        HttpResponse::Created().finish()
    } else {
        HttpResponse::NoContent().finish()
    }
}

/// Relative IRIs in a body resolve against the graph's IRI (or the request URL).
fn base_iri(req: &HttpRequest, config: &super::ServeConfig, target: &GraphTarget) -> String {
    match target {
        GraphTarget::Named(n) => n.as_str().to_owned(),
        GraphTarget::Default => format!("{}/store", origin(req, config)),
    }
}

/// A fresh graph id: nanoseconds since the epoch plus a process-wide counter.
fn new_graph_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
