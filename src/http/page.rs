//! What every HTML page the service serves (the short-link pages, the console) carries: a CSP
//! that lets only its own stylesheet apply, and headers that keep it out of frames, caches and
//! search engines.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::Markup;
use sha2::{Digest, Sha256};

use super::lang::Lang;

/// `default-src 'none'`: nothing loads, nothing runs; only the stylesheet `css` applies (by
/// its hash) and forms post only to this origin.
pub fn csp_for(css: &str) -> HeaderValue {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes()));
    HeaderValue::try_from(format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    ))
    .unwrap_or(HeaderValue::from_static("default-src 'none'"))
}

/// `page` with its status, its CSP and the headers every page carries.
pub fn respond(status: StatusCode, lang: Lang, csp: &HeaderValue, page: Markup) -> Response {
    let mut r = (status, page).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.code()),
    );
    r
}
