//! The JSON/form APIs around opting out inside a business's own calls, both behind the
//! `[[api.tokens]]` bearer tokens:
//! - `POST /v1/voice/outbound-grants`: signs the parameter a campaign dialer adds to the relay's
//!   outbound URLs (brand, return URL, language), so Twilio's requests cannot name another brand
//!   or send the call elsewhere;
//! - `POST /v1/voice/pbx/opt-outs`: a PBX dialplan (Asterisk/FreePBX) that played the offer and
//!   the confirmation itself reports the confirmed refusal; idempotent by the PBX's call id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::outbound::{
    GRANT_PARAM, Grant, OPT_OUT_KEY, check_return_url, seal_grant, turkish_phone, types_for,
};
use super::prompts::{Lang, PromptId, prompt};
use super::{OUTBOUND_ANNOUNCE_ROUTE, OUTBOUND_ROUTE};
use crate::channels::agent::{same_movement, text_field};
use crate::domain::{Channel, ConsentIntent, ConsentType, Evidence, RecipientType, Source, Status};
use crate::error::ApiError;
use crate::http::auth::ApiCaller;
use crate::http::consents::resolve_brand;
use crate::http::json::ApiJson;
use crate::http::request_meta::{self, Peer};
use crate::state::AppState;

pub const GRANTS_ROUTE: &str = "/v1/voice/outbound-grants";
pub const PBX_ROUTE: &str = "/v1/voice/pbx/opt-outs";
/// A grant is valid this long unless the request asks for less.
pub const DEFAULT_GRANT_DAYS: u32 = 365;
pub const MAX_GRANT_DAYS: u32 = 400;
/// The key a PBX collects after the offer's 9: "1 confirms".
pub const CONFIRM_KEY: &str = "1";
/// Largest PBX request body (a handful of short fields).
const MAX_PBX_BODY: usize = 4 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(GRANTS_ROUTE, post(grant))
        .route(PBX_ROUTE, post(pbx_opt_out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Brand key or İYS brand code; optional when one brand is configured.
    #[serde(default)]
    pub brand: Option<String>,
    /// Where the call goes when the opt-out step is over (`iys_relay=<result>` is appended).
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub lang: Option<Lang>,
    #[serde(default)]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantResponse {
    pub brand_code: i64,
    /// The value of the `o` query parameter.
    pub grant: String,
    pub expires_at: DateTime<Utc>,
    /// For the dialer's `<Redirect>` or `<Gather action>`.
    pub in_call_url: String,
    /// For the dialer's `<Redirect>` before its own pitch: the relay's announcement gathers 9.
    pub announcement_url: String,
}

/// `POST /v1/voice/outbound-grants`: a signed dialer parameter and the two URLs carrying it.
#[utoipa::path(
    post, path = "/v1/voice/outbound-grants", tag = "voice",
    summary = "A signed dialer parameter for opting out inside an outbound call",
    request_body = GrantRequest,
    responses(
        (status = 200, description = "the grant and the two URLs carrying it", body = GrantResponse),
        crate::error::WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn grant(
    State(st): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiJson(req): ApiJson<GrantRequest>,
) -> Result<Json<GrantResponse>, ApiError> {
    let brand = resolve_brand(&st, req.brand.as_deref())?;
    if let Some(u) = &req.return_url {
        check_return_url(u).map_err(|m| ApiError::unprocessable("invalid_return_url", m))?;
    }
    let days = req.valid_days.unwrap_or(DEFAULT_GRANT_DAYS);
    if !(1..=MAX_GRANT_DAYS).contains(&days) {
        return Err(ApiError::unprocessable(
            "invalid_valid_days",
            format!("valid_days must be between 1 and {MAX_GRANT_DAYS}"),
        ));
    }
    let g = Grant {
        brand_code: brand.brand_code,
        return_url: req.return_url,
        lang: req.lang,
    };
    let expires_at = st.ledger.clock().now() + Duration::days(i64::from(days));
    let secret = st.config.voice.state_secret.expose().as_bytes();
    let token = seal_grant(&g, secret, expires_at);
    let base = st.config.server.public_base_url.trim_end_matches('/');
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair(GRANT_PARAM, &token)
        .finish();
    tracing::info!(
        api_token = %caller,
        brand_code = brand.brand_code,
        has_return_url = g.return_url.is_some(),
        "outbound grant issued"
    );
    Ok(Json(GrantResponse {
        brand_code: brand.brand_code,
        in_call_url: format!("{base}{OUTBOUND_ROUTE}?{q}"),
        announcement_url: format!("{base}{OUTBOUND_ANNOUNCE_ROUTE}?{q}"),
        grant: token,
        expires_at,
    }))
}

/// The fields a dialplan sends (form-encoded, as `curl --data-urlencode` and Asterisk's
/// `CURL()` do; JSON works too).
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PbxOptOut {
    /// The person called, in any Turkish form (`05321234567`, `+905321234567`).
    pub callee: String,
    #[serde(default)]
    pub brand: Option<String>,
    /// The PBX's id of the call (Asterisk `${UNIQUEID}`); the dedupe key.
    pub call_id: String,
    /// The key pressed at the offer: must be 9.
    pub key: String,
    /// The key pressed at the confirmation: must be 1.
    pub confirm: String,
    /// The business's number the call came from (evidence).
    #[serde(default)]
    pub caller: Option<String>,
    /// Language of the prompts played (evidence; default `voice.flow.default_lang`).
    #[serde(default)]
    pub lang: Option<Lang>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PbxRecorded {
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    pub event_id: i64,
    pub duplicate: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PbxResponse {
    pub result: &'static str,
    pub recorded: Vec<PbxRecorded>,
    pub deadline_at: Option<DateTime<Utc>>,
}

fn parse_pbx_body(headers: &HeaderMap, body: &[u8]) -> Result<PbxOptOut, ApiError> {
    if body.len() > MAX_PBX_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {MAX_PBX_BODY} bytes"),
        ));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/json") {
        return serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("malformed_body", e.to_string()));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("malformed_body", "the body is not valid UTF-8"))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::bad_request(
                "malformed_body",
                format!("field {k} is given twice"),
            ));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    // Through JSON so the form gets the same field names, required fields and unknown-field
    // refusal as the JSON body.
    let obj: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| ApiError::bad_request("malformed_body", e.to_string()))
}

