//! Call-centre agent API: an agent (or their team's tool) records a consent or rejection taken
//! on a call, and looks up a caller for the agent's screen. Bearer tokens are the
//! `[[api.tokens]]`; the token's name (agent or team) becomes the provider `agent:<name>`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Europe::Istanbul;
use serde::{Deserialize, Serialize};

use crate::domain::Address;
use crate::domain::time::latest_plausible;
use crate::domain::{
    Channel, ConsentIntent, ConsentType, Evidence, ProviderMessageId, Recipient, RecipientType,
    Source, Status,
};
use crate::error::ApiError;
use crate::http::auth::ApiCaller;
use crate::http::consents::resolve_brand;
use crate::http::json::{ApiJson, ApiQuery};
use crate::http::request_meta::{self, Peer};
use crate::ledger::SuppressionAnswer;
use crate::state::AppState;
use crate::store::StoredEvent;

/// İYS refuses consents taken more than this many business days ago (H467).
pub const IYS_WINDOW_BUSINESS_DAYS: u32 = 3;
/// A consent must be at least this far inside İYS's window when the agent records it. The
/// reporter needs time to send it (queue, batching, retries after a transient İYS failure), and
/// İYS checks the window against its own clock when the movement arrives, not when we took it.
pub const IYS_WINDOW_SAFETY_MARGIN_MINUTES: i64 = 10;
/// Events shown on the agent's screen.
pub const RECENT_EVENTS: usize = 20;
const MAX_REF_LEN: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/consents", post(record))
        .route("/v1/agent/consents/{recipient}", get(lookup))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConsentRequest {
    /// Brand key or İYS brand code; optional when one brand is configured.
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    pub status: Status,
    pub recipient: String,
    #[serde(default)]
    pub recipient_type: Option<RecipientType>,
    /// The telephony system's id for the call (CallSid, PBX unique id…).
    pub call_reference: String,
    pub agent_id: String,
    /// Where the call recording is kept (https only).
    #[serde(default)]
    pub recording_url: Option<String>,
    /// When the person said yes/no (RFC 3339); default: now.
    #[serde(default)]
    pub consent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentConsentResponse {
    pub event_id: i64,
    pub duplicate: bool,
    /// End of the third business day after the consent date: İYS must hold it by then.
    pub deadline_at: Option<DateTime<Utc>>,
}

/// An identifier that becomes (part of) the dedupe key: the provider-id rule, same as every
/// webhook's.
fn id_field(name: &str, v: &str) -> Result<(), ApiError> {
    ProviderMessageId::parse(v)
        .map(|_| ())
        .map_err(|e| ApiError::unprocessable("invalid_field", format!("{name} {e}")))
}

pub(crate) fn text_field(name: &str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.len() > MAX_REF_LEN || v.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{name} must be 1–{MAX_REF_LEN} printable characters"),
        ));
    }
    Ok(())
}

/// Refuses a consent date İYS would refuse: in the future, or older than now minus
/// [`IYS_WINDOW_BUSINESS_DAYS`] business days (İYS compares full timestamps, so the end of the
/// third business day is already too late), less [`IYS_WINDOW_SAFETY_MARGIN_MINUTES`].
pub fn check_consent_at(
    st: &AppState,
    consent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    // Agents' PCs drift: a little ahead of our clock is accepted (and recorded as now).
    if consent_at > latest_plausible(now) {
        return Err(ApiError::unprocessable(
            "consent_at_in_future",
            "consent_at is in the future",
        ));
    }
    let too_old = |why: String| {
        ApiError::unprocessable(
            "consent_too_old",
            format!(
                "consent_at is {why}: İYS refuses consents taken more than \
                 {IYS_WINDOW_BUSINESS_DAYS} business days ago (H467), and the relay keeps a \
                 {IYS_WINDOW_SAFETY_MARGIN_MINUTES}-minute margin to deliver it; record it \
                 through the İYS web interface instead"
            ),
        )
    };
    match st
        .ledger
        .calendar()
        .business_days_before(now, IYS_WINDOW_BUSINESS_DAYS)
    {
        Ok(cutoff) => {
            let earliest = cutoff + Duration::minutes(IYS_WINDOW_SAFETY_MARGIN_MINUTES);
            if consent_at >= earliest {
                return Ok(());
            }
            let local = earliest
                .with_timezone(&Istanbul)
                .format("%Y-%m-%d %H:%M:%S");
            Err(too_old(format!("before {local} Istanbul time")))
        }
        Err(_) => Err(too_old("outside the holiday calendar".into())),
    }
}

