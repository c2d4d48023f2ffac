//! [`ReportQueue`] on SQLite. One writer means a plain UPDATE is a claim: no row locks needed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{SqliteStore, all, count, distinct, one, rows};
use crate::domain::Address;
use crate::domain::Status;
use crate::domain::time::{from_ms, to_ms};
use crate::store::queue::{
    Alert, AlertKind, Attempt, BatchState, BrandHealth, Fence, IysBatch, JobOutcome, NewBatch,
    ReportQueue, SentDate, outcome_columns,
};
use crate::store::{ReportJob, StoreError, StoredEvent};

/// Open jobs a worker may take: pending and due, or leased by a worker whose lease lapsed.
macro_rules! claimable {
    () => {
        "((state = 'pending' AND due_at_ms <= ?1) OR (state = 'leased' AND lease_until_ms < ?1))"
    };
}

/// A job whose address has no other job in flight (batched, or leased under a live lease).
macro_rules! address_free {
    () => {
        " AND NOT EXISTS (SELECT 1 FROM report_jobs o
                WHERE o.brand_code = j.brand_code AND o.recipient = j.recipient
                  AND o.recipient_type = j.recipient_type
                  AND o.consent_type = j.consent_type AND o.id <> j.id
                  AND (o.state = 'batched'
                       OR (o.state = 'leased' AND o.lease_until_ms >= ?1)))"
    };
}

