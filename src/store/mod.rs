//! Storage: the only place with SQL.
//!
//! `trait Store` is what the rest of the service sees, with one implementation per backend
//! chosen by URL: [`PgStore`] (`postgres/`) over sqlx's native PostgreSQL driver, and
//! [`SqliteStore`] (`sqlite/`) over rusqlite, with its writer on a thread of its own.
//! One trait method = one use-case step = one transaction, except the long writers that say
//! they commit in slices (link mints, the reporter's claims on SQLite).

pub mod audit;
pub mod console;
mod links;
pub mod ops;
mod postgres;
pub mod queue;
pub mod sms;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Address, Channel, ConsentIntent, ConsentType, RecipientType, Source, Status};

pub use audit::AuditStore;
pub use console::ConsoleStore;
pub use links::{Link, NewLink};
pub use ops::OpsStore;
pub use postgres::PgStore;
pub use queue::ReportQueue;
pub use sms::SmsStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction holding a write could not be committed; nothing of it was kept.
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store was opened read-only (beside a running serve); this command writes")]
    ReadOnly,
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://path or postgres://...")]
    UnsupportedUrl(String),
    #[error(
        "another iys-relay process holds the SQLite database lock {0}; SQLite is single-instance (use PostgreSQL for replicas)"
    )]
    Locked(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// When a report job is due, and by when it must be in İYS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobTimes {
    pub due_at: DateTime<Utc>,
    pub target_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
}

/// An intent ready to be written: the ledger has computed its report deadline (if reportable).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub intent: ConsentIntent,
    pub received_at: DateTime<Utc>,
    pub report: Option<JobTimes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    pub event_id: i64,
    /// True when this provider message id was already recorded: nothing was changed.
    pub duplicate: bool,
    pub job_id: Option<i64>,
    pub deadline_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentState {
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub status: Status,
    pub source: Source,
    pub channel: Channel,
    pub consent_at: DateTime<Utc>,
    pub event_id: i64,
    /// True once İYS holds this state (accepted report, or a change pulled from İYS).
    pub iys_confirmed: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub status: Status,
    pub source: Source,
    pub channel: Channel,
    pub consent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub provider: String,
    pub provider_message_id: String,
    pub evidence: serde_json::Value,
}

/// Life of a report job. Terminal states: done, superseded, nothing_to_revoke, failed, expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `due_at`.
    Pending,
    /// Claimed by a reporter (lease), an HTTP call may be under way.
    Leased,
    /// Sent in an async İYS batch; waiting for the poll.
    Batched,
    /// İYS accepted it (or already held exactly this state).
    Done,
    /// A newer movement for the same address was reported instead; evidence kept.
    Superseded,
    /// A RET for an address İYS has no ONAY for: nothing to revoke there.
    NothingToRevoke,
    /// İYS refused it permanently (validation); needs an operator.
    Failed,
    /// The legal deadline passed before İYS accepted it.
    Expired,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Pending,
        JobState::Leased,
        JobState::Batched,
        JobState::Done,
        JobState::Superseded,
        JobState::NothingToRevoke,
        JobState::Failed,
        JobState::Expired,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Leased => "leased",
            JobState::Batched => "batched",
            JobState::Done => "done",
            JobState::Superseded => "superseded",
            JobState::NothingToRevoke => "nothing_to_revoke",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.as_str() == s)
    }
    pub fn is_open(self) -> bool {
        matches!(
            self,
            JobState::Pending | JobState::Leased | JobState::Batched
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportJob {
    pub id: i64,
    pub event_id: i64,
    pub address: Address,
    pub consent_at: DateTime<Utc>,
    pub state: JobState,
    pub due_at: DateTime<Utc>,
    pub target_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub batch_id: Option<String>,
    pub transaction_id: Option<String>,
    pub last_error: Option<String>,
    /// The consentDate (whole seconds) this job sends to İYS, once it has been sent.
    pub iys_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueSummary {
    pub by_state: Vec<(String, i64)>,
    /// Open jobs with the nearest legal deadlines first.
    pub nearest: Vec<ReportJob>,
    pub oldest_open_created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub backend: Backend,
    pub applied_migrations: i64,
    pub expected_migrations: i64,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.applied_migrations >= self.expected_migrations
    }
}

/// An inbound message that was not acted on (not a command, or no brand named), kept.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    pub provider: String,
    pub provider_message_id: String,
    pub received_at: DateTime<Utc>,
    pub sender: String,
    pub receiver: String,
    pub intent: String,
    pub raw: serde_json::Value,
}

/// What keeping a quarantine item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineKept {
    pub id: i64,
    /// Oldest rows dropped to stay under the total cap.
    pub dropped: u64,
}

