//! From adapter items to the SMS core: the steps a pushed batch, the generic webhook and an
//! inbox poll share. Each item is handled on its own: a bad one gets its own 4xx result and the
//! others are still recorded; a provider time that cannot be right is replaced by the receipt
//! time (the provider's value stays in the evidence); the free reply goes to the outbox of the
//! provider the message came from.

use crate::telemetry::chain;
use std::net::IpAddr;

use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Europe::Istanbul;
use serde::Serialize;
use serde_json::Value;

use super::inbound::{self, MoError, MoInput, MoOutcome};
use super::providers::{ItemResult, MoItem};
use crate::domain::Recipient;
use crate::domain::calendar::BusinessCalendar;
use crate::http::quarantine;
use crate::ledger::LedgerError;
use crate::state::AppState;

/// A provider clock ahead of ours by more than this is wrong, not merely skewed.
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 300;

/// Where the items came from.
pub enum Origin<'a> {
    Push {
        route: &'a str,
        headers: &'a HeaderMap,
        ip: Option<IpAddr>,
        user_agent: Option<String>,
    },
    /// The provider's inbox, read by the poller.
    Pull { route: &'a str },
}

/// One item's answer in the batch response.
#[derive(Debug, Serialize)]
pub struct ItemAnswer {
    pub id: Option<String>,
    /// The HTTP status this item alone would have had.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(flatten)]
    pub outcome: Option<MoOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Already known (pulled again, or pushed and pulled): nothing done.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub known: bool,
}

impl ItemAnswer {
    fn refused(id: Option<String>, status: u16, code: &'static str, error: String) -> Self {
        Self {
            id,
            status,
            code: Some(code),
            outcome: None,
            error: Some(error),
            known: false,
        }
    }
}

/// The per-IP limit and the body of a push, read up to the hard limit: nothing is stored yet,
/// since the request is not authenticated.
pub async fn admit(
    st: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    body: axum::body::Body,
) -> Result<(Option<IpAddr>, axum::body::Bytes), axum::response::Response> {
    let ip = crate::http::request_meta::client_ip(&st.config.server, headers, peer);
    if let Err(wait) = st.limits.check_webhook_ip(ip) {
        return Err(crate::http::ratelimit::too_many_requests(wait));
    }
    let body = crate::channels::twilio_request::read_body(body).await?;
    Ok((ip, body))
}

/// After authentication: a body over `server.max_body_bytes` is refused and kept for review.
pub async fn within_body_limit(
    st: &AppState,
    route: &str,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    body: &[u8],
) -> Result<(), axum::response::Response> {
    use axum::response::IntoResponse;
    if body.len() > st.config.server.max_body_bytes {
        quarantine::keep(st, route, "payload too large", headers, ip, body).await;
        return Err(crate::error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        )
        .into_response());
    }
    Ok(())
}

/// Why a provider's time was not used as the consent time.
pub fn implausible_time(
    t: DateTime<Utc>,
    now: DateTime<Utc>,
    calendar: &BusinessCalendar,
) -> Option<&'static str> {
    if t > now + Duration::seconds(MAX_FUTURE_SKEW_SECONDS) {
        return Some("in the future");
    }
    if calendar
        .day_kind(t.with_timezone(&Istanbul).date_naive())
        .is_err()
    {
        return Some("outside the holiday calendar's years");
    }
    None
}

/// Handles the items of one batch. `Err` only for a storage failure, when the provider should
/// deliver the batch again (recorded items dedupe).
pub async fn intake(
    st: &AppState,
    provider: &str,
    serves: &(dyn Fn(&str) -> bool + Sync),
    items: Vec<ItemResult>,
    origin: &Origin<'_>,
) -> Result<Vec<ItemAnswer>, MoError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let m = match item {
            Ok(m) => m,
            Err(e) => {
                keep(st, origin, &e.to_string(), e.raw.as_bytes()).await;
                out.push(ItemAnswer::refused(
                    e.id.clone(),
                    422,
                    e.code,
                    e.to_string(),
                ));
                continue;
            }
        };
        if !serves(&m.to) {
            let msg = format!("number {:.20} is not served by provider {provider}", m.to);
            keep(st, origin, &msg, m.raw.to_string().as_bytes()).await;
            out.push(ItemAnswer::refused(Some(m.id), 422, "unknown_number", msg));
            continue;
        }
        out.push(one(st, provider, m, origin).await?);
    }
    Ok(out)
}

