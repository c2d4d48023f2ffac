//! [`OpsStore`] on SQLite: the operator's reads and repairs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::queue::insert_alert;
use super::{SqliteStore, all, json_list, rows};
use crate::domain::time::to_ms;
use crate::store::ops::OpsStore;
use crate::store::queue::{Alert, AlertKind, Attempt};
use crate::store::{JobState, JobTimes, ReportJob, StoreError};

/// Sends a job in one of the `from` states back to `pending`, due at `times.due_at`, attempts
/// kept; `last_error` replaces the recorded error when given. Its failed/expired alerts are
/// folded into one `requeued` alert whose detail accumulates `detail`. Shared by the operator
/// requeue and the audit's re-report. `false` (nothing changed) when the job is in another state.
pub(super) fn requeue(
    c: &Connection,
    job_id: i64,
    times: JobTimes,
    from: &[JobState],
    detail: &str,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let state: Option<String> = c
        .prepare_cached("SELECT state FROM report_jobs WHERE id = ?1")?
        .query_row([job_id], |r| r.get(0))
        .optional()?;
    if !state.is_some_and(|s| from.iter().any(|f| f.as_str() == s)) {
        return Ok(false);
    }
    c.prepare_cached(
        "UPDATE report_jobs SET state = 'pending', due_at_ms = ?2, target_at_ms = ?3,
             deadline_at_ms = ?4, lease_owner = NULL, lease_until_ms = NULL, batch_id = NULL,
             batch_index = NULL, last_error = COALESCE(?6, last_error), updated_at_ms = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        job_id,
        to_ms(times.due_at),
        to_ms(times.target_at),
        to_ms(times.deadline_at),
        to_ms(now),
        last_error
    ])?;
    // The old error alerts are folded into the requeue note: alerts are unique per (job,
    // kind), so keeping them would silence the alert of a repeated failure.
    let old = all(
        c,
        "DELETE FROM alerts WHERE job_id = ?1 AND kind IN ('failed', 'expired')
         RETURNING kind, detail",
        [job_id],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    let mut note = detail.to_string();
    for (kind, d) in old {
        note.push_str(&format!(" [earlier {kind} alert: {d}]"));
    }
    let kind = AlertKind::Requeued;
    c.prepare_cached(
        "INSERT INTO alerts (job_id, kind, severity, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (job_id, kind) DO UPDATE SET detail = alerts.detail || ' | ' || excluded.detail,
             at_ms = excluded.at_ms",
    )?
    .execute(params![
        job_id,
        kind.as_str(),
        kind.severity(),
        note,
        to_ms(now)
    ])?;
    Ok(true)
}

#[async_trait]
impl OpsStore for SqliteStore {
    async fn jobs_by_ids(&self, ids: &[i64]) -> Result<Vec<ReportJob>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.read_blocking(move |c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT ",
                rows::job_columns!(),
                " FROM report_jobs WHERE id = ?1"
            ))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(j) = stmt.query_row([id], rows::job).optional()? {
                    out.push(j);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn jobs_in_state(
        &self,
        state: JobState,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError> {
        self.read_blocking(move |c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::job_columns!(),
                    " FROM report_jobs WHERE state = ?1 ORDER BY id LIMIT ?2"
                ),
                params![state.as_str(), limit],
                rows::job,
            )
        })
        .await
    }

    async fn requeue_job(
        &self,
        job_id: i64,
        times: JobTimes,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let detail = detail.to_string();
        self.write(move |c| {
            let from = [JobState::Failed, JobState::Expired];
            requeue(c, job_id, times, &from, &detail, None, now)
        })
        .await
    }

    async fn fail_pending_jobs(
        &self,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (ids, reason) = (ids.to_vec(), reason.to_string());
        self.write(move |c| {
            let mut fail = c.prepare_cached(
                "UPDATE report_jobs SET state = 'failed', last_error = ?2, updated_at_ms = ?3
                 WHERE id = ?1 AND state = 'pending'",
            )?;
            let mut n = 0;
            for &id in &ids {
                if fail.execute(params![id, reason, to_ms(now)])? == 1 {
                    insert_alert(c, id, AlertKind::Failed, &reason, now)?;
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    async fn reschedule_pending_job(
        &self,
        job_id: i64,
        times: JobTimes,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE report_jobs SET due_at_ms = ?2, target_at_ms = ?3, deadline_at_ms = ?4,
                         updated_at_ms = ?5
                     WHERE id = ?1 AND state = 'pending'",
                )?
                .execute(params![
                    job_id,
                    to_ms(times.due_at),
                    to_ms(times.target_at),
                    to_ms(times.deadline_at),
                    to_ms(now)
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn attempts_for_batch(&self, request_id: &str) -> Result<Vec<Attempt>, StoreError> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::attempt_columns!(),
                    " FROM iys_attempts WHERE batch_id = ?1 ORDER BY id"
                ),
                [request_id],
                rows::attempt,
            )
        })
    }

    async fn alerts_for_job(&self, job_id: i64) -> Result<Vec<Alert>, StoreError> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::alert_columns!(),
                    " FROM alerts WHERE job_id = ?1 ORDER BY id"
                ),
                [job_id],
                rows::alert,
            )
        })
    }

    async fn known_transaction_ids(
        &self,
        brand_code: i64,
        transaction_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let ids = json_list(transaction_ids)?;
        self.read_blocking(move |c| {
            all(
                c,
                "SELECT provider_message_id FROM consent_events
                 WHERE brand_code = ?1 AND provider = 'iys'
                   AND provider_message_id IN (SELECT value FROM json_each(?2))
                 UNION
                 SELECT transaction_id FROM report_jobs
                 WHERE brand_code = ?1 AND state = 'done'
                   AND transaction_id IN (SELECT value FROM json_each(?2))",
                params![brand_code, ids],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn done_jobs_between(
        &self,
        brand_code: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportJob>, StoreError> {
        self.read_blocking(move |c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::job_columns!(),
                    " FROM report_jobs
                     WHERE brand_code = ?1 AND state = 'done' AND transaction_id IS NOT NULL
                       AND updated_at_ms >= ?2 AND updated_at_ms < ?3
                     ORDER BY updated_at_ms, id"
                ),
                params![brand_code, to_ms(from), to_ms(to)],
                rows::job,
            )
        })
        .await
    }
}