/// `POST /v1/voice/pbx/opt-outs`: 201 recorded, 200 already recorded for this call id.
#[utoipa::path(
    post, path = "/v1/voice/pbx/opt-outs", tag = "voice",
    summary = "A PBX reports a confirmed key-press refusal (idempotent by call_id)",
    request_body(content(
        (PbxOptOut = "application/x-www-form-urlencoded"),
        (PbxOptOut = "application/json")
    )),
    responses(
        (status = 201, description = "recorded", body = PbxResponse),
        (status = 200, description = "already recorded for this call_id", body = PbxResponse),
        crate::error::WriteErrors,
        (status = 409, description = "the same call_id was used for another callee or brand", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn pbx_opt_out(
    State(st): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = parse_pbx_body(&headers, &body)?;
    let brand = resolve_brand(&st, req.brand.as_deref())?;
    text_field("call_id", &req.call_id)?;
    if let Some(c) = &req.caller {
        text_field("caller", c)?;
    }
    let recipient = turkish_phone(&req.callee).ok_or_else(|| {
        ApiError::unprocessable("invalid_recipient", "callee must be a Turkish phone number")
    })?;
    if req.key != OPT_OUT_KEY {
        return Err(ApiError::unprocessable(
            "not_an_opt_out",
            format!("key must be {OPT_OUT_KEY} (the key the offer names); nothing recorded"),
        ));
    }
    if req.confirm != CONFIRM_KEY {
        return Err(ApiError::unprocessable(
            "not_confirmed",
            format!("confirm must be {CONFIRM_KEY}; nothing recorded"),
        ));
    }
    let flow = &st.config.voice.flow;
    let lang = req.lang.unwrap_or(flow.default_lang);
    let types = types_for(&recipient, flow);
    let heard = pbx_prompts(types.contains(&ConsentType::Mesaj))
        .iter()
        .map(|id| format!("{}/{}", lang.as_str(), prompt(*id, lang).versioned_id()))
        .collect::<Vec<_>>();
    let raw = serde_json::json!({
        "params": &req,
        "call": {
            "direction": "outbound-pbx",
            "called": &req.callee,
            "calling": &req.caller,
        },
        "digits_pressed": [&req.key, &req.confirm],
        "prompt_versions": heard,
    });
    let now = st.ledger.clock().now();
    let ip = request_meta::client_ip(&st.config.server, &headers, peer);
    let mut recorded = Vec::with_capacity(types.len());
    let mut deadline_at = None;
    for consent_type in types {
        let out = st
            .ledger
            .record(ConsentIntent {
                brand_code: brand.brand_code,
                recipient: recipient.clone(),
                recipient_type: RecipientType::Bireysel,
                consent_type,
                status: Status::Ret,
                source: Source::HsCagriMerkezi,
                channel: Channel::Voice,
                consent_at: now,
                provider: format!("pbx:{caller}"),
                provider_message_id: format!("{}:{consent_type}:{}", req.call_id, Status::Ret),
                evidence: Evidence {
                    raw: raw.clone(),
                    ip: ip.map(|i| i.to_string()),
                    user_agent: headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    call_id: Some(req.call_id.clone()),
                },
            })
            .await?;
        let movement = (consent_type, Status::Ret);
        if out.duplicate
            && !same_movement(&st, out.event_id, &recipient, brand.brand_code, &movement).await?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "call_id_reused",
                "this call_id was already recorded for another callee or brand",
            ));
        }
        tracing::info!(
            pbx = %caller,
            recipient = %recipient.masked(),
            brand_code = brand.brand_code,
            %consent_type,
            duplicate = out.duplicate,
            "PBX opt-out recorded"
        );
        deadline_at = deadline_at.or(out.deadline_at);
        recorded.push(PbxRecorded {
            consent_type,
            event_id: out.event_id,
            duplicate: out.duplicate,
        });
    }
    let code = if recorded.iter().all(|r| r.duplicate) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = PbxResponse {
        result: "recorded",
        recorded,
        deadline_at,
    };
    Ok((code, Json(body)).into_response())
}

/// The recordings the dialplan in docs/voice.md plays before it reports: offer, confirmation, result.
pub fn pbx_prompts(messages: bool) -> [PromptId; 3] {
    if messages {
        [
            PromptId::OutboundOfferCallsMsgs,
            PromptId::OutboundConfirmCallsMsgs,
            PromptId::RecordedOptoutCallsMsgs,
        ]
    } else {
        [
            PromptId::OutboundOfferCalls,
            PromptId::OutboundConfirmCalls,
            PromptId::RecordedOptoutCalls,
        ]
    }
}
