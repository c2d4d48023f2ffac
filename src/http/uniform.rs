//! One error body for everything the router answers: the framework's own refusals (unknown
//! route, wrong method, extractor rejections, body limit) come as plain text or with no body at
//! all; this layer gives them the service's `{code, message, request_id}` like every handler
//! error. Pages (HTML) and TwiML (XML) are answers meant for people and providers, left alone.
//!
//! What it cannot reach: hyper answers a request it cannot parse before any of our code runs,
//! with a status line and no body (400 for a malformed request line or header, 414 for a URI
//! over its limit, 431 for more than 100 headers or a head over ~400 KiB), and closes the
//! connection. [`MAX_HEADER_BYTES`] and [`MAX_HEADERS`] sit below hyper's limits, so a request
//! with oversized headers that hyper still parses gets a JSON 431 here.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Total bytes of header names and values accepted (hyper's own limit is ~400 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Headers accepted per request (hyper refuses more than 100 without a body).
pub const MAX_HEADERS: usize = 64;
/// The framework's plain-text rejections are short; more is not one of them.
const MAX_REJECTION_TEXT: usize = 4 * 1024;

pub async fn uniform_errors(req: Request, next: Next) -> Response {
    if let Some(refused) = oversized_headers(req.headers()) {
        return refused;
    }
    let resp = next.run(req).await;
    if !resp.status().is_client_error() && !resp.status().is_server_error() {
        return resp;
    }
    if already_shaped(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, default) = describe(parts.status);
    let message = if text.is_empty() {
        default.to_string()
    } else {
        text
    };
    let mut out = ApiError::new(parts.status, code, message).into_response();
    // Keep what the refusal says besides its body (Allow on a 405, Retry-After, ...).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

fn oversized_headers(h: &HeaderMap) -> Option<Response> {
    let bytes: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if h.len() <= MAX_HEADERS && bytes <= MAX_HEADER_BYTES {
        return None;
    }
    Some(
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of headers are accepted"
            ),
        )
        .into_response(),
    )
}

/// JSON (our `ApiError`), an HTML page or a TwiML/XML document: already an answer in its form.
fn already_shaped(h: &HeaderMap) -> bool {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    [
        "application/json",
        "text/html",
        "text/xml",
        "application/xml",
    ]
    .iter()
    .any(|t| ct.starts_with(t))
}

/// A stable code and a default reason for a status the framework produced.
fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take this method; the Allow header lists the ones it takes",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "this Content-Type is not accepted here",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_body", "the request could not be processed"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "request headers are too large")
        }
        s if s.is_server_error() => ("internal_error", "internal error"),
        _ => ("bad_request", "the request is malformed"),
    }
}
