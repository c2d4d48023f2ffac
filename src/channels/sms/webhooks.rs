//! The SMS webhooks: Twilio's signed form webhook (TwiML reply) and a generic JSON webhook for
//! Turkish providers (HMAC or Basic auth, JSON reply).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::generic::{parse_mo, verify_basic, verify_hmac_sha256};
use super::inbound::{self, MoError, MoInput, MoOutcome};
use crate::app::AppState;
use crate::channels::twilio_request::{TwilioRequest, read_body, twiml_response};
use crate::channels::twiml;
use crate::error::ApiError;
use crate::http::quarantine;
use crate::http::ratelimit::too_many_requests;
use crate::http::request_meta::{self, Peer};

const TWILIO_ROUTE: &str = "/webhooks/twilio/sms";
const GENERIC_ROUTE: &str = "/webhooks/generic/sms";

fn mo_error_response(e: &MoError) -> Response {
    match e {
        MoError::UnknownNumber(_) => {
            ApiError::unprocessable("unknown_number", e.to_string()).into_response()
        }
        MoError::BadSender(_) => {
            ApiError::unprocessable("invalid_sender", e.to_string()).into_response()
        }
        MoError::BadMessageId(_) => {
            ApiError::unprocessable("invalid_message_id", e.to_string()).into_response()
        }
        MoError::TimeOutOfRange(_) => {
            ApiError::unprocessable("time_out_of_range", e.to_string()).into_response()
        }
        MoError::RateLimited(wait) => too_many_requests(*wait),
        MoError::Ledger(_) | MoError::Store(_) => {
            ApiError::unavailable(e.to_string()).into_response()
        }
    }
}

/// Twilio inbound SMS. Replies with a free `<Message>`; retries of one MessageSid reply the same.
pub async fn twilio(State(st): State<AppState>, req: TwilioRequest) -> Response {
    let sid = req.param("MessageSid").or_else(|| req.param("SmsSid"));
    let (Some(sid), Some(from), Some(to)) = (sid, req.param("From"), req.param("To")) else {
        let raw = req.raw_json().to_string();
        quarantine::keep(
            &st,
            TWILIO_ROUTE,
            "missing MessageSid, From or To",
            &HeaderMap::new(),
            req.ip,
            raw.as_bytes(),
        )
        .await;
        return ApiError::bad_request("missing_parameters", "MessageSid, From and To are required")
            .into_response();
    };
    let input = MoInput {
        provider: "twilio".into(),
        message_id: sid.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        body: req.param("Body").unwrap_or("").to_string(),
        received_at: None,
        raw: req.raw_json(),
        ip: req.ip,
        user_agent: req.user_agent.clone(),
    };
    match inbound::handle(&st, input).await {
        Ok(out) => {
            let mut doc = twiml::Response::new();
            if let Some(text) = out.reply {
                doc = doc.message(text);
            }
            twiml_response(doc.to_xml())
        }
        Err(e) => {
            if e.is_unreadable() {
                let raw = req.raw_json().to_string();
                quarantine::keep(
                    &st,
                    TWILIO_ROUTE,
                    &e.to_string(),
                    &HeaderMap::new(),
                    req.ip,
                    raw.as_bytes(),
                )
                .await;
            }
            mo_error_response(&e)
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GenericResult {
    pub id: String,
    #[serde(flatten)]
    pub outcome: Option<MoOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which configured provider signed or authenticated this request.
fn authenticate(st: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let signature = header("x-signature").or_else(|| header("x-hub-signature-256"));
    let basic = header("authorization");
    if signature.is_none() && basic.is_none() {
        return Err(ApiError::unauthorized(
            "send X-Signature (HMAC-SHA256 of the body) or HTTP Basic credentials",
        ));
    }
    for p in &st.config.sms.generic {
        let by_hmac = match (&p.hmac_secret, signature) {
            (Some(secret), Some(sig)) => verify_hmac_sha256(secret.expose().as_bytes(), body, sig),
            _ => false,
        };
        let by_basic = match (&p.basic_user, &p.basic_password, basic) {
            (Some(u), Some(pw), Some(h)) => verify_basic(h, u, pw.expose()),
            _ => false,
        };
        if by_hmac || by_basic {
            return Ok(p.name.clone());
        }
    }
    Err(ApiError::forbidden(
        "credentials do not match any configured provider",
    ))
}

/// Generic JSON MO webhook (one object or an array). Answers per message, with the reply text
/// the provider should send (and sends it itself when `sms.outbound` is configured).
pub async fn generic(
    State(st): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ip = request_meta::client_ip(&st.config.server, &headers, peer);
    if let Err(wait) = st.limits.check_webhook_ip(ip) {
        return too_many_requests(wait);
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    // Authenticate before anything is kept: a stranger's request is counted, never stored.
    let provider = match authenticate(&st, &headers, &body) {
        Ok(p) => p,
        Err(e) => {
            quarantine::refused_unauthenticated(GENERIC_ROUTE, e.code);
            return e.into_response();
        }
    };
    if body.len() > st.config.server.max_body_bytes {
        quarantine::keep(&st, GENERIC_ROUTE, "payload too large", &headers, ip, &body).await;
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        )
        .into_response();
    }
    let messages = match parse_mo(&body) {
        Ok(m) => m,
        Err(e) => {
            quarantine::keep(&st, GENERIC_ROUTE, &e.to_string(), &headers, ip, &body).await;
            return ApiError::bad_request("malformed_payload", e.to_string()).into_response();
        }
    };
    let mut results = Vec::with_capacity(messages.len());
    for m in messages {
        let input = MoInput {
            provider: provider.clone(),
            message_id: m.id.clone(),
            from: m.from,
            to: m.to,
            body: m.body,
            received_at: m.received_at,
            raw: m.raw.clone(),
            ip,
            user_agent: headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        let sender = input.from.clone();
        match inbound::handle(&st, input).await {
            Ok(out) => {
                send_confirmation(&st, &sender, &out);
                results.push(GenericResult {
                    id: m.id,
                    outcome: Some(out),
                    error: None,
                });
            }
            // Not acknowledged: the provider retries the whole request; recorded ones dedupe.
            Err(e @ (MoError::Ledger(_) | MoError::Store(_))) => return mo_error_response(&e),
            Err(e) => {
                if e.is_unreadable() {
                    quarantine::keep(
                        &st,
                        GENERIC_ROUTE,
                        &e.to_string(),
                        &headers,
                        ip,
                        m.raw.to_string().as_bytes(),
                    )
                    .await;
                }
                results.push(GenericResult {
                    id: m.id,
                    outcome: None,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    Json(serde_json::json!({ "provider": provider, "results": results })).into_response()
}

/// Sends the reply through the outbound API, off the request path, once per recorded event.
fn send_confirmation(st: &AppState, to: &str, out: &MoOutcome) {
    let (Some(client), Some(cfg), Some(text)) = (
        st.sms.outbound.clone(),
        st.config.sms.outbound.clone(),
        out.reply.clone(),
    ) else {
        return;
    };
    if out.recorded.as_ref().is_some_and(|r| r.duplicate) {
        return;
    }
    let to = to.to_string();
    tokio::spawn(async move {
        if let Err(e) = client.send_sms(&cfg.from, &to, &text).await {
            tracing::warn!(error = %e, "SMS confirmation was not sent");
        }
    });
}
