//! Who may write: `Authorization: Bearer <token>` when a token is configured;
//! no write at all without one, or with `--read-only`.

use super::{ApiError, AppState};
use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;

/// Checks that `req` may write to the store.
///
/// # Errors
/// 403 `read_only` with `--read-only`; 403 `writes_disabled` when no token is
/// configured; 401 `unauthorized` for a missing or wrong bearer token.
pub fn authorize_write(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if state.config.read_only {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this server is read-only (--read-only): writes are refused",
        ));
    }
    authorize_token(req, state)
}

/// Checks that `req` carries the configured bearer token (writes to the
/// store, model reloads). `--read-only` does not apply: it is about the store.
///
/// # Errors
/// 403 `writes_disabled` when no token is configured; 401 `unauthorized`
/// for a missing or wrong bearer token.
pub fn authorize_token(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = &state.config.auth_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "writes_disabled",
            "writes and reloads are disabled: no auth token is configured (start graft with --auth-token-file or GRAFT_AUTH_TOKEN)",
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is wrong",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "writes need an `Authorization: Bearer <token>` header",
        )),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secreT", b"secret"));
        assert!(!super::constant_time_eq(b"secret1", b"secret"));
        assert!(!super::constant_time_eq(b"", b"secret"));
    }
}
