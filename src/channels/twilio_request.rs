//! A verified Twilio(-compatible) webhook request, shared by the SMS and voice webhooks.
//!
//! Order of checks: size → UTF-8 → signature. Refused-but-genuine-looking bodies (too large,
//! invalid UTF-8) are quarantined; forged requests (missing or wrong signature) are not recorded
//! anywhere but the log, so an attacker cannot fill the database.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::channels::sms::signature::{form_params, validate_twilio_any, validate_twilio_json_any};
use crate::config::Secret;
use crate::error::ApiError;
use crate::http::ratelimit::too_many_requests;
use crate::http::{quarantine, request_meta};

/// `[twilio]`: the account's auth tokens (primary first, a secondary during rotation).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioConfig {
    pub auth_tokens: Vec<Secret>,
}

/// Bodies above this are refused outright by the router (quarantine keeps smaller oversize ones).
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

/// Why a webhook request was refused, and what of it to keep for review.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    /// `Some(reason)`: the request looked genuine but could not be read, so it is quarantined.
    quarantine: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            quarantine: None,
        }
    }
    fn kept(mut self, reason: impl Into<String>) -> Self {
        self.quarantine = Some(reason.into());
        self
    }
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
        let body: Bytes = axum::body::to_bytes(body, HARD_BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is too large",
                )
                .into_response()
            })?;
        match verify(st, &parts, &body, ip) {
            Ok(req) => Ok(req),
            Err(r) => {
                let route = parts.uri.path();
                if let Some(reason) = &r.quarantine {
                    // GET webhooks carry their data in the query, not the body.
                    let kept = if parts.method == Method::GET {
                        parts.uri.query().unwrap_or("").as_bytes()
                    } else {
                        &body
                    };
                    quarantine::keep(st, route, reason, &parts.headers, ip, kept).await;
                } else if r.status == StatusCode::FORBIDDEN || r.code == "missing_signature" {
                    tracing::warn!(route, ip = ?ip, code = r.code, "unsigned or forged webhook refused");
                }
                Err(ApiError::new(r.status, r.code, r.message).into_response())
            }
        }
    }
}

fn verify(
    st: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
    ip: Option<IpAddr>,
) -> Result<TwilioRequest, Refusal> {
    use StatusCode as S;
    if body.len() > st.config.server.max_body_bytes {
        return Err(Refusal::new(
            S::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        )
        .kept("payload too large"));
    }
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
        ));
    };
    let url = request_meta::public_url(&st.config.server, &parts.headers, &parts.uri);
    let bad_utf8 = || {
        Refusal::new(
            S::BAD_REQUEST,
            "invalid_utf8",
            "the request is not valid UTF-8",
        )
    };

    let (params, valid) = if parts.method == Method::GET {
        // GET webhooks carry their parameters in the signed URL itself.
        let p = form_params(parts.uri.query().unwrap_or("").as_bytes())
            .map_err(|_| bad_utf8().kept("invalid UTF-8 in query"))?;
        (p, validate_twilio_any(&tokens, &url, &[], signature))
    } else if content_type(&parts.headers).starts_with("application/json") {
        let valid = validate_twilio_json_any(&tokens, &url, body, signature);
        let obj = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map_err(|e| {
                let r = Refusal::new(
                    S::BAD_REQUEST,
                    "malformed_json",
                    "the body is not a JSON object",
                );
                // Only a correctly signed body is worth keeping.
                if valid {
                    r.kept(format!("malformed JSON: {e}"))
                } else {
                    r
                }
            })?;
        let p = obj
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        (p, valid)
    } else {
        let p = form_params(body).map_err(|_| bad_utf8().kept("invalid UTF-8 in form body"))?;
        let valid = validate_twilio_any(&tokens, &url, &p, signature);
        (p, valid)
    };
    if !valid {
        return Err(Refusal::new(
            S::FORBIDDEN,
            "bad_signature",
            "X-Twilio-Signature does not match",
        ));
    }
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
