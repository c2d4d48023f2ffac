//! The IVR's HTTP edge: Twilio(-compatible) voice webhooks answering TwiML, the status callback,
//! and the compiled-in prompt recordings. Each webhook is verified by [`TwilioRequest`]
//! (signature over the full URL, so the `t` state token in the action URL is signed too), runs
//! one [`turn`] and records the outcome, if any, before answering.

use crate::telemetry::chain;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::flow::{BrandRef, Input, Outcome};
use super::outbound::{Entry, GRANT_PARAM, OutboundCall, OutboundStart, open_grant, turkish_phone};
use super::prompts::{Lang, PromptId, prompt};
use super::{CALL_ROUTE, IvrSettings, rejected_twiml, turn};
use crate::channels::twilio_request::{TwilioRequest, twiml_response};
use crate::channels::twiml;
use crate::domain::{Channel, ConsentIntent, Evidence, ProviderMessageId, RecipientType, Source};
use crate::error::ApiError;
use crate::http::quarantine;
use crate::ledger::{LedgerError, Recorded};
use crate::state::AppState;

/// The dedupe namespace of IVR movements (with `"{CallSid}:{TYPE}:{STATUS}"`).
pub const PROVIDER: &str = "twilio-voice";
/// Longest CallSid shown in a status log line (Twilio's are 34 chars; SignalWire's are UUIDs).
const MAX_SID_LEN: usize = 64;

/// Incoming call: greets, identifies the caller and offers the first menu. A business's own
/// outbound call handed here (`Direction` outbound-api / outbound-dial) gets the outbound
/// announcement instead: the person is the callee there, not the caller.
pub async fn incoming(State(st): State<AppState>, uri: Uri, req: TwilioRequest) -> Response {
    if is_outbound(&req) {
        return outbound_entry(&st, &uri, &req, Entry::Announce).await;
    }
    let sid = match call_sid(&st, &req).await {
        Ok(sid) => sid,
        Err(refused) => return refused,
    };
    let to = req
        .param("To")
        .or_else(|| req.param("Called"))
        .unwrap_or("");
    let brands = st.config.voice.brands_for(to, &st.config.brands);
    if brands.is_empty() {
        tracing::warn!(call_sid = sid, "call to a number not in voice.numbers");
    }
    let caller = req
        .param("From")
        .or_else(|| req.param("Caller"))
        .map(str::to_string);
    let s = settings(&st, &req, &uri);
    answer(&st, &req, &s, &sid, None, Input::Start { caller, brands }).await
}

/// The in-call entry of the business's own call: its flow `<Redirect>`s here once the person
/// asked to opt out, or its own `<Gather action>` posts the key pressed here.
pub async fn outbound_in_call(
    State(st): State<AppState>,
    uri: Uri,
    req: TwilioRequest,
) -> Response {
    let digits = req.param("Digits").map(str::to_string);
    outbound_entry(&st, &uri, &req, Entry::InCall { digits }).await
}

/// The relay's short announcement inside the business's call; it gathers the key itself.
pub async fn outbound_announce(
    State(st): State<AppState>,
    uri: Uri,
    req: TwilioRequest,
) -> Response {
    outbound_entry(&st, &uri, &req, Entry::Announce).await
}

fn is_outbound(req: &TwilioRequest) -> bool {
    req.param("Direction")
        .is_some_and(|d| d.starts_with("outbound"))
}

/// (person, business number): the callee and the caller id of an outbound call, the other way
/// round when the business's flow runs on a call the person made.
fn call_parties(req: &TwilioRequest) -> (&str, &str) {
    let from = req
        .param("From")
        .or_else(|| req.param("Caller"))
        .unwrap_or("");
    let to = req
        .param("To")
        .or_else(|| req.param("Called"))
        .unwrap_or("");
    if is_outbound(req) {
        (to, from)
    } else {
        (from, to)
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

async fn outbound_entry(st: &AppState, uri: &Uri, req: &TwilioRequest, entry: Entry) -> Response {
    let sid = match call_sid(st, req).await {
        Ok(sid) => sid,
        Err(refused) => return refused,
    };
    let s = settings(st, req, uri);
    let grant = match query_param(uri, GRANT_PARAM) {
        None => None,
        Some(t) => match open_grant(&t, &s.secret, st.ledger.clock().now()) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(call_sid = sid, error = %chain(&e), "outbound grant refused");
                return twiml_response(rejected_twiml(&s));
            }
        },
    };
    let (person, business) = call_parties(req);
    let brand = match &grant {
        Some(g) => st.config.brand_by_code(g.brand_code).map(BrandRef::from),
        // Several brands on the number: only a grant can say which one is calling.
        None => match st
            .config
            .voice
            .brands_for(business, &st.config.brands)
            .as_slice()
        {
            [one] => Some(one.clone()),
            _ => None,
        },
    };
    if brand.is_none() {
        tracing::warn!(
            call_sid = sid,
            "outbound call without a grant or a single-brand number"
        );
    }
    let start = OutboundStart {
        entry,
        call: OutboundCall {
            direction: req.param("Direction").unwrap_or("").to_string(),
            return_url: grant.as_ref().and_then(|g| g.return_url.clone()),
            brand_from_grant: grant.is_some(),
        },
        brand,
        recipient: turkish_phone(person),
        lang: grant
            .as_ref()
            .and_then(|g| g.lang)
            .unwrap_or(s.flow.default_lang),
    };
    answer(st, req, &s, &sid, None, Input::StartOutbound(start)).await
}

