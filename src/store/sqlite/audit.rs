//! [`AuditStore`] on SQLite (row-value comparisons give the keyset cursors).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::ops::requeue;
use super::rows::named;
use super::{SqliteStore, all, distinct};
use crate::domain::Address;
use crate::domain::time::{from_ms, to_ms};
use crate::store::audit::{AuditEntry, AuditProgress, AuditStore};
use crate::store::queue::AlertKind;
use crate::store::{JobState, JobTimes, StoreError};

/// The entry of every reported address (one with a report job: only `HS_*` movements get one),
/// filtered by `$filter`. `r` is a report job of the state row `s`'s address.
macro_rules! entry_select {
    ($filter:expr) => {
        concat!(
            "SELECT s.brand_code, s.recipient, s.recipient_type, s.consent_type, s.status, s.source,
                 s.channel, s.consent_at_ms, s.event_id, cj.id, cj.state,
                 (SELECT MAX(r.id) FROM report_jobs r WHERE r.brand_code = s.brand_code
                     AND r.recipient = s.recipient AND r.recipient_type = s.recipient_type
                     AND r.consent_type = s.consent_type),
                 (SELECT COUNT(*) FROM report_jobs r WHERE r.brand_code = s.brand_code
                     AND r.recipient = s.recipient AND r.recipient_type = s.recipient_type
                     AND r.consent_type = s.consent_type
                     AND r.state IN ('pending', 'leased', 'batched'))
             FROM consent_state s LEFT JOIN report_jobs cj ON cj.event_id = s.event_id
             WHERE EXISTS (SELECT 1 FROM report_jobs r WHERE r.brand_code = s.brand_code
                     AND r.recipient = s.recipient AND r.recipient_type = s.recipient_type
                     AND r.consent_type = s.consent_type) AND ",
            $filter
        )
    };
}
const ORDER: &str = " ORDER BY s.brand_code, s.recipient_type, s.consent_type, s.recipient";