/// `POST /v1/agent/consents`: 201 with the event, 200 when it was already recorded.
#[utoipa::path(
    post, path = "/v1/agent/consents", tag = "agent",
    summary = "Record a consent or rejection a caller gave an agent",
    request_body = AgentConsentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "dedupe key for retries")),
    responses(
        (status = 201, description = "recorded", body = AgentConsentResponse),
        (status = 200, description = "already recorded (a retry)", body = AgentConsentResponse),
        crate::error::WriteErrors,
        (status = 409, description = "the same key was used for another movement", body = crate::error::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn record(
    State(st): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AgentConsentRequest>,
) -> Result<Response, ApiError> {
    let brand = resolve_brand(&st, req.brand.as_deref())?;
    id_field("call_reference", &req.call_reference)?;
    text_field("agent_id", &req.agent_id)?;
    // A new MESAJ consent for a landline would only be refused by İYS later (H121).
    let recipient = Recipient::parse_registrable(&req.recipient, req.consent_type)
        .map_err(|e| ApiError::unprocessable("invalid_recipient", e.to_string()))?;
    if let Some(u) = &req.recording_url
        && !url::Url::parse(u).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
    {
        return Err(ApiError::unprocessable(
            "invalid_recording_url",
            "recording_url must be an https:// URL",
        ));
    }
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or(""));
    if let Some(k) = idempotency_key {
        id_field("Idempotency-Key", k)?;
    }
    let now = st.ledger.clock().now();
    let consent_at = req.consent_at.unwrap_or(now);
    check_consent_at(&st, consent_at, now)?;

    let recipient_type = req.recipient_type.unwrap_or(RecipientType::Bireysel);
    let message_id = idempotency_key
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}:{}:{}", req.call_reference, req.consent_type, req.status));
    let ip = request_meta::client_ip(&st.config.server, &headers, peer);
    let intent = ConsentIntent {
        brand_code: brand.brand_code,
        recipient: recipient.clone(),
        recipient_type,
        consent_type: req.consent_type,
        status: req.status,
        source: Source::HsCagriMerkezi,
        channel: Channel::Agent,
        // An agent's clock slightly ahead of ours must not put the consent in our future.
        consent_at: consent_at.min(now),
        provider: format!("agent:{caller}"),
        provider_message_id: message_id,
        evidence: Evidence {
            raw: serde_json::to_value(&req).unwrap_or_default(),
            ip: ip.map(|i| i.to_string()),
            user_agent: headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            call_id: Some(req.call_reference.clone()),
        },
    };
    let out = st.ledger.record(intent).await?;
    if out.duplicate
        && idempotency_key.is_some()
        && !same_movement(
            &st,
            out.event_id,
            &recipient,
            brand.brand_code,
            &req_movement(&req),
        )
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different consent",
        ));
    }
    tracing::info!(
        agent = %caller,
        recipient = %recipient.masked(),
        brand_code = brand.brand_code,
        consent_type = %req.consent_type,
        status = %req.status,
        duplicate = out.duplicate,
        "agent consent recorded"
    );
    let code = if out.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = AgentConsentResponse {
        event_id: out.event_id,
        duplicate: out.duplicate,
        deadline_at: out.deadline_at,
    };
    Ok((code, Json(body)).into_response())
}

fn req_movement(req: &AgentConsentRequest) -> (ConsentType, Status) {
    (req.consent_type, req.status)
}

/// Whether the stored event `event_id` is the same movement (recipient, brand, type, status):
/// a dedupe key reused for a different one is a client bug the caller answers with 409.
pub(crate) async fn same_movement(
    st: &AppState,
    event_id: i64,
    recipient: &Recipient,
    brand_code: i64,
    &(consent_type, status): &(ConsentType, Status),
) -> Result<bool, ApiError> {
    let Some(ev) = st.ledger.store().event(event_id).await? else {
        return Ok(true);
    };
    Ok(ev.recipient == recipient.as_str()
        && ev.brand_code == brand_code
        && ev.consent_type == consent_type
        && ev.status == status)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentLookupQuery {
    pub brand: Option<String>,
    #[serde(default)]
    pub recipient_type: Option<RecipientType>,
}

/// One event on the agent's screen (no raw evidence).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventSummary {
    pub id: i64,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    pub status: Status,
    pub source: Source,
    pub channel: Channel,
    pub provider: String,
    pub consent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

impl From<StoredEvent> for EventSummary {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            consent_type: e.consent_type,
            status: e.status,
            source: e.source,
            channel: e.channel,
            provider: e.provider,
            consent_at: e.consent_at,
            received_at: e.received_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentLookup {
    pub recipient: String,
    pub brand_code: i64,
    /// One answer per type that applies to this recipient (ARAMA + MESAJ for a phone number,
    /// EPOSTA for an e-mail address).
    pub answers: Vec<SuppressionAnswer>,
    /// Newest first, at most [`RECENT_EVENTS`].
    pub recent_events: Vec<EventSummary>,
}

/// `GET /v1/agent/consents/{recipient}?brand=`
#[utoipa::path(
    get, path = "/v1/agent/consents/{recipient}", tag = "agent",
    summary = "A caller on the agent's screen: the answers per type and the latest movements",
    params(("recipient" = String, Path, description = "phone (any Turkish form) or e-mail"), AgentLookupQuery),
    responses(
        (status = 200, description = "answers and recent events", body = AgentLookup),
        crate::error::ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn lookup(
    State(st): State<AppState>,
    _caller: ApiCaller,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<AgentLookupQuery>,
) -> Result<Json<AgentLookup>, ApiError> {
    let brand = resolve_brand(&st, q.brand.as_deref())?;
    let recipient = Recipient::parse(&raw)
        .map_err(|e| ApiError::unprocessable("invalid_recipient", e.to_string()))?;
    let recipient_type = q.recipient_type.unwrap_or(RecipientType::Bireysel);
    let mut answers = Vec::new();
    for &t in ConsentType::ALL {
        if recipient.check_type(t).is_err() {
            continue;
        }
        let key = Address {
            brand_code: brand.brand_code,
            recipient: recipient.as_str().to_string(),
            recipient_type,
            consent_type: t,
        };
        answers.push(
            st.ledger
                .policy
                .ask(st.ledger.store().as_ref(), &key)
                .await?,
        );
    }
    let mut events: Vec<StoredEvent> = st
        .ledger
        .store()
        .events_for_recipient(recipient.as_str())
        .await?
        .into_iter()
        .filter(|e| e.brand_code == brand.brand_code && e.recipient_type == recipient_type)
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.id));
    events.truncate(RECENT_EVENTS);
    Ok(Json(AgentLookup {
        recipient: recipient.as_str().to_string(),
        brand_code: brand.brand_code,
        answers,
        recent_events: events.into_iter().map(EventSummary::from).collect(),
    }))
}
