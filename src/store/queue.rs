//! The reporter's storage: claiming report jobs with a lease, finishing them with fencing, async
//! batches, the attempt log, pull cursors, deadline alerts and the cross-replica İYS pacing slot.
//! Implemented in `postgres/queue.rs` and (SQLite) `sql_queue.rs`. One method = one
//! transaction; none is ever held across an HTTP call.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ReportJob, StoreError, StoredEvent};
use crate::domain::Address;
use crate::domain::Status;
use crate::domain::time::to_ms;

/// Proof that the caller still owns a job when it finishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// A claimed job: the lease owner and the attempt number of that claim.
    Lease { owner: String, attempts: i64 },
    /// A job waiting in an async batch: only that batch's poll may finish it.
    Batch { request_id: String },
}

/// How a job leaves the hands of the worker that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// İYS holds this movement (accepted, or it already held exactly this status).
    Done { transaction_id: Option<String> },
    /// A newer movement for the address wins; the evidence stays.
    Superseded { reason: String },
    /// İYS holds a newer word than this movement, one the ledger did not know (now recorded
    /// from İYS): superseded, with an alert so an operator sees the divergence and its reason.
    SupersededByIys { reason: String },
    /// A RET for an address İYS holds no ONAY for.
    NothingToRevoke,
    /// İYS refused it permanently: an error alert is raised.
    Failed { error: String },
    /// The deadline passed (or İYS said H467): an error alert is raised.
    Expired { error: String },
    /// Back to `pending`, due again at `due_at`.
    Retry {
        due_at: DateTime<Utc>,
        error: String,
    },
    /// İYS refused the date (H178) because it holds another word from that very second: back
    /// to `pending`, due now, to be sent dated no earlier than `iys_date`.
    ResendAfter {
        iys_date: DateTime<Utc>,
        error: String,
    },
    /// Not sent this time (another item failed first); due again at `due_at`, no error recorded.
    Release { due_at: DateTime<Utc> },
}

/// The columns an outcome writes: (state, transaction id, last error, due at, attempts to give back).
pub(super) fn outcome_columns(
    o: &JobOutcome,
) -> (&'static str, Option<&str>, Option<&str>, Option<i64>, i64) {
    match o {
        JobOutcome::Done { transaction_id } => ("done", transaction_id.as_deref(), None, None, 0),
        JobOutcome::Superseded { reason } | JobOutcome::SupersededByIys { reason } => {
            ("superseded", None, Some(reason), None, 0)
        }
        JobOutcome::NothingToRevoke => (
            "nothing_to_revoke",
            None,
            Some("İYS holds no ONAY for this address: nothing to revoke"),
            None,
            0,
        ),
        JobOutcome::Failed { error } => ("failed", None, Some(error), None, 0),
        JobOutcome::Expired { error } => ("expired", None, Some(error), None, 0),
        JobOutcome::Retry { due_at, error } => {
            ("pending", None, Some(error), Some(to_ms(*due_at)), 0)
        }
        // Not attempted: the claim's attempt is given back so back-off does not grow.
        JobOutcome::Release { due_at } => ("pending", None, None, Some(to_ms(*due_at)), 1),
        JobOutcome::ResendAfter { error, .. } => ("pending", None, Some(error), None, 0),
    }
}

/// A batch accepted by İYS (202), with its jobs in submission order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub request_id: String,
    pub brand_code: i64,
    pub submitted_at: DateTime<Utc>,
    /// No poll before this (İYS: at least 300 s after submission).
    pub poll_after: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Waiting for İYS to process it.
    Submitted,
    /// Every item has an outcome.
    Complete,
    /// İYS never answered; its open jobs went back to the queue.
    Abandoned,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Submitted => "submitted",
            BatchState::Complete => "complete",
            BatchState::Abandoned => "abandoned",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Submitted, Self::Complete, Self::Abandoned]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IysBatch {
    pub request_id: String,
    pub brand_code: i64,
    pub submitted_at: DateTime<Utc>,
    pub poll_after: DateTime<Utc>,
    pub polls: i64,
    pub items: i64,
    pub state: BatchState,
}

/// İYS's health for one brand, shared by every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrandHealth {
    pub brand_code: i64,
    /// Consecutive outage answers (5xx, timeouts, 429, edge pages) since the last good one.
    pub failures: i64,
    /// No job of the brand is claimed before this; then one probe at a time.
    pub paused_until: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// A consentDate that may already be at İYS for an address: one a job sent (`job_id`), or an
/// `IYS_*` movement the ledger holds (`job_id` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentDate {
    pub address: Address,
    pub job_id: Option<i64>,
    pub at: DateTime<Utc>,
    /// An ONAY a job sent that İYS never confirmed (a batch whose acceptance a crash lost, a
    /// call that timed out): it may still land at İYS.
    pub unconfirmed_onay: bool,
}