/// Every later turn: the Gather action (with `Digits`) or the timeout redirect (without).
pub async fn gather(State(st): State<AppState>, uri: Uri, req: TwilioRequest) -> Response {
    let sid = match call_sid(&st, &req).await {
        Ok(sid) => sid,
        Err(refused) => return refused,
    };
    let token = query_param(&uri, "t");
    let input = Input::from_digits(req.param("Digits"));
    let s = settings(&st, &req, &uri);
    answer(&st, &req, &s, &sid, token.as_deref(), input).await
}

/// Call status callback: logged only (a hang-up before confirming records nothing anyway).
pub async fn status(req: TwilioRequest) -> Response {
    tracing::info!(
        call_sid = req
            .param("CallSid")
            .unwrap_or("")
            .chars()
            .take(MAX_SID_LEN)
            .collect::<String>(),
        call_status = req.param("CallStatus").unwrap_or(""),
        duration_secs = req.param("CallDuration").unwrap_or(""),
        "call status callback"
    );
    twiml_response(twiml::Response::new().to_xml())
}

/// `GET /voice-prompts/{lang}/{id}.wav` from the recordings compiled into the binary.
pub async fn prompt_wav(
    Path((lang, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let found = Lang::parse(&lang).zip(file.strip_suffix(".wav").and_then(PromptId::parse));
    let Some((lang, id)) = found else {
        return ApiError::not_found("no such prompt recording").into_response();
    };
    // The URL has no version, so the ETag carries it: a re-recorded prompt is fetched again.
    let etag = format!(
        "\"{}-{}-v{}\"",
        lang.as_str(),
        id.as_str(),
        prompt(id, lang).version
    );
    let cache = [
        (header::CACHE_CONTROL, "public, max-age=86400".to_string()),
        (header::ETAG, etag.clone()),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let mut r = (cache, id.wav(lang)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    r
}

/// Runs one turn; records a confirmed choice before the TwiML announcing it goes out.
async fn answer(
    st: &AppState,
    req: &TwilioRequest,
    s: &IvrSettings,
    sid: &str,
    token: Option<&str>,
    input: Input,
) -> Response {
    let now = st.ledger.clock().now();
    let t = match turn(s, sid, token, input, now) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(call_sid = sid, error = %chain(&e), "IVR turn refused");
            return twiml_response(rejected_twiml(s));
        }
    };
    if let Some(o) = &t.step.outcome
        && let Err(e) = record(st, req, sid, o, t.step.next.outbound.as_ref()).await
    {
        // Nothing was confirmed to the caller: apologise rather than announce a lost choice.
        tracing::error!(call_sid = sid, error = %chain(&e), "IVR choice could not be recorded");
        return twiml_response(rejected_twiml(s));
    }
    tracing::debug!(call_sid = sid, stage = t.step.next.stage.name(), "IVR turn");
    twiml_response(t.twiml)
}

/// One event per consent type of the outcome; a replayed confirm dedupes on the message id.
async fn record(
    st: &AppState,
    req: &TwilioRequest,
    sid: &str,
    o: &Outcome,
    outbound: Option<&OutboundCall>,
) -> Result<Vec<Recorded>, LedgerError> {
    let now = st.ledger.clock().now();
    let param = |k: &str| req.param(k).unwrap_or("");
    let raw = serde_json::json!({
        "params": req.raw_json(),
        "call": {
            "direction": param("Direction"),
            "called": param("To"),
            "calling": param("From"),
        },
        "outbound": outbound,
        "digits_pressed": o.digits_pressed,
        "prompt_versions": o.prompt_versions,
    });
    let mut out = Vec::with_capacity(o.types.len());
    for &consent_type in &o.types {
        let recorded = st
            .ledger
            .record(ConsentIntent {
                brand_code: o.brand_code,
                recipient: o.recipient.clone(),
                recipient_type: RecipientType::Bireysel,
                consent_type,
                status: o.status,
                source: Source::HsCagriMerkezi,
                channel: Channel::Voice,
                consent_at: now,
                provider: PROVIDER.into(),
                provider_message_id: format!("{sid}:{consent_type}:{}", o.status),
                evidence: Evidence {
                    raw: raw.clone(),
                    ip: req.ip.map(|i| i.to_string()),
                    user_agent: req.user_agent.clone(),
                    call_id: Some(sid.to_string()),
                },
            })
            .await?;
        tracing::info!(
            call_sid = sid,
            recipient = %o.recipient.masked(),
            brand_code = o.brand_code,
            %consent_type,
            status = %o.status,
            duplicate = recorded.duplicate,
            "IVR choice recorded"
        );
        out.push(recorded);
    }
    Ok(out)
}

/// The IVR settings for this request: action and prompt URLs under the base the provider
/// called (and signed), so they verify on the next turn behind a trusted proxy too.
fn settings(st: &AppState, req: &TwilioRequest, uri: &Uri) -> IvrSettings {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let base = req
        .url
        .strip_suffix(path)
        .unwrap_or(&st.config.server.public_base_url);
    st.config.voice.settings(base)
}

/// The CallSid, or the refusal (the request quarantined) when missing or not a valid provider id.
async fn call_sid(st: &AppState, req: &TwilioRequest) -> Result<String, Response> {
    let sid = req
        .param("CallSid")
        .ok_or_else(|| "CallSid is required".to_string())
        .and_then(|s| {
            ProviderMessageId::parse(s)
                .map(ProviderMessageId::into_string)
                .map_err(|e| format!("CallSid {e}"))
        });
    if let Err(reason) = &sid {
        let raw = req.raw_json().to_string();
        quarantine::keep(
            st,
            CALL_ROUTE,
            reason,
            &HeaderMap::new(),
            req.ip,
            raw.as_bytes(),
        )
        .await;
    }
    sid.map_err(|reason| ApiError::bad_request("invalid_call_sid", reason).into_response())
}