/// The claim, for one brand (`?5`, a probe that ignores the brand's own pause) or for every
/// brand that is not paused: the `?4` open jobs with the nearest deadlines, pending and due or
/// leased by a worker whose lease lapsed, never an address that has a job in flight.
///
/// The two kinds are two index walks merged, not one `OR`: with an `OR` SQLite gathered every
/// due job and sorted them all for each slice, tens of milliseconds on the only writer once
/// tens of thousands were waiting. Walking the deadline index stops after `?4` rows.
macro_rules! claim_sql {
    ($brand:expr) => {
        concat!(
            "UPDATE report_jobs SET state = 'leased', lease_owner = ?2, lease_until_ms = ?3,
                 attempts = attempts + 1, updated_at_ms = ?1
             WHERE id IN (SELECT id FROM (
                 SELECT id, deadline FROM (
                     SELECT j.id, j.deadline_at_ms AS deadline
                     FROM report_jobs j INDEXED BY report_jobs_deadline
                     WHERE j.state = 'pending' AND j.due_at_ms <= ?1 ",
            $brand,
            address_free!(),
            " ORDER BY j.deadline_at_ms, j.id LIMIT ?4)
                 UNION ALL
                 SELECT id, deadline FROM (
                     SELECT j.id, j.deadline_at_ms AS deadline
                     FROM report_jobs j INDEXED BY report_jobs_lapsing
                     WHERE j.state = 'leased' AND j.lease_until_ms < ?1 ",
            $brand,
            address_free!(),
            " ORDER BY j.deadline_at_ms, j.id LIMIT ?4)
                 ORDER BY 2, 1 LIMIT ?4))
             RETURNING ",
            rows::job_columns!()
        )
    };
}
const CLAIM_FOR_BRAND: &str = claim_sql!("AND j.brand_code = ?5");
const CLAIM_UNPAUSED: &str = claim_sql!(
    "AND NOT EXISTS (SELECT 1 FROM iys_brand_health h
         WHERE h.brand_code = j.brand_code AND h.paused_until_ms > ?1)"
);

/// Jobs claimed per write (see `claim_jobs`).
const CLAIM_SLICE: i64 = 250;

/// One slice of a claim: with `probe`, first one job of each brand whose pause has lapsed
/// (its probe, ignoring the pause), then due jobs of brands that are not paused.
fn claim_slice(
    c: &Connection,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    probe: bool,
) -> Result<Vec<ReportJob>, StoreError> {
    let (now_ms, until_ms) = (to_ms(now), to_ms(lease_until));
    let mut jobs = Vec::new();
    if probe {
        let brands = all(
            c,
            "UPDATE iys_brand_health SET paused_until_ms = ?2, updated_at_ms = ?1
             WHERE failures > 0 AND paused_until_ms <= ?1 RETURNING brand_code",
            params![now_ms, until_ms],
            |r| r.get::<_, i64>(0),
        )?;
        for brand in brands {
            let one = all(
                c,
                CLAIM_FOR_BRAND,
                params![now_ms, owner, until_ms, 1, brand],
                rows::job,
            )?;
            if one.is_empty() {
                // Nothing to probe with: the next claim may try as soon as work arrives.
                c.prepare_cached(
                    "UPDATE iys_brand_health SET paused_until_ms = ?2 WHERE brand_code = ?1",
                )?
                .execute(params![brand, now_ms])?;
            }
            jobs.extend(one);
        }
    }
    let rest = limit - jobs.len() as i64;
    if rest > 0 {
        jobs.extend(all(
            c,
            CLAIM_UNPAUSED,
            params![now_ms, owner, until_ms, rest],
            rows::job,
        )?);
    }
    Ok(jobs)
}

pub(super) fn insert_alert(
    c: &Connection,
    job_id: i64,
    kind: AlertKind,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO alerts (job_id, kind, severity, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (job_id, kind) DO NOTHING",
        )?
        .execute(params![
            job_id,
            kind.as_str(),
            kind.severity(),
            detail,
            to_ms(now)
        ])?;
    Ok(n == 1)
}

macro_rules! finish_sql {
    ($fence:expr) => {
        concat!(
            "UPDATE report_jobs SET state = ?2, transaction_id = COALESCE(?3, transaction_id),
                 last_error = ?4, due_at_ms = COALESCE(?5, due_at_ms), attempts = attempts - ?6,
                 iys_date_ms = COALESCE(?8, iys_date_ms),
                 lease_owner = NULL, lease_until_ms = NULL,
                 batch_id = CASE WHEN ?2 = 'pending' THEN NULL ELSE batch_id END,
                 batch_index = CASE WHEN ?2 = 'pending' THEN NULL ELSE batch_index END,
                 updated_at_ms = ?7
             WHERE id = ?1 AND ",
            $fence,
            " RETURNING ",
            rows::job_columns!()
        )
    };
}
const FINISH_LEASED: &str = finish_sql!("state = 'leased' AND lease_owner = ?9 AND attempts = ?10");
const FINISH_BATCHED: &str = finish_sql!("state = 'batched' AND batch_id = ?9");

fn finish(
    c: &Connection,
    job_id: i64,
    fence: &Fence,
    outcome: &JobOutcome,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (state, txid, error, due, give_back) = outcome_columns(outcome);
    let (due, iys_date) = match outcome {
        JobOutcome::ResendAfter { iys_date, .. } => (Some(to_ms(now)), Some(to_ms(*iys_date))),
        _ => (due, None),
    };
    let head = params![
        job_id,
        state,
        txid,
        error,
        due,
        give_back,
        to_ms(now),
        iys_date
    ];
    let job = match fence {
        Fence::Lease { owner, attempts } => {
            let p: Vec<&dyn rusqlite::ToSql> = head
                .iter()
                .copied()
                .chain([owner as &dyn rusqlite::ToSql, attempts])
                .collect();
            one(c, FINISH_LEASED, p.as_slice(), rows::job)?
        }
        Fence::Batch { request_id } => {
            let p: Vec<&dyn rusqlite::ToSql> = head
                .iter()
                .copied()
                .chain([request_id as &dyn rusqlite::ToSql])
                .collect();
            one(c, FINISH_BATCHED, p.as_slice(), rows::job)?
        }
    };
    let Some(job) = job else {
        return Ok(false);
    };
    let a = &job.address;
    match outcome {
        JobOutcome::Done { .. } => {
            c.prepare_cached(
                "UPDATE consent_state SET iys_confirmed = 1, updated_at_ms = ?6
                 WHERE brand_code = ?1 AND recipient = ?2 AND recipient_type = ?3
                   AND consent_type = ?4 AND event_id = ?5",
            )?
            .execute(params![
                a.brand_code,
                a.recipient,
                a.recipient_type.as_str(),
                a.consent_type.as_str(),
                job.event_id,
                to_ms(now)
            ])?;
            // Older movements still waiting can only be refused (H178): İYS has this one.
            c.prepare_cached(
                "UPDATE report_jobs SET state = 'superseded', last_error = ?7, updated_at_ms = ?8
                 WHERE brand_code = ?1 AND recipient = ?2 AND recipient_type = ?3
                   AND consent_type = ?4 AND state = 'pending'
                   AND (consent_at_ms < ?5 OR (consent_at_ms = ?5 AND event_id < ?6))",
            )?
            .execute(params![
                a.brand_code,
                a.recipient,
                a.recipient_type.as_str(),
                a.consent_type.as_str(),
                to_ms(job.consent_at),
                job.event_id,
                format!("superseded by job {} (accepted by İYS)", job.id),
                to_ms(now)
            ])?;
        }
        JobOutcome::Failed { error } => {
            insert_alert(c, job.id, AlertKind::Failed, error, now)?;
        }
        JobOutcome::Expired { error } => {
            insert_alert(c, job.id, AlertKind::Expired, error, now)?;
        }
        JobOutcome::SupersededByIys { reason } => {
            insert_alert(c, job.id, AlertKind::IysNewer, reason, now)?;
        }
        _ => {}
    }
    Ok(true)
}

const SENT_DATES: &str = "SELECT j.id, j.iys_date_ms,
         CASE WHEN e.status = 'ONAY' AND j.state <> 'done' THEN 1 ELSE 0 END
     FROM report_jobs j JOIN consent_events e ON e.id = j.event_id
     WHERE j.brand_code = ?1 AND j.recipient = ?2 AND j.recipient_type = ?3 AND j.consent_type = ?4
       AND j.iys_date_ms IS NOT NULL";
const NEWEST_FROM_IYS: &str = "SELECT MAX(consent_at_ms) FROM consent_events
     WHERE brand_code = ?1 AND recipient = ?2 AND recipient_type = ?3 AND consent_type = ?4
       AND (substr(source, 1, 4) = 'IYS_' OR channel = 'iys')";
/// The newest movement of an address that İYS holds: one read from İYS, or one it accepted.
const NEWEST_KNOWN_TO_IYS: &str = "SELECT e.status FROM consent_events e
     WHERE e.brand_code = ?1 AND e.recipient = ?2 AND e.recipient_type = ?3 AND e.consent_type = ?4
       AND (substr(e.source, 1, 4) = 'IYS_' OR e.channel = 'iys'
            OR EXISTS (SELECT 1 FROM report_jobs j WHERE j.event_id = e.id AND j.state = 'done'))
     ORDER BY e.consent_at_ms DESC, e.id DESC LIMIT 1";

#[async_trait]
impl ReportQueue for SqliteStore {
    async fn claim_jobs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError> {
        // In slices: a claim of thousands of jobs in one write held the only writer for
        // hundreds of milliseconds while webhooks waited behind it. Each slice is a complete
        // claim of its own; brands are probed in the first.
        let mut jobs = Vec::new();
        let mut probe = true;
        loop {
            let want = (limit - jobs.len() as i64).min(CLAIM_SLICE);
            if want <= 0 {
                break;
            }
            let owner = owner.to_string();
            let slice = self
                .write(move |c| claim_slice(c, &owner, now, lease_until, want, probe))
                .await?;
            let short = (slice.len() as i64) < want;
            jobs.extend(slice);
            probe = false;
            if short {
                break;
            }
        }
        // RETURNING has no defined order.
        jobs.sort_by_key(|j| (j.deadline_at, j.id));
        Ok(jobs)
    }

    async fn finish_job(
        &self,
        job_id: i64,
        fence: &Fence,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (fence, outcome) = (fence.clone(), outcome.clone());
        self.write(move |c| finish(c, job_id, &fence, &outcome, now))
            .await
    }

    async fn brand_health(&self) -> Result<Vec<BrandHealth>, StoreError> {
        self.read(|c| {
            all(
                c,
                "SELECT brand_code, failures, paused_until_ms, last_error FROM iys_brand_health
                 WHERE failures > 0 ORDER BY brand_code",
                [],
                |r| {
                    Ok(BrandHealth {
                        brand_code: r.get(0)?,
                        failures: r.get(1)?,
                        paused_until: from_ms(r.get(2)?),
                        last_error: r.get(3)?,
                    })
                },
            )
        })
    }

    async fn pause_brand(
        &self,
        brand_code: i64,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO iys_brand_health (brand_code, failures, paused_until_ms, last_error, updated_at_ms)
                 VALUES (?1, 1, ?2, ?3, ?4)
                 ON CONFLICT (brand_code) DO UPDATE SET failures = iys_brand_health.failures + 1,
                     paused_until_ms = MAX(iys_brand_health.paused_until_ms, excluded.paused_until_ms),
                     last_error = excluded.last_error, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![brand_code, to_ms(until), error, to_ms(now)])?;
            Ok(())
        })
        .await
    }

    async fn brand_recovered(&self, brand_code: i64) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM iys_brand_health WHERE brand_code = ?1")?
                .execute([brand_code])?;
            Ok(())
        })
        .await
    }

    async fn stamp_iys_dates(
        &self,
        owner: &str,
        dates: &[(i64, Option<DateTime<Utc>>)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if dates.is_empty() {
            return Ok(());
        }
        let owner = owner.to_string();
        let dates: Vec<(i64, Option<i64>)> =
            dates.iter().map(|(id, at)| (*id, at.map(to_ms))).collect();
        self.write_sliced(&dates, move |c, slice: &[(i64, Option<i64>)], _| {
            let mut stamp = c.prepare_cached(
                "UPDATE report_jobs SET iys_date_ms = ?3, updated_at_ms = ?1
                 WHERE id = ?4 AND state = 'leased' AND lease_owner = ?2",
            )?;
            for (id, at) in slice {
                stamp.execute(params![to_ms(now), owner, at, id])?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn iys_dates(&self, keys: &[Address]) -> Result<Vec<SentDate>, StoreError> {
        let keys = distinct(keys);
        self.read_blocking(move |c| {
            let mut sent = c.prepare_cached(SENT_DATES)?;
            let mut from_iys = c.prepare_cached(NEWEST_FROM_IYS)?;
            let mut out = Vec::new();
            for k in keys {
                let p = params![
                    k.brand_code,
                    k.recipient,
                    k.recipient_type.as_str(),
                    k.consent_type.as_str()
                ];
                for row in sent.query_map(p, |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })? {
                    let (job_id, at, unconfirmed) = row?;
                    out.push(SentDate {
                        address: k.clone(),
                        job_id: Some(job_id),
                        at: from_ms(at),
                        unconfirmed_onay: unconfirmed != 0,
                    });
                }
                let newest: Option<i64> = from_iys.query_row(p, |r| r.get(0))?;
                if let Some(at) = newest {
                    out.push(SentDate {
                        address: k,
                        job_id: None,
                        at: from_ms(at),
                        unconfirmed_onay: false,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn events_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        let ids = ids.to_vec();
        self.read_blocking(move |c| {
            let mut stmt = c.prepare_cached(super::EVENT_BY_ID)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(e) =
                    rusqlite::OptionalExtension::optional(stmt.query_row([id], rows::event))?
                {
                    out.push(e);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn iys_known_status(
        &self,
        keys: &[Address],
    ) -> Result<Vec<(Address, Status)>, StoreError> {
        let keys = distinct(keys);
        self.read_blocking(move |c| {
            let mut stmt = c.prepare_cached(NEWEST_KNOWN_TO_IYS)?;
            let mut out = Vec::new();
            for k in keys {
                let status = rusqlite::OptionalExtension::optional(stmt.query_row(
                    params![
                        k.brand_code,
                        k.recipient,
                        k.recipient_type.as_str(),
                        k.consent_type.as_str()
                    ],
                    |r| rows::named::<Status>(r, 0),
                ))?;
                if let Some(s) = status {
                    out.push((k, s));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn batch_submitted(
        &self,
        batch: &NewBatch,
        jobs: &[(i64, Fence)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let items = jobs.len() as i64;
        // The batch's row goes with the first slice. A crash between slices leaves the rest of
        // its jobs leased, to be claimed again when the lease lapses: the same as a crash
        // between İYS's answer and this write, which the reporter already survives.
        let batch = batch.clone();
        let moved = self
            .write_sliced(jobs, move |c, slice: &[(i64, Fence)], offset| {
                if offset == 0 {
                    c.prepare_cached(
                        "INSERT INTO iys_batches (request_id, brand_code, submitted_at_ms,
                             poll_after_ms, polls, items, state, updated_at_ms)
                         VALUES (?1, ?2, ?3, ?4, 0, ?5, 'submitted', ?6)",
                    )?
                    .execute(params![
                        batch.request_id,
                        batch.brand_code,
                        to_ms(batch.submitted_at),
                        to_ms(batch.poll_after),
                        items,
                        to_ms(now)
                    ])?;
                }
                let mut move_job = c.prepare_cached(
                    "UPDATE report_jobs SET state = 'batched', batch_id = ?2, batch_index = ?3,
                         lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = ?4
                     WHERE id = ?1 AND state = 'leased' AND lease_owner = ?5 AND attempts = ?6",
                )?;
                let mut moved = 0;
                for (n, (job_id, fence)) in slice.iter().enumerate() {
                    let Fence::Lease { owner, attempts } = fence else {
                        continue;
                    };
                    moved += move_job.execute(params![
                        job_id,
                        batch.request_id,
                        (offset + n) as i64,
                        to_ms(now),
                        owner,
                        attempts
                    ])?;
                }
                Ok(moved)
            })
            .await?;
        Ok(moved.into_iter().sum())
    }

    async fn claim_due_batches(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<IysBatch>, StoreError> {
        let mut out = self
            .write(move |c| {
                all(
                    c,
                    concat!(
                        "UPDATE iys_batches SET poll_after_ms = ?2, updated_at_ms = ?1
                         WHERE request_id IN (SELECT request_id FROM iys_batches
                                              WHERE state = 'submitted' AND poll_after_ms <= ?1
                                              ORDER BY poll_after_ms, request_id LIMIT ?3)
                         RETURNING ",
                        rows::batch_columns!()
                    ),
                    params![to_ms(now), to_ms(lease_until), limit],
                    rows::batch,
                )
            })
            .await?;
        out.sort_by_key(|b| (b.submitted_at, b.request_id.clone()));
        Ok(out)
    }

    async fn batch_jobs(&self, request_id: &str) -> Result<Vec<(i64, ReportJob)>, StoreError> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::job_columns!(),
                    ", batch_index FROM report_jobs
                     WHERE batch_id = ?1 AND state = 'batched' ORDER BY batch_index"
                ),
                [request_id],
                |r| {
                    Ok((
                        r.get::<_, Option<i64>>(rows::JOB_WIDTH)?.unwrap_or(-1),
                        rows::job(r)?,
                    ))
                },
            )
        })
    }

    async fn update_batch(
        &self,
        request_id: &str,
        state: BatchState,
        poll_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let request_id = request_id.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE iys_batches SET state = ?2, poll_after_ms = ?3, polls = polls + 1,
                     updated_at_ms = ?4
                 WHERE request_id = ?1",
            )?
            .execute(params![
                request_id,
                state.as_str(),
                to_ms(poll_after),
                to_ms(now)
            ])?;
            if state == BatchState::Abandoned {
                c.prepare_cached(
                    "UPDATE report_jobs SET state = 'pending', due_at_ms = ?2, batch_id = NULL,
                         batch_index = NULL, last_error = 'İYS never processed the batch',
                         updated_at_ms = ?2
                     WHERE batch_id = ?1 AND state = 'batched'",
                )?
                .execute(params![request_id, to_ms(now)])?;
            }
            Ok(())
        })
        .await
    }

    async fn batch(&self, request_id: &str) -> Result<Option<IysBatch>, StoreError> {
        self.read(|c| {
            one(
                c,
                concat!(
                    "SELECT ",
                    rows::batch_columns!(),
                    " FROM iys_batches WHERE request_id = ?1"
                ),
                [request_id],
                rows::batch,
            )
        })
    }

    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let attempts = attempts.to_vec();
        self.write(move |c| {
            let mut insert = c.prepare_cached(concat!(
                "INSERT INTO iys_attempts (",
                rows::attempt_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?;
            for a in &attempts {
                insert.execute(params![
                    a.job_id,
                    a.batch_id,
                    a.brand_code,
                    a.operation,
                    a.method,
                    a.path,
                    a.status,
                    a.code,
                    a.duration_ms,
                    to_ms(a.at)
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn attempts_for_job(&self, job_id: i64) -> Result<Vec<Attempt>, StoreError> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::attempt_columns!(),
                    " FROM iys_attempts WHERE job_id = ?1 ORDER BY id"
                ),
                [job_id],
                rows::attempt,
            )
        })
    }

    async fn attempt_count(&self) -> Result<i64, StoreError> {
        self.read(|c| count(c, "SELECT COUNT(*) FROM iys_attempts"))
    }

    async fn reserve_iys_slot(
        &self,
        now: DateTime<Utc>,
        spacing_ms: i64,
    ) -> Result<DateTime<Utc>, StoreError> {
        let spacing = spacing_ms.max(0);
        // The single writer serialises it.
        let next: i64 = self
            .write(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE iys_pacing SET next_slot_ms = MAX(next_slot_ms, ?1) + ?2 WHERE id = 1
                     RETURNING next_slot_ms",
                )?
                .query_row(params![to_ms(now), spacing], |r| r.get(0))?)
            })
            .await?;
        Ok(from_ms(next - spacing))
    }

    async fn sync_cursor(
        &self,
        brand_code: i64,
        source: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            one(
                c,
                "SELECT after FROM sync_cursors WHERE brand_code = ?1 AND source = ?2",
                params![brand_code, source],
                |r| r.get(0),
            )
        })
    }

    async fn set_sync_cursor(
        &self,
        brand_code: i64,
        source: &str,
        after: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (source, after) = (source.to_string(), after.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO sync_cursors (brand_code, source, after, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (brand_code, source) DO UPDATE SET after = excluded.after,
                     updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![brand_code, source, after, to_ms(now)])?;
            Ok(())
        })
        .await
    }

    async fn expire_overdue(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError> {
        self.write(move |c| {
            let jobs = all(
                c,
                concat!(
                    "UPDATE report_jobs SET state = 'expired',
                         last_error = 'the legal İYS deadline passed',
                         lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = ?1
                     WHERE id IN (SELECT id FROM report_jobs WHERE ",
                    claimable!(),
                    " AND deadline_at_ms < ?1) RETURNING ",
                    rows::job_columns!()
                ),
                [to_ms(now)],
                rows::job,
            )?;
            for j in &jobs {
                let detail = format!(
                    "deadline {} passed before İYS accepted it",
                    j.deadline_at.to_rfc3339()
                );
                insert_alert(c, j.id, AlertKind::Expired, &detail, now)?;
            }
            Ok(jobs)
        })
        .await
    }

    async fn flag_past_target(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError> {
        self.write(move |c| {
            let jobs = all(
                c,
                concat!(
                    "SELECT ",
                    rows::job_columns!(),
                    " FROM report_jobs
                     WHERE state IN ('pending', 'leased', 'batched') AND target_at_ms < ?1
                       AND NOT EXISTS (SELECT 1 FROM alerts a
                                       WHERE a.job_id = report_jobs.id AND a.kind = 'target_missed')
                     ORDER BY deadline_at_ms, id LIMIT 1000"
                ),
                [to_ms(now)],
                rows::job,
            )?;
            let mut flagged = Vec::new();
            for j in jobs {
                let detail = format!("internal target {} missed", j.target_at.to_rfc3339());
                if insert_alert(c, j.id, AlertKind::TargetMissed, &detail, now)? {
                    flagged.push(j);
                }
            }
            Ok(flagged)
        })
        .await
    }

    async fn alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    rows::alert_columns!(),
                    " FROM alerts ORDER BY id DESC LIMIT ?1"
                ),
                [limit],
                rows::alert,
            )
        })
    }
}