fn entry(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let job = match (
        row.get::<_, Option<i64>>(9)?,
        row.get::<_, Option<String>>(10)?,
    ) {
        (Some(id), Some(state)) => Some((
            id,
            JobState::parse(&state).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    10,
                    rusqlite::types::Type::Text,
                    format!("job state {state:?}").into(),
                )
            })?,
        )),
        _ => None,
    };
    Ok(AuditEntry {
        address: Address {
            brand_code: row.get(0)?,
            recipient: row.get(1)?,
            recipient_type: named(row, 2)?,
            consent_type: named(row, 3)?,
        },
        status: named(row, 4)?,
        source: named(row, 5)?,
        channel: named(row, 6)?,
        consent_at: from_ms(row.get(7)?),
        event_id: row.get(8)?,
        job,
        last_job_id: row.get(11)?,
        open_jobs: row.get(12)?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit_entries_after(
        &self,
        after: Option<&Address>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let after = after.cloned();
        self.read_blocking(move |c| {
            let sql_first = [entry_select!("1 = 1"), ORDER, " LIMIT ?1"].concat();
            let sql_after = [
                entry_select!(
                    "(s.brand_code, s.recipient_type, s.consent_type, s.recipient) > (?1, ?2, ?3, ?4)"
                ),
                ORDER,
                " LIMIT ?5",
            ]
            .concat();
            match after {
                None => all(c, &sql_first, [limit], entry),
                Some(k) => all(
                    c,
                    &sql_after,
                    params![
                        k.brand_code,
                        k.recipient_type.as_str(),
                        k.consent_type.as_str(),
                        k.recipient,
                        limit
                    ],
                    entry,
                ),
            }
        })
        .await
    }

    async fn audit_entries(&self, keys: &[Address]) -> Result<Vec<AuditEntry>, StoreError> {
        let keys = distinct(keys);
        self.read_blocking(move |c| {
            let sql = entry_select!(
                "s.brand_code = ?1 AND s.recipient_type = ?2 AND s.consent_type = ?3
                 AND s.recipient = ?4"
            );
            let mut stmt = c.prepare_cached(sql)?;
            let mut out = Vec::new();
            for k in keys {
                let p = params![
                    k.brand_code,
                    k.recipient_type.as_str(),
                    k.consent_type.as_str(),
                    k.recipient
                ];
                for e in stmt.query_map(p, entry)? {
                    out.push(e?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn audit_progress(&self) -> Result<AuditProgress, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT sweep_started_at_ms, sweep_finished_at_ms, sweep_divergent, jobs_after_ms,
                     jobs_after_id
                 FROM audit_progress WHERE id = 1",
            )?
            .query_row([], |r| {
                Ok(AuditProgress {
                    sweep_started_at: r.get::<_, Option<i64>>(0)?.map(from_ms),
                    sweep_finished_at: r.get::<_, Option<i64>>(1)?.map(from_ms),
                    sweep_divergent: r.get(2)?,
                    jobs_after: (from_ms(r.get(3)?), r.get(4)?),
                })
            })?)
        })
    }

    async fn claim_full_sweep(
        &self,
        due_before: DateTime<Utc>,
        lease_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE audit_progress SET sweep_started_at_ms = ?1
                     WHERE id = 1 AND (sweep_finished_at_ms IS NULL OR sweep_finished_at_ms <= ?2)
                       AND (sweep_started_at_ms IS NULL OR sweep_started_at_ms <= ?3)",
                )?
                .execute(params![to_ms(now), to_ms(due_before), to_ms(lease_before)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn full_sweep_finished(
        &self,
        now: DateTime<Utc>,
        divergent: i64,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE audit_progress SET sweep_finished_at_ms = ?1, sweep_divergent = ?2 WHERE id = 1",
            )?
            .execute(params![to_ms(now), divergent])?;
            Ok(())
        })
        .await
    }

    async fn claim_ended_jobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Address>, StoreError> {
        self.write(move |c| {
            let (after_ms, after_id): (i64, i64) = c
                .prepare_cached(
                    "SELECT jobs_after_ms, jobs_after_id FROM audit_progress WHERE id = 1",
                )?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let rows = all(
                c,
                "SELECT updated_at_ms, id, brand_code, recipient, recipient_type, consent_type
                 FROM report_jobs
                 WHERE state IN ('superseded', 'nothing_to_revoke', 'failed', 'expired')
                   AND (updated_at_ms, id) > (?1, ?2) AND updated_at_ms <= ?3
                 ORDER BY updated_at_ms, id LIMIT ?4",
                params![after_ms, after_id, to_ms(cutoff), limit],
                |r| {
                    Ok((
                        (r.get::<_, i64>(0)?, r.get::<_, i64>(1)?),
                        Address {
                            brand_code: r.get(2)?,
                            recipient: r.get(3)?,
                            recipient_type: named(r, 4)?,
                            consent_type: named(r, 5)?,
                        },
                    ))
                },
            )?;
            let mut last = rows.last().map_or((after_ms, after_id), |r| r.0);
            // A short page read everything up to the cutoff; a job changing later gets a later
            // updated_at. The cursor never moves back (a clock set back just finds nothing).
            if (rows.len() as i64) < limit {
                last = last.max((to_ms(cutoff), i64::MAX));
            }
            c.prepare_cached(
                "UPDATE audit_progress SET jobs_after_ms = ?1, jobs_after_id = ?2 WHERE id = 1",
            )?
            .execute(params![last.0, last.1])?;
            Ok(rows.into_iter().map(|r| r.1).collect())
        })
        .await
    }

    async fn reopen_job_for_audit(
        &self,
        job_id: i64,
        times: JobTimes,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let note = note.to_string();
        self.write(move |c| {
            let ended = [
                JobState::Done,
                JobState::Superseded,
                JobState::NothingToRevoke,
                JobState::Failed,
                JobState::Expired,
            ];
            if !requeue(c, job_id, times, &ended, &note, Some(&note), now)? {
                return Ok(false);
            }
            // İYS does not hold this movement: suppression must stop counting it as confirmed.
            let job: Option<(i64, i64, String, String, String)> = c
                .prepare_cached(
                    "SELECT event_id, brand_code, recipient, recipient_type, consent_type
                     FROM report_jobs WHERE id = ?1",
                )?
                .query_row([job_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            if let Some((event_id, brand, recipient, rt, ct)) = job {
                c.prepare_cached(
                    "UPDATE consent_state SET iys_confirmed = 0, updated_at_ms = ?1
                     WHERE brand_code = ?2 AND recipient = ?3 AND recipient_type = ?4
                       AND consent_type = ?5 AND event_id = ?6",
                )?
                .execute(params![
                    to_ms(now),
                    brand,
                    recipient,
                    rt,
                    ct,
                    event_id
                ])?;
            }
            Ok(true)
        })
        .await
    }

    async fn audit_alert(
        &self,
        job_id: i64,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let detail = detail.to_string();
        self.write(move |c| {
            let kind = AlertKind::AuditDivergence;
            c.prepare_cached(
                "INSERT INTO alerts (job_id, kind, severity, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job_id, kind) DO UPDATE SET detail = excluded.detail,
                     severity = excluded.severity, at_ms = excluded.at_ms",
            )?
            .execute(params![
                job_id,
                kind.as_str(),
                kind.severity(),
                detail,
                to_ms(now)
            ])?;
            Ok(())
        })
        .await
    }
}
