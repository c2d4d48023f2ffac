//! What every inbound channel produces: one consent movement with its evidence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::consent::{Channel, ConsentType, RecipientType, Source, Status};
use super::recipient::Recipient;

/// A movement a channel has understood and authenticated, ready for `Ledger::record`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentIntent {
    pub brand_code: i64,
    pub recipient: Recipient,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub status: Status,
    pub source: Source,
    pub channel: Channel,
    /// When the person gave or withdrew consent (İYS `consentDate`).
    pub consent_at: DateTime<Utc>,
    /// The provider that delivered it (`twilio`, `verimor`, `web`, `agent:<team>`, `iys`).
    pub provider: String,
    /// The provider's id for this message/call/click: the dedupe key with `provider`.
    pub provider_message_id: String,
    pub evidence: Evidence,
}

impl ConsentIntent {
    /// The address this movement is about.
    pub fn address(&self) -> super::Address {
        super::Address {
            brand_code: self.brand_code,
            recipient: self.recipient.as_str().to_string(),
            recipient_type: self.recipient_type,
            consent_type: self.consent_type,
        }
    }
}

/// Proof of what was received, kept verbatim with the event (never logged).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The raw payload as received (all parameters, including unknown ones).
    pub raw: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}
