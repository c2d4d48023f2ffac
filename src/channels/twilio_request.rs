//! A verified Twilio(-compatible) webhook request, shared by the SMS and voice webhooks.
//!
//! Order of checks: hard size limit → signature (over the bytes as sent) → size → UTF-8 / JSON.
//! Authenticated but unreadable requests (too large, invalid UTF-8, malformed JSON) are
//! quarantined within its bounds; unsigned or forged ones are counted and logged, never stored,
//! so a stranger cannot fill the database.

use std::net::{IpAddr, SocketAddr};
use std::string::FromUtf8Error;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::channels::sms::signature::{
    form_params_raw, validate_twilio_json_any, validate_twilio_raw_any,
};
use crate::error::ApiError;
use crate::http::ratelimit::too_many_requests;
use crate::http::{quarantine, request_meta};
use crate::state::AppState;

/// Bodies above this are refused outright, unread and unauthenticated (the quarantine keeps
/// smaller oversize ones whose signature checks out).
pub const HARD_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct TwilioRequest {
    pub params: Vec<(String, String)>,
    /// The URL the signature was checked against.
    pub url: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl TwilioRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter as received (repeated keys become arrays): the evidence.
    pub fn raw_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.params {
            match map.get_mut(k) {
                None => {
                    map.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
                Some(serde_json::Value::Array(a)) => a.push(serde_json::Value::String(v.clone())),
                Some(prev) => {
                    let first = prev.take();
                    *prev =
                        serde_json::Value::Array(vec![first, serde_json::Value::String(v.clone())]);
                }
            }
        }
        serde_json::Value::Object(map)
    }
}

/// Why a webhook request was refused, and what becomes of it.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    fate: Fate,
}

enum Fate {
    /// Authenticated but unreadable: kept in the quarantine for review, with this reason.
    Kept(String),
    /// Missing or wrong signature: counted and logged, never stored.
    Unauthenticated,
    /// Our own configuration is missing: nothing to keep.
    Dropped,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: &'static str, fate: Fate) -> Self {
        Self {
            status,
            code,
            message,
            fate,
        }
    }
}

/// Reads a webhook body up to [`HARD_BODY_LIMIT`]; beyond it a 413 before anything else.
pub async fn read_body(body: axum::body::Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, HARD_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {HARD_BODY_LIMIT} bytes"),
            )
            .into_response()
        })
}

impl FromRequest<AppState> for TwilioRequest {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ip = request_meta::client_ip(&st.config.server, &parts.headers, peer);
        st.limits.check_webhook_ip(ip).map_err(too_many_requests)?;
        let body = read_body(body).await?;
        match verify(st, &parts, &body, ip) {
            Ok(req) => Ok(req),
            Err(r) => {
                let route = parts.uri.path();
                match &r.fate {
                    Fate::Kept(reason) => {
                        // GET webhooks carry their data in the query, not the body.
                        let kept = if parts.method == Method::GET {
                            parts.uri.query().unwrap_or("").as_bytes()
                        } else {
                            &body
                        };
                        quarantine::keep(st, route, reason, &parts.headers, ip, kept).await;
                    }
                    Fate::Unauthenticated => quarantine::refused_unauthenticated(route, r.code),
                    Fate::Dropped => {}
                }
                Err(ApiError::new(r.status, r.code, r.message).into_response())
            }
        }
    }
}

/// Authenticates first, over the bytes as sent, and only then reads: nothing about a request
/// whose signature does not check out is kept.
fn verify(
    st: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
    ip: Option<IpAddr>,
) -> Result<TwilioRequest, Refusal> {
    use StatusCode as S;
    let tokens: Vec<String> = st
        .config
        .twilio
        .auth_tokens
        .iter()
        .map(|t| t.expose().to_string())
        .collect();
    if tokens.is_empty() {
        return Err(Refusal::new(
            S::SERVICE_UNAVAILABLE,
            "not_configured",
            "twilio.auth_tokens is not configured",
            Fate::Dropped,
        ));
    }
    let Some(signature) = parts
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(Refusal::new(
            S::BAD_REQUEST,
            "missing_signature",
            "X-Twilio-Signature header is required",
            Fate::Unauthenticated,
        ));
    };
    let url = request_meta::public_url(&st.config.server, &parts.headers, &parts.uri);
    let is_get = parts.method == Method::GET;
    let is_json = !is_get && content_type(&parts.headers).starts_with("application/json");
    // GET webhooks carry their parameters in the signed URL itself.
    let raw = if is_get {
        form_params_raw(parts.uri.query().unwrap_or("").as_bytes())
    } else if is_json {
        Vec::new()
    } else {
        form_params_raw(body)
    };
    let valid = if is_json {
        validate_twilio_json_any(&tokens, &url, body, signature)
    } else if is_get {
        validate_twilio_raw_any(&tokens, &url, &[], signature)
    } else {
        validate_twilio_raw_any(&tokens, &url, &raw, signature)
    };
    if !valid {
        return Err(Refusal::new(
            S::FORBIDDEN,
            "bad_signature",
            "X-Twilio-Signature does not match",
            Fate::Unauthenticated,
        ));
    }
    if body.len() > st.config.server.max_body_bytes {
        return Err(Refusal::new(
            S::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
            Fate::Kept("payload too large".into()),
        ));
    }
    let params = if is_json {
        json_params(body)?
    } else {
        utf8_params(raw).map_err(|_| {
            Refusal::new(
                S::BAD_REQUEST,
                "invalid_utf8",
                "the request is not valid UTF-8",
                Fate::Kept(format!(
                    "invalid UTF-8 in {}",
                    if is_get { "query" } else { "form body" }
                )),
            )
        })?
    };
    let user_agent = parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(TwilioRequest {
        params,
        url,
        ip,
        user_agent,
    })
}

fn utf8_params(raw: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<(String, String)>, FromUtf8Error> {
    raw.into_iter()
        .map(|(k, v)| Ok((String::from_utf8(k)?, String::from_utf8(v)?)))
        .collect()
}

/// A JSON webhook's top-level fields as parameters (non-string values as their JSON text).
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, Refusal> {
    let obj = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body).map_err(
        |e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not a JSON object",
                Fate::Kept(format!("malformed JSON: {e}")),
            )
        },
    )?;
    Ok(obj
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect())
}

fn content_type(h: &HeaderMap) -> String {
    h.get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A TwiML response with the right content type.
pub fn twiml_response(xml: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}
