//! [`OpsStore`] over sqlx `Any`: the same SQL on SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};

use super::ops::OpsStore;
use super::queue::{Alert, AlertKind, Attempt};
use super::rows::{JOB_COLUMNS, job_from_row};
use super::sql_queue::{ATTEMPT_COLUMNS, CHUNK, alert_from_row, attempt_from_row, insert_alert};
use super::{JobState, JobTimes, ReportJob, SqlStore, StoreError};
use crate::domain::time::to_ms;

/// `$first, $first+1, …` for an `IN (...)` list of `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", first + i))
        .collect::<Vec<_>>()
        .join(",")
}

/// Sends a job in one of the `from` states back to `pending`, due at `times.due_at`, attempts
/// kept; `last_error` replaces the recorded error when given. Its failed/expired alerts are
/// folded into one `requeued` alert whose detail accumulates `detail`. Shared by the operator
/// requeue and the audit's re-report. `false` (nothing changed) when the job is in another state.
pub(super) async fn requeue_in_tx(
    tx: &mut Transaction<'static, Any>,
    job_id: i64,
    times: JobTimes,
    from: &[JobState],
    detail: &str,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // The states are our own constants, never input.
    let states = from
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let moved: Option<i64> = sqlx::query_scalar(&format!(
        "UPDATE report_jobs SET state = 'pending', due_at_ms = $2, target_at_ms = $3,
             deadline_at_ms = $4, lease_owner = NULL, lease_until_ms = NULL, batch_id = NULL,
             batch_index = NULL, last_error = COALESCE($6, last_error), updated_at_ms = $5
         WHERE id = $1 AND state IN ({states}) RETURNING id"
    ))
    .bind(job_id)
    .bind(to_ms(times.due_at))
    .bind(to_ms(times.target_at))
    .bind(to_ms(times.deadline_at))
    .bind(to_ms(now))
    .bind(last_error)
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
impl OpsStore for SqlStore {
    async fn jobs_by_ids(&self, ids: &[i64]) -> Result<Vec<ReportJob>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM report_jobs WHERE id IN ({}) ORDER BY id",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(job_from_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn jobs_in_state(
        &self,
        state: JobState,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError> {
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM report_jobs WHERE state = $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(state.as_str())
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn requeue_job(
        &self,
        job_id: i64,
        times: JobTimes,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for id in ids {
            let moved: Option<i64> = sqlx::query_scalar(
                "UPDATE report_jobs SET state = 'failed', last_error = $2, updated_at_ms = $3
                 WHERE id = $1 AND state = 'pending' RETURNING id",
            )
            .bind(*id)
            .bind(reason)
            .bind(to_ms(now))
            .fetch_optional(&mut *tx)
            .await?;
            if moved.is_some() {
                insert_alert(&mut tx, *id, AlertKind::Failed, reason, now).await?;
                n += 1;
            }
        }
        tx.commit().await?;
        Ok(n)
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
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn attempts_for_batch(&self, request_id: &str) -> Result<Vec<Attempt>, StoreError> {
        let sql =
            format!("SELECT {ATTEMPT_COLUMNS} FROM iys_attempts WHERE batch_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(request_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn alerts_for_job(&self, job_id: i64) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, job_id, kind, severity, detail, at_ms FROM alerts WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn known_transaction_ids(
        &self,
        brand_code: i64,
        transaction_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in transaction_ids.chunks(CHUNK) {
            let list = placeholders(2, chunk.len());
            let sql = format!(
                "SELECT provider_message_id AS tx FROM consent_events
                 WHERE brand_code = $1 AND provider = 'iys' AND provider_message_id IN ({list})
                 UNION
                 SELECT transaction_id AS tx FROM report_jobs
                 WHERE brand_code = $1 AND state = 'done' AND transaction_id IN ({list})"
            );
            let mut q = sqlx::query(&sql).bind(brand_code);
            for t in chunk {
                q = q.bind(t.as_str());
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(row.try_get::<String, _>("tx")?);
            }
        }
        Ok(out)
    }

    async fn done_jobs_between(
        &self,
        brand_code: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportJob>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM report_jobs
             WHERE brand_code = $1 AND state = 'done' AND transaction_id IS NOT NULL
               AND updated_at_ms >= $2 AND updated_at_ms < $3
             ORDER BY updated_at_ms, id"
        );
        let rows = sqlx::query(&sql)
            .bind(brand_code)
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(job_from_row).collect()
    }
}