/// An authenticated request the service could not read, kept for review.
#[derive(Debug, Clone)]
pub struct QuarantineItem {
    pub received_at: DateTime<Utc>,
    pub route: String,
    pub reason: String,
    pub content_type: Option<String>,
    pub ip: Option<String>,
    pub body: Vec<u8>,
}

/// `Any` lets a caller holding `Arc<dyn Store>` learn which implementation a URL opened (a
/// test that the PostgreSQL path runs the native store).
#[async_trait]
pub trait Store:
    std::any::Any
    + ReportQueue
    + OpsStore
    + AuditStore
    + SmsStore
    + ConsoleStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn readiness(&self) -> Result<Readiness, StoreError>;

    /// Writes events (with their state and report jobs) and kept inbound messages in ONE
    /// transaction: the group commit. Duplicates (same provider + provider message id) return
    /// the original and change nothing.
    async fn write_batch(
        &self,
        events: &[NewEvent],
        inbound: &[InboundMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError>;

    async fn record_batch(
        &self,
        items: &[NewEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        self.write_batch(items, &[], now).await
    }

    async fn consent_state(&self, key: &Address) -> Result<Option<ConsentState>, StoreError>;
    /// States for many recipients of one brand and type (missing ones are simply absent).
    async fn consent_states(
        &self,
        brand_code: i64,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        recipients: &[String],
    ) -> Result<Vec<ConsentState>, StoreError>;

    async fn event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError>;
    async fn events_for_recipient(&self, recipient: &str) -> Result<Vec<StoredEvent>, StoreError>;
    async fn job_for_event(&self, event_id: i64) -> Result<Option<ReportJob>, StoreError>;
    async fn queue_summary(&self, nearest: i64) -> Result<QueueSummary, StoreError>;

    /// Keeps `item` and, in the same transaction, drops the oldest rows until the kept bodies
    /// total at most `max_total_bytes` (the new row always stays: callers cap a body below that).
    async fn quarantine(
        &self,
        item: &QuarantineItem,
        max_total_bytes: i64,
    ) -> Result<QuarantineKept, StoreError>;
    async fn quarantine_count(&self) -> Result<i64, StoreError>;
    /// Bytes of body the quarantine holds.
    async fn quarantine_bytes(&self) -> Result<i64, StoreError>;
    /// Drops rows received before `before`; returns how many.
    async fn expire_quarantine(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Keeps a non-command inbound message; a redelivery (same provider id) is ignored.
    async fn keep_inbound(&self, msg: &InboundMessage) -> Result<(), StoreError> {
        let now = msg.received_at;
        self.write_batch(&[], std::slice::from_ref(msg), now)
            .await
            .map(|_| ())
    }
    async fn inbound_count(&self) -> Result<i64, StoreError>;
    /// Mints short links; an existing (brand, recipient, type, campaign) returns its link (expiry
    /// extended to the later one) and gains the given code hash. A store with a single writer
    /// commits a large mint in slices; minting is idempotent, so a mint cut short by an error is
    /// completed by repeating it.
    async fn mint_links(
        &self,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<Vec<Link>, StoreError>;
    /// The link a code leads to, by the hex SHA-256 of the code.
    async fn link_by_code_hash(&self, code_hash: &str) -> Result<Option<Link>, StoreError>;
}

/// Opens the store named by `url` (`sqlite://...` or `postgres://...`).
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else if postgres::accepts(url) {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Opens the store for the CLI's read-only commands (`status`, `export`), which must work while
/// `serve` holds the SQLite database; writes through it fail.
pub async fn connect_read_only(
    url: &str,
    max_connections: u32,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect_read_only(url, max_connections).await?,
        ))
    } else {
        // PostgreSQL has no single-instance rule: the usual store reads beside a running `serve`.
        connect(url, max_connections).await
    }
}

/// A database URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
