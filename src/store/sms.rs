//! Storage for the SMS providers (`crate::channels::sms::providers`): each inbox poller's
//! durable cursor with its leader lease, which provider message ids are already known, and the
//! outbox of free replies. Implemented in `postgres/sms.rs` and
//! (SQLite) `sql_sms.rs`. One method = one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use crate::domain::time::to_ms;

/// A reply waiting in (or taken from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmsReply {
    pub id: i64,
    pub provider: String,
    pub provider_message_id: String,
    pub recipient: String,
    pub body: String,
    pub state: ReplyState,
    pub attempts: i64,
    pub due_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The provider's id for the sent message (campaign / job / order id).
    pub provider_ref: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyState {
    Pending,
    Leased,
    Sent,
    /// Given up after the last retry, or refused for good by the provider.
    Failed,
    /// The provider refused because the person opted out there (Twilio 21610): evidence kept.
    OptedOut,
}

impl ReplyState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyState::Pending => "pending",
            ReplyState::Leased => "leased",
            ReplyState::Sent => "sent",
            ReplyState::Failed => "failed",
            ReplyState::OptedOut => "opted_out",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            ReplyState::Pending,
            ReplyState::Leased,
            ReplyState::Sent,
            ReplyState::Failed,
            ReplyState::OptedOut,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// How one send attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    Sent {
        provider_ref: String,
    },
    Retry {
        due_at: DateTime<Utc>,
        error: String,
    },
    Failed {
        error: String,
    },
    OptedOut {
        error: String,
    },
}

impl ReplyOutcome {
    /// The columns an outcome writes: (state, due at, last error, provider reference).
    pub(super) fn columns(&self) -> (ReplyState, Option<i64>, Option<&str>, Option<&str>) {
        match self {
            ReplyOutcome::Sent { provider_ref } => {
                (ReplyState::Sent, None, None, Some(provider_ref.as_str()))
            }
            ReplyOutcome::Retry { due_at, error } => (
                ReplyState::Pending,
                Some(to_ms(*due_at)),
                Some(error.as_str()),
                None,
            ),
            ReplyOutcome::Failed { error } => {
                (ReplyState::Failed, None, Some(error.as_str()), None)
            }
            ReplyOutcome::OptedOut { error } => {
                (ReplyState::OptedOut, None, Some(error.as_str()), None)
            }
        }
    }
}

/// A poller's row as its leader reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollCursor {
    /// Provider-specific JSON; empty before the first successful poll.
    pub cursor: String,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[async_trait]
pub trait SmsStore: Send + Sync {
    /// Takes (or renews) the poll lease of `provider` for `owner` until `lease_until`, when no
    /// other replica holds an unexpired one; returns the cursor, or `None` when another replica
    /// leads. The row is created on first use.
    async fn claim_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<PollCursor>, StoreError>;

    /// Stores the cursor after a poll (`error` = None: it succeeded), fenced by the lease owner;
    /// `false` when `owner` no longer holds the lease (nothing written).
    async fn save_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        cursor: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up (shutdown), so another replica takes over at once.
    async fn release_sms_poll(&self, provider: &str, owner: &str) -> Result<(), StoreError>;

    /// Which of `ids` the ledger already holds for `provider` (recorded movements and kept
    /// inbound messages).
    async fn known_provider_messages(
        &self,
        provider: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError>;

    /// Adds a reply due at `now`; `false` when one exists for this message already.
    async fn enqueue_sms_reply(
        &self,
        provider: &str,
        provider_message_id: &str,
        recipient: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Leases up to `limit` due replies (pending and due, or leased with a lapsed lease), oldest
    /// first; the attempt counter goes up with each claim.
    async fn claim_sms_replies(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SmsReply>, StoreError>;

    /// Ends one attempt, fenced by the lease owner; `false` when the lease was lost.
    async fn finish_sms_reply(
        &self,
        id: i64,
        owner: &str,
        outcome: &ReplyOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The reply for one inbound message, if any.
    async fn sms_reply_for(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SmsReply>, StoreError>;
}
