//! Storage for the İYS agreement audit (`crate::iys::audit`): the addresses the relay has
//! reported, paged with a keyset cursor, the progress row shared by replicas, and the two
//! repairs that touch the queue. Implemented in `postgres/audit.rs`
//! and (SQLite) `sql_audit.rs`. One method = one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{JobState, JobTimes, StoreError};
use crate::domain::Address;
use crate::domain::{Channel, Source, Status};

/// One address the relay has reported, with the ledger's current word for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub address: Address,
    pub status: Status,
    pub source: Source,
    pub channel: Channel,
    pub consent_at: DateTime<Utc>,
    /// The current movement (consent_state.event_id).
    pub event_id: i64,
    /// The current movement's report job, when it has one (`IYS_*` movements have none).
    pub job: Option<(i64, JobState)>,
    /// The address's newest report job: alerts are kept per job.
    pub last_job_id: i64,
    /// Jobs of the address still pending, leased or batched: the reporter is not done with it.
    pub open_jobs: i64,
}

/// The audit's row shared by every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProgress {
    pub sweep_started_at: Option<DateTime<Utc>>,
    pub sweep_finished_at: Option<DateTime<Utc>>,
    /// Divergences the last finished sweep left (see `AuditReport::remaining`).
    pub sweep_divergent: i64,
    /// Targeted checks have read jobs up to this (updated_at, id).
    pub jobs_after: (DateTime<Utc>, i64),
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Up to `limit` reported addresses after `after`, ordered by (brand, recipientType, type,
    /// recipient): the order in which İYS's multi-status query groups them.
    async fn audit_entries_after(
        &self,
        after: Option<&Address>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// The entries of these addresses (unreported or unknown ones are absent).
    async fn audit_entries(&self, keys: &[Address]) -> Result<Vec<AuditEntry>, StoreError>;

    async fn audit_progress(&self) -> Result<AuditProgress, StoreError>;

    /// Claims the full sweep for this replica when none ended after `due_before` and none was
    /// claimed after `lease_before` (a sweep still running, or one that died and is taken over
    /// once that lease passed); `false` when it is not this replica's to run.
    async fn claim_full_sweep(
        &self,
        due_before: DateTime<Utc>,
        lease_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn full_sweep_finished(
        &self,
        now: DateTime<Utc>,
        divergent: i64,
    ) -> Result<(), StoreError>;

    /// Addresses of up to `limit` jobs that ended in a state other than `done` (superseded,
    /// nothing_to_revoke, failed, expired) after the targeted cursor and no later than `cutoff`,
    /// oldest first; moves the cursor past them (to `cutoff` when fewer were found). Another
    /// replica that moved the cursor meanwhile makes this return nothing.
    async fn claim_ended_jobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Address>, StoreError>;

    /// Re-reports a movement İYS does not hold: its job (in any ended state) goes back to
    /// `pending` with `times`, `last_error` = `note`, the address is no longer İYS-confirmed,
    /// and the history is kept in a `requeued` alert as an operator requeue keeps it. `false`
    /// when the job is open again already.
    async fn reopen_job_for_audit(
        &self,
        job_id: i64,
        times: JobTimes,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// An `audit_divergence` alert on the job (one per job: a repeat updates its detail).
    async fn audit_alert(
        &self,
        job_id: i64,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
