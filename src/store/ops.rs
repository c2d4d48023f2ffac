//! Storage for the operations CLI (`requeue`, `export`, `reconcile`, `import`): operator
//! actions on report jobs and the read-outs an audit or a reconciliation needs. Implemented in
//! `postgres/ops.rs` and (SQLite) `sql_ops.rs`. One method = one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::queue::{Alert, Attempt};
use super::{JobState, JobTimes, ReportJob, StoreError};

#[async_trait]
pub trait OpsStore: Send + Sync {
    /// The jobs with these ids (any order; unknown ids are absent).
    async fn jobs_by_ids(&self, ids: &[i64]) -> Result<Vec<ReportJob>, StoreError>;

    /// Up to `limit` jobs in `state`, oldest first.
    async fn jobs_in_state(
        &self,
        state: JobState,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError>;

    /// An operator requeue: a `failed` or `expired` job goes back to `pending`, due `now`, with
    /// `times`' target and deadline; attempts are kept. Its failed/expired alerts are replaced
    /// by one `requeued` alert whose detail accumulates `detail` (so a new failure alerts again
    /// and the history stays readable). `false` when the job is in any other state.
    async fn requeue_job(
        &self,
        job_id: i64,
        times: JobTimes,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Still-pending jobs become `failed` with `reason` and a failed alert each; returns how
    /// many changed (a job a reporter already claimed is left to the reporter).
    async fn fail_pending_jobs(
        &self,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// A still-pending job gets new times; `false` when it is no longer pending.
    async fn reschedule_pending_job(
        &self,
        job_id: i64,
        times: JobTimes,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The attempt rows of an async batch (they carry no job id), oldest first.
    async fn attempts_for_batch(&self, request_id: &str) -> Result<Vec<Attempt>, StoreError>;

    /// Every alert ever raised for a job, oldest first.
    async fn alerts_for_job(&self, job_id: i64) -> Result<Vec<Alert>, StoreError>;

    /// Which of `transaction_ids` the ledger knows for the brand: İYS movements it recorded
    /// (provider `iys`) and report jobs İYS accepted with that id.
    async fn known_transaction_ids(
        &self,
        brand_code: i64,
        transaction_ids: &[String],
    ) -> Result<Vec<String>, StoreError>;

    /// `done` jobs of the brand with a transaction id, finished in `[from, to)`.
    async fn done_jobs_between(
        &self,
        brand_code: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportJob>, StoreError>;
}
