//! Short links (web opt-out channel): what is minted and what a code leads to.

use crate::domain::{ConsentType, RecipientType};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A link to mint: the caller has already derived the code; only its hash reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// Lower-case hex SHA-256 of the code.
    pub code_hash: String,
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub campaign: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub id: i64,
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub campaign: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Link {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}
