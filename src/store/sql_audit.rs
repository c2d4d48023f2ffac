//! [`AuditStore`] over sqlx `Any`: the same SQL on SQLite and PostgreSQL (row-value
//! comparisons for the keyset cursors work on both).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::{AuditEntry, AuditProgress, AuditStore};
use super::queue::AlertKind;
use super::rows::{address_from_row, parsed};
use super::sql_ops::requeue_in_tx;
use super::{AddressKey, JobState, JobTimes, SqlStore, StoreError};
use crate::domain::time::{from_ms, to_ms};

/// `r` is a report job of the state row `s`'s address.
const SAME_ADDRESS: &str = "r.brand_code = s.brand_code AND r.recipient = s.recipient \
    AND r.recipient_type = s.recipient_type AND r.consent_type = s.consent_type";

/// The entry of every reported address (one with a report job: only `HS_*` movements get one).
fn entry_select(filter: &str) -> String {
    format!(
        "SELECT s.brand_code, s.recipient, s.recipient_type, s.consent_type, s.status, s.source,
             s.channel, s.consent_at_ms, s.event_id, cj.id AS job_id, cj.state AS job_state,
             (SELECT MAX(r.id) FROM report_jobs r WHERE {SAME_ADDRESS}) AS last_job_id,
             (SELECT COUNT(*) FROM report_jobs r WHERE {SAME_ADDRESS}
                 AND r.state IN ('pending', 'leased', 'batched')) AS open_jobs
         FROM consent_state s LEFT JOIN report_jobs cj ON cj.event_id = s.event_id
         WHERE EXISTS (SELECT 1 FROM report_jobs r WHERE {SAME_ADDRESS}) AND {filter}"
    )
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let job = match (
        row.try_get::<Option<i64>, _>("job_id")?,
        row.try_get::<Option<String>, _>("job_state")?,
    ) {
        (Some(id), Some(state)) => Some((
            id,
            JobState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
        )),
        _ => None,
    };
    Ok(AuditEntry {
        address: address_from_row(row)?,
        status: parsed(row, "status")?,
        source: parsed(row, "source")?,
        channel: parsed(row, "channel")?,
        consent_at: from_ms(row.try_get("consent_at_ms")?),
        event_id: row.try_get("event_id")?,
        job,
        last_job_id: row.try_get("last_job_id")?,
        open_jobs: row.try_get("open_jobs")?,
    })
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn audit_entries_after(
        &self,
        after: Option<&AddressKey>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let order = "ORDER BY s.brand_code, s.recipient_type, s.consent_type, s.recipient";
        let rows = match after {
            None => {
                let sql = format!("{} {order} LIMIT $1", entry_select("1 = 1"));
                sqlx::query(&sql).bind(limit).fetch_all(&self.read).await?
            }
            Some(k) => {
                let sql = format!(
                    "{} {order} LIMIT $5",
                    entry_select(
                        "(s.brand_code, s.recipient_type, s.consent_type, s.recipient) > ($1, $2, $3, $4)"
                    )
                );
                sqlx::query(&sql)
                    .bind(k.brand_code)
                    .bind(k.recipient_type.as_str())
                    .bind(k.consent_type.as_str())
                    .bind(k.recipient.as_str())
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await?
            }
        };
        rows.iter().map(entry_from_row).collect()
    }

    async fn audit_entries(&self, keys: &[AddressKey]) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for (kind, recipients) in AddressKey::group(keys) {
            let rows = self
                .rows_for_recipients(kind, &recipients, |list| {
                    entry_select(&format!(
                        "s.brand_code = $1 AND s.recipient_type = $2 AND s.consent_type = $3
                         AND s.recipient IN ({list})"
                    ))
                })
                .await?;
            for row in rows {
                out.push(entry_from_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn audit_progress(&self) -> Result<AuditProgress, StoreError> {
        let row = sqlx::query(
            "SELECT sweep_started_at_ms, sweep_finished_at_ms, sweep_divergent, jobs_after_ms,
                 jobs_after_id
             FROM audit_progress WHERE id = 1",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(AuditProgress {
            sweep_started_at: row
                .try_get::<Option<i64>, _>("sweep_started_at_ms")?
                .map(from_ms),
            sweep_finished_at: row
                .try_get::<Option<i64>, _>("sweep_finished_at_ms")?
                .map(from_ms),
            sweep_divergent: row.try_get("sweep_divergent")?,
            jobs_after: (
                from_ms(row.try_get("jobs_after_ms")?),
                row.try_get("jobs_after_id")?,
            ),
        })
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
        .execute(&self.write)
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn claim_ended_jobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AddressKey>, StoreError> {
        let mut tx = self.begin_write().await?;
        let (after_ms, after_id): (i64, i64) =
            sqlx::query_as("SELECT jobs_after_ms, jobs_after_id FROM audit_progress WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let rows = sqlx::query(
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
        let mut keys = Vec::with_capacity(rows.len());
        let mut last = (after_ms, after_id);
        for row in &rows {
            last = (row.try_get("updated_at_ms")?, row.try_get("id")?);
            keys.push(AddressKey {
                brand_code: row.try_get("brand_code")?,
                recipient: row.try_get("recipient")?,
                recipient_type: parsed(row, "recipient_type")?,
                consent_type: parsed(row, "consent_type")?,
            });
        }
        // A short page read everything up to the cutoff; a job changing later gets a later
        // updated_at. The cursor never moves back (a clock set back just finds nothing).
        if (rows.len() as i64) < limit {
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
        let mut tx = self.begin_write().await?;
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
        let row = sqlx::query(
            "SELECT event_id, brand_code, recipient, recipient_type, consent_type
             FROM report_jobs WHERE id = $1",
        )
        .bind(job_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE consent_state SET iys_confirmed = 0, updated_at_ms = $1
             WHERE brand_code = $2 AND recipient = $3 AND recipient_type = $4
               AND consent_type = $5 AND event_id = $6",
        )
        .bind(to_ms(now))
        .bind(row.try_get::<i64, _>("brand_code")?)
        .bind(row.try_get::<String, _>("recipient")?)
        .bind(row.try_get::<String, _>("recipient_type")?)
        .bind(row.try_get::<String, _>("consent_type")?)
        .bind(row.try_get::<i64, _>("event_id")?)
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
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
