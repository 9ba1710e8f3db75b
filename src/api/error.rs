//! [`ApiError`]: every error the HTTP layer returns, as JSON
//! `{"error": "...", "kind": "...", "line": L, "column": C}` with one status per kind.

use crate::graph::GraphError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

/// An HTTP error: a status, a stable `kind`, a message for humans and, for
/// syntax errors, where the parser stopped.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub position: Option<crate::graph::TextPosition>,
}

impl ApiError {
    /// An error with no position.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            position: None,
        }
    }

    /// 500 `internal`: a failure of graft itself (e.g. a worker thread that panicked).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }

    /// 400 with `kind`.
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u64>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"graft\""));
        }
        response.json(ErrorBody {
            error: &self.message,
            kind: self.kind,
            line: self.position.map(|p| p.line),
            column: self.position.map(|p| p.column),
        })
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        let status = match &e {
            GraphError::SparqlSyntax { .. }
            | GraphError::RdfSyntax { .. }
            | GraphError::InvalidIri { .. }
            | GraphError::Evaluation(_) => StatusCode::BAD_REQUEST,
            GraphError::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GraphError::GraphNotFound(_) => StatusCode::NOT_FOUND,
            GraphError::Forbidden(_) => StatusCode::FORBIDDEN,
            GraphError::Timeout(_) | GraphError::Locked { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GraphError::Storage(_) | GraphError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, kind = e.kind(), "request failed");
        }
        Self {
            status,
            kind: e.kind(),
            position: e.position(),
            message: e.to_string(),
        }
    }
}
