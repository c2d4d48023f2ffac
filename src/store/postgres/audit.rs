//! [`AuditStore`] on PostgreSQL: reported addresses paged by keyset (row-value comparison), the
//! progress row shared by replicas, and the repairs that touch the queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PgStore;
use super::ops::requeue_in_tx;
use super::rows::{AuditEntryRow, AuditProgressRow, EndedJobRow, KeyArrays, convert};
use crate::domain::Address;
use crate::domain::time::to_ms;
use crate::store::audit::{AuditEntry, AuditProgress, AuditStore};
use crate::store::queue::AlertKind;
use crate::store::{JobState, JobTimes, StoreError};

/// The entry of every reported address (one with a report job: only `HS_*` movements get one)
/// that `$filter` keeps; `r` is a report job of the state row `s`'s address.
macro_rules! entries {
    ($filter:literal) => {
        concat!(
            "SELECT s.brand_code, s.recipient, s.recipient_type, s.consent_type, s.status, s.source,
                 s.channel, s.consent_at_ms, s.event_id, cj.id AS job_id, cj.state AS job_state,
                 a.last_job_id, a.open_jobs
             FROM consent_state s
             LEFT JOIN report_jobs cj ON cj.event_id = s.event_id
             CROSS JOIN LATERAL (
                 SELECT MAX(r.id) AS last_job_id,
                     COUNT(*) FILTER (WHERE r.state IN ('pending', 'leased', 'batched')) AS open_jobs
                 FROM report_jobs r
                 WHERE r.brand_code = s.brand_code AND r.recipient = s.recipient
                   AND r.recipient_type = s.recipient_type AND r.consent_type = s.consent_type
             ) a
             WHERE a.last_job_id IS NOT NULL AND ",
            $filter
        )
    };
}
const FIRST_ENTRIES: &str = concat!(
    entries!("true"),
    " ORDER BY s.brand_code, s.recipient_type, s.consent_type, s.recipient LIMIT $1"
);
const ENTRIES_AFTER: &str = concat!(
    entries!("(s.brand_code, s.recipient_type, s.consent_type, s.recipient) > ($1, $2, $3, $4)"),
    " ORDER BY s.brand_code, s.recipient_type, s.consent_type, s.recipient LIMIT $5"
);
const ENTRIES_OF_KEYS: &str = entries!(
    "(s.brand_code, s.recipient_type, s.consent_type, s.recipient) IN (
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[]))"
);

#[async_trait]
impl AuditStore for PgStore {
    async fn audit_entries_after(
        &self,
        after: Option<&Address>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditEntryRow> = match after {
            None => {
                sqlx::query_as(FIRST_ENTRIES)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(k) => {
                sqlx::query_as(ENTRIES_AFTER)
                    .bind(k.brand_code)
                    .bind(k.recipient_type.as_str())
                    .bind(k.consent_type.as_str())
                    .bind(k.recipient.as_str())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        convert(rows)
    }

    async fn audit_entries(&self, keys: &[Address]) -> Result<Vec<AuditEntry>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<AuditEntryRow> = KeyArrays::of(keys)
            .bind(sqlx::query_as(ENTRIES_OF_KEYS))
            .fetch_all(&self.pool)
            .await?;
        convert(rows)
    }

    async fn audit_progress(&self) -> Result<AuditProgress, StoreError> {
        let row: AuditProgressRow = sqlx::query_as(
            "SELECT sweep_started_at_ms, sweep_finished_at_ms, sweep_divergent, jobs_after_ms,
                 jobs_after_id
             FROM audit_progress WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn claim_full_sweep(
        &self,
        due_before: DateTime<Utc>,
        lease_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE audit_progress SET sweep_started_at_ms = $1
             WHERE id = 1 AND (sweep_finished_at_ms IS NULL OR sweep_finished_at_ms <= $2)
               AND (sweep_started_at_ms IS NULL OR sweep_started_at_ms <= $3)",
        )
        .bind(to_ms(now))
        .bind(to_ms(due_before))
        .bind(to_ms(lease_before))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn full_sweep_finished(
        &self,
        now: DateTime<Utc>,
        divergent: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE audit_progress SET sweep_finished_at_ms = $1, sweep_divergent = $2 WHERE id = 1",
        )
        .bind(to_ms(now))
        .bind(divergent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_ended_jobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Address>, StoreError> {
        let mut tx = self.begin().await?;
        let (after_ms, after_id): (i64, i64) =
            sqlx::query_as("SELECT jobs_after_ms, jobs_after_id FROM audit_progress WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let rows: Vec<EndedJobRow> = sqlx::query_as(
            "SELECT id, updated_at_ms, brand_code, recipient, recipient_type, consent_type
             FROM report_jobs
             WHERE state IN ('superseded', 'nothing_to_revoke', 'failed', 'expired')
               AND (updated_at_ms, id) > ($1, $2) AND updated_at_ms <= $3
             ORDER BY updated_at_ms, id LIMIT $4",
        )
        .bind(after_ms)
        .bind(after_id)
        .bind(to_ms(cutoff))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let found = rows.len() as i64;
        let mut keys = Vec::with_capacity(rows.len());
        let mut last = (after_ms, after_id);
        for row in rows {
            last = (row.updated_at_ms, row.id);
            keys.push(Address::try_from(row.address)?);
        }
        // A short page read everything up to the cutoff; a job changing later gets a later
        // updated_at. The cursor never moves back (a clock set back just finds nothing).
        if found < limit {
            last = last.max((to_ms(cutoff), i64::MAX));
        }
        let moved = sqlx::query(
            "UPDATE audit_progress SET jobs_after_ms = $1, jobs_after_id = $2
             WHERE id = 1 AND jobs_after_ms = $3 AND jobs_after_id = $4",
        )
        .bind(last.0)
        .bind(last.1)
        .bind(after_ms)
        .bind(after_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        tx.commit().await?;
        Ok(keys)
    }

    async fn reopen_job_for_audit(
        &self,
        job_id: i64,
        times: JobTimes,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let ended = [
            JobState::Done,
            JobState::Superseded,
            JobState::NothingToRevoke,
            JobState::Failed,
            JobState::Expired,
        ];
        if !requeue_in_tx(&mut tx, job_id, times, &ended, note, Some(note), now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        // İYS does not hold this movement: suppression must stop counting it as confirmed.
        sqlx::query(
            "UPDATE consent_state s SET iys_confirmed = 0, updated_at_ms = $1
             FROM report_jobs j
             WHERE j.id = $2 AND s.brand_code = j.brand_code AND s.recipient = j.recipient
               AND s.recipient_type = j.recipient_type AND s.consent_type = j.consent_type
               AND s.event_id = j.event_id",
        )
        .bind(to_ms(now))
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn audit_alert(
        &self,
        job_id: i64,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let kind = AlertKind::AuditDivergence;
        sqlx::query(
            "INSERT INTO alerts (job_id, kind, severity, detail, at_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job_id, kind) DO UPDATE SET detail = excluded.detail,
                 severity = excluded.severity, at_ms = excluded.at_ms",
        )
        .bind(job_id)
        .bind(kind.as_str())
        .bind(kind.severity())
        .bind(detail)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