async fn keep(st: &AppState, origin: &Origin<'_>, reason: &str, body: &[u8]) {
    match origin {
        Origin::Push {
            route, headers, ip, ..
        } => quarantine::keep(st, route, reason, headers, *ip, body).await,
        Origin::Pull { route } => {
            quarantine::keep(st, route, reason, &HeaderMap::new(), None, body).await
        }
    }
}

async fn one(
    st: &AppState,
    provider: &str,
    m: MoItem,
    origin: &Origin<'_>,
) -> Result<ItemAnswer, MoError> {
    let now = st.ledger.clock().now();
    let mut raw = m.raw.clone();
    let mut time = m.time;
    if let Some(t) = m.time
        && let Some(why) = implausible_time(t, now, st.ledger.calendar())
    {
        // The movement is real even when the provider's clock is not: record it at receipt.
        tracing::warn!(provider, id = %m.id, provider_time = %t, why, "implausible provider time; receipt time used");
        if let Value::Object(map) = &mut raw {
            map.insert(
                "relay_time_note".into(),
                Value::String(format!(
                    "provider time {} is {why}; receipt time used",
                    t.to_rfc3339()
                )),
            );
        }
        time = None;
    }
    let (ip, user_agent) = match origin {
        Origin::Push { ip, user_agent, .. } => (*ip, user_agent.clone()),
        Origin::Pull { .. } => (None, None),
    };
    let input = MoInput {
        provider: provider.to_string(),
        message_id: m.id.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
        body: m.body.clone(),
        received_at: time,
        raw,
        ip,
        user_agent,
    };
    match inbound::handle(st, input).await {
        Ok(outcome) => {
            enqueue_reply(st, provider, &m, &outcome).await;
            Ok(ItemAnswer {
                id: Some(m.id),
                status: 200,
                code: None,
                outcome: Some(outcome),
                error: None,
                known: false,
            })
        }
        Err(MoError::Ledger(LedgerError::Calendar(e))) => Ok(ItemAnswer::refused(
            Some(m.id),
            422,
            "invalid_time",
            format!("cannot compute the İYS deadline: {e}"),
        )),
        Err(e @ (MoError::Ledger(_) | MoError::Store(_))) => Err(e),
        Err(e) => {
            let (status, code) = match &e {
                MoError::UnknownNumber(_) => (422, "unknown_number"),
                MoError::BadSender(_) => (422, "invalid_sender"),
                MoError::RateLimited(_) => (429, "rate_limited"),
                _ => (422, "refused"),
            };
            if status == 422 {
                keep(st, origin, &e.to_string(), m.raw.to_string().as_bytes()).await;
            }
            Ok(ItemAnswer::refused(Some(m.id), status, code, e.to_string()))
        }
    }
}

/// Puts the free reply in the outbox: once per message, whatever the number of deliveries. A
/// failure here is logged and never undoes or delays the recorded movement.
async fn enqueue_reply(st: &AppState, provider: &str, m: &MoItem, out: &MoOutcome) {
    let Some(text) = &out.reply else { return };
    if out.recorded.as_ref().is_some_and(|r| r.duplicate) {
        return;
    }
    if !super::replies_outbox::can_reply(st, provider) {
        return;
    }
    let now = st.ledger.clock().now();
    if let Err(e) = st
        .ledger
        .store()
        .enqueue_sms_reply(provider, &m.id, &m.from, text, now)
        .await
    {
        let to = Recipient::parse(&m.from).map_or_else(|_| "<unparsed>".into(), |r| r.masked());
        tracing::error!(provider, to = %to, error = %chain(&e), "SMS reply not queued");
    } else {
        st.sms.reply_wake.notify_one();
    }
}
