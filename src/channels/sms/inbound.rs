//! The provider-independent core of an inbound SMS: route → rate-limit → parse → record → reply.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::channel::SmsChannel;
use super::replies::reply;
use crate::config::Config;
use crate::domain::keywords::{ParsedSms, SmsIntent, parse_sms};
use crate::domain::provider_id::ProviderIdError;
use crate::domain::{
    Channel, ConsentIntent, ConsentType, Evidence, ProviderMessageId, Recipient, RecipientType,
    Source, Status,
};
use crate::ledger::LedgerError;
use crate::state::AppState;
use crate::store::{InboundMessage, RecordOutcome, StoreError};

/// One inbound message, as any provider delivered it.
#[derive(Debug, Clone)]
pub struct MoInput {
    pub provider: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub received_at: Option<DateTime<Utc>>,
    pub raw: serde_json::Value,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MoOutcome {
    #[serde(flatten)]
    pub parsed: ParsedSms,
    /// The free reply to send back (None: no reply).
    pub reply: Option<String>,
    /// The ledger event, for recognised opt-outs/opt-ins.
    pub recorded: Option<RecordOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum MoError {
    #[error("number {0} is not configured in sms.numbers")]
    UnknownNumber(String),
    #[error("sender is not a valid phone number: {0}")]
    BadSender(crate::domain::recipient::RecipientError),
    #[error("the provider's message id {0}")]
    BadMessageId(ProviderIdError),
    /// A time the business-day calendar cannot place (outside its years): the item is refused,
    /// not the service.
    #[error("the message time cannot be placed on the business-day calendar: {0}")]
    TimeOutOfRange(crate::domain::calendar::CalendarError),
    #[error("too many messages from this sender; retry in {0:?}")]
    RateLimited(Duration),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MoError {
    /// An authenticated message we could not read (kept in quarantine for review), as opposed
    /// to a refusal (rate limit) or an outage.
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self,
            MoError::UnknownNumber(_) | MoError::BadSender(_) | MoError::BadMessageId(_)
        )
    }
}

impl From<LedgerError> for MoError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Calendar(c) => MoError::TimeOutOfRange(c),
            other => MoError::Ledger(other),
        }
    }
}

/// What the service would do with `body` sent to `to`, without recording (for `parse-sms`).
pub fn classify(sms: &SmsChannel, to: &str, body: &str) -> Result<ParsedSms, MoError> {
    let brands = sms
        .directory
        .brands_for(to)
        .ok_or_else(|| MoError::UnknownNumber(to.chars().take(20).collect()))?;
    Ok(parse_sms(body, brands))
}

/// The free reply for a parsed message (brand name, or the brand words to choose from).
pub fn reply_text(
    config: &Config,
    sms: &SmsChannel,
    to: &str,
    parsed: &ParsedSms,
) -> Option<String> {
    let brand = parsed.brand_code.and_then(|c| config.brand_by_code(c));
    let choices: Vec<String> = sms
        .directory
        .brands_for(to)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b.words.first().cloned())
        .collect();
    reply(
        parsed.intent,
        sms.config.reply_language,
        brand.map(|b| b.name.as_str()),
        &choices,
        sms.config.reply_to_unrecognised,
    )
}

/// Every SMS adapter ends here, so the checks below hold for each provider, present or future.
pub async fn handle(st: &AppState, m: MoInput) -> Result<MoOutcome, MoError> {
    let sms = &st.sms;
    // The dedupe key reaches a unique index: the same refusal on both backends, before any IO.
    let message_id = ProviderMessageId::parse(&m.message_id)
        .map_err(MoError::BadMessageId)?
        .into_string();
    let parsed = classify(sms, &m.to, &m.body)?;
    let sender = Recipient::parse_for(&m.from, ConsentType::Mesaj).map_err(MoError::BadSender)?;
    st.limits
        .sms_sender
        .check(sender.as_str())
        .map_err(MoError::RateLimited)?;

    let brand = parsed.brand_code.and_then(|c| st.config.brand_by_code(c));
    let text = reply_text(&st.config, sms, &m.to, &parsed);
    let now = st.ledger.clock().now();

    let status = match (parsed.intent, brand) {
        (SmsIntent::OptOut, Some(_)) => Some(Status::Ret),
        (SmsIntent::OptIn, Some(_)) => Some(Status::Onay),
        _ => None,
    };
    let recorded = match (status, brand) {
        (Some(status), Some(brand)) => {
            tracing::info!(provider = %m.provider, sender = %sender, brand = brand.key, ?status, "SMS keyword recorded");
            Some(
                st.ledger
                    .record(ConsentIntent {
                        brand_code: brand.brand_code,
                        recipient: sender,
                        recipient_type: RecipientType::Bireysel,
                        consent_type: ConsentType::Mesaj,
                        status,
                        source: Source::HsMesaj,
                        channel: Channel::Sms,
                        // A provider's own receipt time is kept only when it is not in our future.
                        consent_at: m.received_at.map_or(now, |t| t.min(now)),
                        provider: m.provider.clone(),
                        provider_message_id: message_id.clone(),
                        evidence: Evidence {
                            raw: m.raw,
                            ip: m.ip.map(|i| i.to_string()),
                            user_agent: m.user_agent.clone(),
                            call_id: None,
                        },
                    })
                    .await?,
            )
        }
        _ => {
            if parsed.intent != SmsIntent::Help {
                st.ledger
                    .keep_inbound(InboundMessage {
                        provider: m.provider.clone(),
                        provider_message_id: message_id.clone(),
                        received_at: now,
                        sender: sender.as_str().to_string(),
                        // The configured number it matched, not the raw field: a `To` with stray
                        // bytes (a NUL) still matches by its digits but must not reach SQL.
                        receiver: sms.directory.configured_number(&m.to).map_or_else(
                            || super::routing::normalise_number(&m.to),
                            str::to_string,
                        ),
                        intent: serde_json::to_value(parsed.intent)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        raw: m.raw,
                    })
                    .await?;
            }
            None
        }
    };
    Ok(MoOutcome {
        parsed,
        reply: text,
        recorded,
    })
}
