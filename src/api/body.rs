//! Request bodies: read with a size limit (413 before reading when
//! `Content-Length` already says too much), and the `Content-Type` they claim.

use super::ApiError;
use actix_web::http::{header, StatusCode};
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::HttpRequest;
use futures_util::StreamExt;

/// Reads the whole body, refusing more than `config.max_body_bytes` and
/// waiting at most `config.body_timeout` for it (a client that stalls
/// mid-body would otherwise hold its connection and memory forever).
///
/// # Errors
/// 413 `payload_too_large`; 408 `request_timeout`; 400 `bad_payload` when
/// the connection fails mid-body.
pub async fn read(
    req: &HttpRequest,
    payload: Payload,
    config: &super::ServeConfig,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(
        config.body_timeout,
        read_all(req, payload, config.max_body_bytes),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s (--body-timeout-s)",
                config.body_timeout.as_secs_f64()
            ),
        )
    })?
}

async fn read_all(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // Reserve what was declared only up to 1 MiB: a client that declares
    // 128 MiB and stalls must not pin that much memory.
    let mut body = BytesMut::with_capacity(declared.map_or(8 << 10, |n| n.min(1 << 20) as usize));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "bad_payload",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The media type of the body (lower case, without parameters), refusing a
/// charset other than UTF-8.
///
/// # Errors
/// 415 `unsupported_media_type` when the header is missing, malformed, or
/// names another charset.
pub fn media_type(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unsupported("the request has no Content-Type header"))?;
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !media.contains('/') {
        return Err(unsupported(&format!("malformed Content-Type {value:?}")));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            if k.trim().eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8") {
                return Err(unsupported(&format!(
                    "charset {v} is not supported: send UTF-8"
                )));
            }
        }
    }
    Ok(media)
}

/// 415 with `message`.
pub fn unsupported(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        message,
    )
}

/// The body as UTF-8 text.
///
/// # Errors
/// 400 `invalid_utf8` with the byte offset of the first bad sequence.
pub fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_utf8",
            format!(
                "the request body is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Parameters of a query string or an `application/x-www-form-urlencoded`
/// body, in order, repeated keys kept.
pub fn form_pairs(encoded: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(encoded).into_owned().collect()
}

/// All values of `key`.
pub fn values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The single value of `key`.
///
/// # Errors
/// 400 `bad_request` when `key` is given more than once.
pub fn single(pairs: &[(String, String)], key: &str) -> Result<Option<String>, ApiError> {
    let mut found = values(pairs, key);
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(ApiError::bad_request(
            "bad_request",
            format!("parameter `{key}` given more than once"),
        )),
    }
}

/// Reads a JSON request body into `T`: 415 unless `Content-Type:
/// application/json`, then as [`read`] (413, 408), 400 `invalid_utf8`,
/// 400 `bad_json` for malformed JSON or a wrong shape.
pub async fn json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
    config: &super::ServeConfig,
) -> Result<T, ApiError> {
    let media = media_type(req)?;
    if media != "application/json" {
        return Err(unsupported(&format!(
            "Content-Type {media}: send application/json"
        )));
    }
    let bytes = read(req, payload, config).await?;
    utf8(&bytes)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("bad_json", format!("invalid request body: {e}")))
}
