//! [`OpsStore`] on PostgreSQL: operator actions on report jobs and the read-outs of the CLI.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::queue::insert_alerts;
use super::rows::{
    AlertRow, AttemptRow, JobRow, alert_columns, attempt_columns, convert, job_columns,
};
use super::{PgStore, Tx};
use crate::domain::time::to_ms;
use crate::store::ops::OpsStore;
use crate::store::queue::{Alert, AlertKind, Attempt};
use crate::store::{JobState, JobTimes, ReportJob, StoreError};

const JOBS_BY_IDS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM report_jobs WHERE id = ANY($1) ORDER BY id"
);
const JOBS_IN_STATE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM report_jobs WHERE state = $1 ORDER BY id LIMIT $2"
);
const DONE_JOBS_BETWEEN: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM report_jobs
     WHERE brand_code = $1 AND state = 'done' AND transaction_id IS NOT NULL
       AND updated_at_ms >= $2 AND updated_at_ms < $3
     ORDER BY updated_at_ms, id"
);
const ATTEMPTS_FOR_BATCH: &str = concat!(
    "SELECT ",
    attempt_columns!(),
    " FROM iys_attempts WHERE batch_id = $1 ORDER BY id"
);
const ALERTS_FOR_JOB: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE job_id = $1 ORDER BY id"
);

/// Sends a job in one of the `from` states back to `pending`, due at `times.due_at`, attempts
/// kept; `last_error` replaces the recorded error when given. Its failed/expired alerts are
/// folded into one `requeued` alert whose detail accumulates `detail`. Shared by the operator
/// requeue and the audit's re-report. `false` (nothing changed) when the job is in another state.
pub(super) async fn requeue_in_tx(
    tx: &mut Tx,
    job_id: i64,
    times: JobTimes,
    from: &[JobState],
    detail: &str,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let moved: Option<i64> = sqlx::query_scalar(
        "UPDATE report_jobs SET state = 'pending', due_at_ms = $2, target_at_ms = $3,
             deadline_at_ms = $4, lease_owner = NULL, lease_until_ms = NULL, batch_id = NULL,
             batch_index = NULL, last_error = COALESCE($6, last_error), updated_at_ms = $5
         WHERE id = $1 AND state = ANY($7) RETURNING id",
    )
    .bind(job_id)
    .bind(to_ms(times.due_at))
    .bind(to_ms(times.target_at))
    .bind(to_ms(times.deadline_at))
    .bind(to_ms(now))
    .bind(last_error)
    .bind(from)
    .fetch_optional(&mut **tx)
    .await?;
    if moved.is_none() {
        return Ok(false);
    }
    // The old error alerts are folded into the requeue note: alerts are unique per (job,
    // kind), so keeping them would silence the alert of a repeated failure.
    let old: Vec<(String, String)> = sqlx::query_as(
        "DELETE FROM alerts WHERE job_id = $1 AND kind IN ('failed', 'expired')
         RETURNING kind, detail",
    )
    .bind(job_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut note = detail.to_string();
    for (kind, d) in old {
        note.push_str(&format!(" [earlier {kind} alert: {d}]"));
    }
    let kind = AlertKind::Requeued;
    sqlx::query(
        "INSERT INTO alerts (job_id, kind, severity, detail, at_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (job_id, kind) DO UPDATE SET detail = alerts.detail || ' | ' || excluded.detail,
             at_ms = excluded.at_ms",
    )
    .bind(job_id)
    .bind(kind.as_str())
    .bind(kind.severity())
    .bind(note)
    .bind(to_ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

#[async_trait]
impl OpsStore for PgStore {
    async fn jobs_by_ids(&self, ids: &[i64]) -> Result<Vec<ReportJob>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        convert(
            sqlx::query_as::<_, JobRow>(JOBS_BY_IDS)
                .bind(ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn jobs_in_state(
        &self,
        state: JobState,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError> {
        convert(
            sqlx::query_as::<_, JobRow>(JOBS_IN_STATE)
                .bind(state.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn requeue_job(
        &self,
        job_id: i64,
        times: JobTimes,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let from = [JobState::Failed, JobState::Expired];
        if !requeue_in_tx(&mut tx, job_id, times, &from, detail, None, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn fail_pending_jobs(
        &self,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let failed: Vec<i64> = sqlx::query_scalar(
            "UPDATE report_jobs SET state = 'failed', last_error = $2, updated_at_ms = $3
             WHERE id = ANY($1) AND state = 'pending' RETURNING id",
        )
        .bind(ids)
        .bind(reason)
        .bind(to_ms(now))
        .fetch_all(&mut *tx)
        .await?;
        let alerts: Vec<(i64, String)> =
            failed.iter().map(|id| (*id, reason.to_string())).collect();
        insert_alerts(&mut tx, AlertKind::Failed, &alerts, now).await?;
        tx.commit().await?;
        Ok(failed.len())
    }

    async fn reschedule_pending_job(
        &self,
        job_id: i64,
        times: JobTimes,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE report_jobs SET due_at_ms = $2, target_at_ms = $3, deadline_at_ms = $4,
                 updated_at_ms = $5
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(job_id)
        .bind(to_ms(times.due_at))
        .bind(to_ms(times.target_at))
        .bind(to_ms(times.deadline_at))
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn attempts_for_batch(&self, request_id: &str) -> Result<Vec<Attempt>, StoreError> {
        let rows: Vec<AttemptRow> = sqlx::query_as(ATTEMPTS_FOR_BATCH)
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Attempt::from).collect())
    }

    async fn alerts_for_job(&self, job_id: i64) -> Result<Vec<Alert>, StoreError> {
        convert(
            sqlx::query_as::<_, AlertRow>(ALERTS_FOR_JOB)
                .bind(job_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn known_transaction_ids(
        &self,
        brand_code: i64,
        transaction_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if transaction_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar(
            "SELECT provider_message_id FROM consent_events
             WHERE brand_code = $1 AND provider = 'iys' AND provider_message_id = ANY($2)
             UNION
             SELECT transaction_id FROM report_jobs
             WHERE brand_code = $1 AND state = 'done' AND transaction_id = ANY($2)",
        )
        .bind(brand_code)
        .bind(transaction_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn done_jobs_between(
        &self,
        brand_code: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportJob>, StoreError> {
        convert(
            sqlx::query_as::<_, JobRow>(DONE_JOBS_BETWEEN)
                .bind(brand_code)
                .bind(to_ms(from))
                .bind(to_ms(to))
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