/// One HTTP call to İYS, as the attempt log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub job_id: Option<i64>,
    pub batch_id: Option<String>,
    pub brand_code: Option<i64>,
    pub operation: String,
    pub method: String,
    /// Without query string or recipient.
    pub path: String,
    pub status: Option<i64>,
    pub code: Option<String>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Still open past the internal target (warning).
    TargetMissed,
    /// The legal deadline passed before İYS accepted it (error).
    Expired,
    /// İYS refused it permanently (error).
    Failed,
    /// An operator sent a failed or expired job back to the queue (info; notes the history).
    Requeued,
    /// İYS held a newer word than the relay's movement; it was brought into the ledger (warning).
    IysNewer,
    /// The audit found İYS and the ledger disagreeing and could not repair it (error).
    AuditDivergence,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::TargetMissed => "target_missed",
            AlertKind::Expired => "expired",
            AlertKind::Failed => "failed",
            AlertKind::Requeued => "requeued",
            AlertKind::IysNewer => "iys_newer",
            AlertKind::AuditDivergence => "audit_divergence",
        }
    }
    pub fn severity(self) -> &'static str {
        match self {
            AlertKind::TargetMissed | AlertKind::IysNewer => "warning",
            AlertKind::Expired | AlertKind::Failed | AlertKind::AuditDivergence => "error",
            AlertKind::Requeued => "info",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::TargetMissed,
            Self::Expired,
            Self::Failed,
            Self::Requeued,
            Self::IysNewer,
            Self::AuditDivergence,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub job_id: i64,
    pub kind: AlertKind,
    pub severity: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ReportQueue: Send + Sync {
    /// Leases up to `limit` due jobs (pending and due, or leased with a lapsed lease), nearest
    /// deadline first, and counts an attempt on each. PostgreSQL skips rows other replicas lock.
    ///
    /// Per-address ordering: a job is not claimed while another job of its address is inside an
    /// async batch or under a live lease, so at most one movement per address is in flight at
    /// İYS. Per-brand pacing: no job of a paused brand is claimed; a brand whose pause lapsed
    /// while it was failing gets exactly one job claimed (the probe) and stays held back for a
    /// lease, for every replica, until the probe's outcome is known.
    async fn claim_jobs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError>;

    /// Applies `outcome` if `fence` still holds; `false` means someone else owns the job now.
    /// Done also marks the address state confirmed (when it is this job's event) and supersedes
    /// older pending jobs of the address; Failed and Expired raise an alert.
    async fn finish_job(
        &self,
        job_id: i64,
        fence: &Fence,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Every brand with a recorded İYS failure (a small table: one row per failing brand).
    async fn brand_health(&self) -> Result<Vec<BrandHealth>, StoreError>;

    /// İYS failed for the brand: one more failure, paused until at least `until`.
    async fn pause_brand(
        &self,
        brand_code: i64,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// İYS answered the brand again: jobs flow at the normal pace.
    async fn brand_recovered(&self, brand_code: i64) -> Result<(), StoreError>;

    /// Writes the consentDate each leased job is about to send (before the request leaves, so a
    /// crash cannot forget a date İYS may hold); `None` takes it back when İYS stored nothing.
    /// Jobs whose lease `owner` lost are skipped.
    async fn stamp_iys_dates(
        &self,
        owner: &str,
        dates: &[(i64, Option<DateTime<Utc>>)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every consentDate that may be at İYS for these addresses: dates jobs sent and the dates
    /// of movements the ledger has from İYS (`IYS_*` sources, records brought in from İYS).
    async fn iys_dates(&self, keys: &[Address]) -> Result<Vec<SentDate>, StoreError>;

    /// The events behind many jobs (any order; unknown ids are absent).
    async fn events_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError>;

    /// What İYS is known to hold per address: the newest of our accepted jobs, the citizens'
    /// own `IYS_*` movements and records brought in from İYS. Addresses without such knowledge
    /// are absent.
    async fn iys_known_status(
        &self,
        keys: &[Address],
    ) -> Result<Vec<(Address, Status)>, StoreError>;

    /// Records a batch İYS accepted and moves its leased jobs (in order = poll index) to
    /// `batched`. Returns how many jobs were still owned and moved.
    async fn batch_submitted(
        &self,
        batch: &NewBatch,
        jobs: &[(i64, Fence)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// Batches whose poll is due; each is pushed `lease` into the future so one replica polls it.
    async fn claim_due_batches(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<IysBatch>, StoreError>;

    /// The open jobs of a batch with their 0-based index.
    async fn batch_jobs(&self, request_id: &str) -> Result<Vec<(i64, ReportJob)>, StoreError>;

    /// After a poll: count it and set the next poll time or the final state. `Abandoned` sends
    /// the batch's still-batched jobs back to `pending` (due now).
    async fn update_batch(
        &self,
        request_id: &str,
        state: BatchState,
        poll_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn batch(&self, request_id: &str) -> Result<Option<IysBatch>, StoreError>;

    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError>;
    async fn attempts_for_job(&self, job_id: i64) -> Result<Vec<Attempt>, StoreError>;
    async fn attempt_count(&self) -> Result<i64, StoreError>;

    /// Reserves the next İYS request slot for every replica: `max(next, now)`, and moves
    /// `next` on by `spacing_ms`. The caller waits until the returned instant.
    async fn reserve_iys_slot(
        &self,
        now: DateTime<Utc>,
        spacing_ms: i64,
    ) -> Result<DateTime<Utc>, StoreError>;

    async fn sync_cursor(
        &self,
        brand_code: i64,
        source: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn set_sync_cursor(
        &self,
        brand_code: i64,
        source: &str,
        after: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Pending (or lapsed-lease) jobs past their deadline become `expired` with an error alert.
    /// Batched jobs are left alone: İYS took them in time. Returns the jobs expired now.
    async fn expire_overdue(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError>;

    /// Open jobs past their internal target that have no warning yet get one; returns them.
    async fn flag_past_target(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError>;

    /// Newest alerts first.
    async fn alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError>;
}
