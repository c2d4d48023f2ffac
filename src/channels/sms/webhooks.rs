//! The SMS webhooks: Twilio's signed form webhook (TwiML reply) and a generic JSON webhook for
//! Turkish providers (HMAC or Basic auth, JSON reply).

use crate::telemetry::chain;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::inbound::{self, MoError, MoInput};
use super::intake::{Origin, admit, intake, within_body_limit};
use crate::channels::twilio_request::{TwilioRequest, twiml_response};
use crate::channels::twiml;
use crate::error::ApiError;
use crate::http::credentials::{verify_basic, verify_hmac_sha256};
use crate::http::quarantine;
use crate::http::ratelimit::too_many_requests;
use crate::http::request_meta::Peer;
use crate::state::AppState;

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
            ApiError::unavailable(chain(&e).to_string()).into_response()
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
            // Advanced Opt-Out already answered a keyword it recognised (`OptOutType`, kept in
            // the evidence with every other parameter); a second confirmation is opt-in.
            let twilio_replied =
                req.param("OptOutType").is_some() && !st.config.sms.reply_after_twilio_opt_out;
            if let Some(text) = out.reply.filter(|_| !twilio_replied) {
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
/// the provider should send (and queues it for `sms.outbound` when that is configured).
#[utoipa::path(
    post, path = "/webhooks/generic/sms", tag = "webhooks",
    summary = "Inbound SMS from a generic JSON provider: one object, an array, or {messages: [...]}",
    description = "Authenticated by X-Signature (HMAC-SHA256 of the raw body) or HTTP Basic, per [[sms.generic]] / [[sms.providers]] kind = generic. Every item gets its own result.",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "one result per item (a bad item carries its own 4xx status)", body = Object),
        (status = 400, description = "malformed request, unknown or missing brand", body = crate::error::ErrorBody),
        (status = 401, description = "missing or wrong credentials", body = crate::error::ErrorBody),
        (status = 403, description = "credentials refused", body = crate::error::ErrorBody),
        (status = 413, description = "body too large", body = crate::error::ErrorBody),
        (status = 429, description = "rate limit; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "storage or a dependency is unavailable; retry", body = crate::error::ErrorBody)
    ),
    security(("hmac" = []), ("basic" = []))
)]
pub async fn generic(
    State(st): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (ip, body) = match admit(&st, &headers, peer, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Authenticate before anything is kept: a stranger's request is counted, never stored.
    let provider = match authenticate(&st, &headers, &body) {
        Ok(p) => p,
        Err(e) => {
            quarantine::refused_unauthenticated(GENERIC_ROUTE, e.code);
            return e.into_response();
        }
    };
    if let Err(r) = within_body_limit(&st, GENERIC_ROUTE, &headers, ip, &body).await {
        return r;
    }
    let items = match super::providers::generic::parse_push(&body) {
        Ok(items) => items,
        Err(e) => {
            quarantine::keep(&st, GENERIC_ROUTE, &e.to_string(), &headers, ip, &body).await;
            return ApiError::bad_request("malformed_payload", e.to_string()).into_response();
        }
    };
    let origin = Origin::Push {
        route: GENERIC_ROUTE,
        headers: &headers,
        ip,
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    // Not acknowledged on a storage failure: the provider retries the whole request and what
    // was recorded dedupes.
    match intake(&st, &provider, &|_: &str| true, items, &origin).await {
        Ok(results) => {
            Json(serde_json::json!({ "provider": provider, "results": results })).into_response()
        }
        Err(e) => mo_error_response(&e),
    }
}
