//! [`ReportQueue`] on PostgreSQL: claims take one advisory lock and skip rows other replicas
//! hold (`FOR UPDATE SKIP LOCKED`); many jobs or addresses travel as arrays.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{
    AlertRow, BatchJobRow, BatchRow, BrandHealthRow, EventRow, JobRow, KeyArrays, SentDateRow,
    alert_columns, attempt_columns, batch_columns, convert, event_columns, job_columns,
};
use super::{PgStore, Tx};
use crate::domain::Status;
use crate::domain::time::{from_ms, to_ms};
use crate::store::queue::{
    Alert, AlertKind, Attempt, BatchState, BrandHealth, Fence, IysBatch, JobOutcome, NewBatch,
    ReportQueue, SentDate, outcome_columns,
};

use crate::domain::Address;
use crate::store::{ReportJob, StoreError, StoredEvent};

/// Open jobs a worker may take: pending and due, or leased by a worker whose lease lapsed.
macro_rules! claimable {
    () => {
        "((state = 'pending' AND due_at_ms <= $1) OR (state = 'leased' AND lease_until_ms < $1))"
    };
}

/// The claim, `$brand` choosing the jobs: a probe's one brand (whose own pause it ignores), or
/// every brand that is not paused. At most one movement per address is in flight: a job whose
/// address has another in a batch or under a live lease waits.
///
/// The jobs are found by walking `report_jobs_claim` (open jobs by deadline; the `state IN` is
/// its predicate) until `$4` qualify, so a claim costs the same whatever the backlog; the update
/// then looks them up by id (`= ANY(ARRAY(…))`), not by joining the whole table against them.
macro_rules! claim_sql {
    ($brand:literal) => {
        concat!(
            "UPDATE report_jobs SET state = 'leased', lease_owner = $2, lease_until_ms = $3,
                 attempts = attempts + 1, updated_at_ms = $1
             WHERE id = ANY(ARRAY(SELECT j.id FROM report_jobs j
                 WHERE j.state IN ('pending', 'leased') AND ",
            claimable!(),
            " ",
            $brand,
            " AND NOT EXISTS (SELECT 1 FROM report_jobs o
                     WHERE o.brand_code = j.brand_code AND o.recipient = j.recipient
                       AND o.recipient_type = j.recipient_type
                       AND o.consent_type = j.consent_type AND o.id <> j.id
                       AND (o.state = 'batched'
                            OR (o.state = 'leased' AND o.lease_until_ms >= $1)))
                 ORDER BY j.deadline_at_ms, j.id LIMIT $4 FOR UPDATE SKIP LOCKED))
             RETURNING ",
            job_columns!()
        )
    };
}
const CLAIM_PROBE: &str = claim_sql!("AND j.brand_code = $5");
const CLAIM_UNPAUSED: &str = claim_sql!(
    "AND NOT EXISTS (SELECT 1 FROM iys_brand_health h
         WHERE h.brand_code = j.brand_code AND h.paused_until_ms > $1)"
);

/// Applies an outcome to a job if `$fence` still holds.
macro_rules! finish_sql {
    ($fence:literal) => {
        concat!(
            "UPDATE report_jobs SET state = $2, transaction_id = COALESCE($3, transaction_id),
                 last_error = $4, due_at_ms = COALESCE($5, due_at_ms), attempts = attempts - $6,
                 iys_date_ms = COALESCE($8, iys_date_ms),
                 lease_owner = NULL, lease_until_ms = NULL,
                 batch_id = CASE WHEN $2 = 'pending' THEN NULL ELSE batch_id END,
                 batch_index = CASE WHEN $2 = 'pending' THEN NULL ELSE batch_index END,
                 updated_at_ms = $7
             WHERE id = $1 AND ",
            $fence,
            " RETURNING ",
            job_columns!()
        )
    };
}
const FINISH_LEASED: &str = finish_sql!("state = 'leased' AND lease_owner = $9 AND attempts = $10");
const FINISH_BATCHED: &str = finish_sql!("state = 'batched' AND batch_id = $9");

/// Every consentDate that may be at İYS for the keyed addresses: the dates jobs sent, and the
/// newest `IYS_*` movement the ledger holds.
const IYS_DATES: &str = "WITH k AS (
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])
             AS k(brand_code, recipient_type, consent_type, recipient))
     SELECT j.brand_code, j.recipient, j.recipient_type, j.consent_type, j.id AS job_id,
         j.iys_date_ms AS at_ms, (e.status = 'ONAY' AND j.state <> 'done') AS unconfirmed_onay
     FROM k JOIN report_jobs j
       ON j.brand_code = k.brand_code AND j.recipient = k.recipient
      AND j.recipient_type = k.recipient_type AND j.consent_type = k.consent_type
     JOIN consent_events e ON e.id = j.event_id
     WHERE j.iys_date_ms IS NOT NULL
     UNION ALL
     SELECT e.brand_code, e.recipient, e.recipient_type, e.consent_type, NULL,
         MAX(e.consent_at_ms), false
     FROM k JOIN consent_events e
       ON e.brand_code = k.brand_code AND e.recipient = k.recipient
      AND e.recipient_type = k.recipient_type AND e.consent_type = k.consent_type
     WHERE substr(e.source, 1, 4) = 'IYS_' OR e.channel = 'iys'
     GROUP BY e.brand_code, e.recipient, e.recipient_type, e.consent_type";

/// Per address the newest movement İYS is known to hold: accepted by İYS for one of our jobs,
/// a citizen's own `IYS_*` change, or a record brought in from İYS.
const IYS_KNOWN_STATUS: &str = "SELECT DISTINCT ON (e.brand_code, e.recipient_type,
         e.consent_type, e.recipient)
         e.brand_code, e.recipient, e.recipient_type, e.consent_type, e.status
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])
         AS k(brand_code, recipient_type, consent_type, recipient)
     JOIN consent_events e
       ON e.brand_code = k.brand_code AND e.recipient = k.recipient
      AND e.recipient_type = k.recipient_type AND e.consent_type = k.consent_type
     WHERE substr(e.source, 1, 4) = 'IYS_' OR e.channel = 'iys'
        OR EXISTS (SELECT 1 FROM report_jobs j WHERE j.event_id = e.id AND j.state = 'done')
     ORDER BY e.brand_code, e.recipient_type, e.consent_type, e.recipient,
         e.consent_at_ms DESC, e.id DESC";

const EVENTS_BY_IDS: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM consent_events WHERE id = ANY($1)"
);
const CLAIM_DUE_BATCHES: &str = concat!(
    "UPDATE iys_batches SET poll_after_ms = $2, updated_at_ms = $1
     WHERE request_id IN (SELECT request_id FROM iys_batches
                          WHERE state = 'submitted' AND poll_after_ms <= $1
                          ORDER BY poll_after_ms, request_id LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING ",
    batch_columns!()
);
const BATCH_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    ", batch_index FROM report_jobs WHERE batch_id = $1 AND state = 'batched'
     ORDER BY batch_index"
);
const BATCH: &str = concat!(
    "SELECT ",
    batch_columns!(),
    " FROM iys_batches WHERE request_id = $1"
);
const INSERT_ATTEMPTS: &str = concat!(
    "INSERT INTO iys_attempts (",
    attempt_columns!(),
    ") SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
         $6::text[], $7::bigint[], $8::text[], $9::bigint[], $10::bigint[])"
);
const ATTEMPTS_FOR_JOB: &str = concat!(
    "SELECT ",
    attempt_columns!(),
    " FROM iys_attempts WHERE job_id = $1 ORDER BY id"
);
const EXPIRE_OVERDUE: &str = concat!(
    "UPDATE report_jobs SET state = 'expired', last_error = 'the legal İYS deadline passed',
         lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $1
     WHERE id IN (SELECT id FROM report_jobs WHERE ",
    claimable!(),
    " AND deadline_at_ms < $1 FOR UPDATE SKIP LOCKED)
     RETURNING ",
    job_columns!()
);
const PAST_TARGET: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM report_jobs
     WHERE state IN ('pending', 'leased', 'batched') AND target_at_ms < $1
       AND NOT EXISTS (SELECT 1 FROM alerts a
                       WHERE a.job_id = report_jobs.id AND a.kind = 'target_missed')
     ORDER BY deadline_at_ms, id LIMIT 1000"
);
const ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts ORDER BY id DESC LIMIT $1"
);
/// One alert of a kind per job: a job that has one keeps it (and is not returned).
const INSERT_ALERTS: &str = "INSERT INTO alerts (job_id, kind, severity, detail, at_ms)
     SELECT u.job_id, $3, $4, u.detail, $5 FROM UNNEST($1::bigint[], $2::text[]) AS u(job_id, detail)
     ON CONFLICT (job_id, kind) DO NOTHING RETURNING job_id";

/// Raises `kind` on each (job, detail); returns the jobs that did not have one yet.
pub(super) async fn insert_alerts(
    tx: &mut Tx,
    kind: AlertKind,
    alerts: &[(i64, String)],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    let (jobs, details): (Vec<i64>, Vec<&str>) =
        alerts.iter().map(|(j, d)| (*j, d.as_str())).unzip();
    Ok(sqlx::query_scalar(INSERT_ALERTS)
        .bind(jobs)
        .bind(details)
        .bind(kind.as_str())
        .bind(kind.severity())
        .bind(to_ms(now))
        .fetch_all(&mut **tx)
        .await?)
}

impl PgStore {
    async fn claim_in(
        tx: &mut Tx,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        brand: Option<i64>,
    ) -> Result<Vec<ReportJob>, StoreError> {
        let q = sqlx::query_as::<_, JobRow>(brand.map_or(CLAIM_UNPAUSED, |_| CLAIM_PROBE))
            .bind(to_ms(now))
            .bind(owner)
            .bind(to_ms(lease_until))
            .bind(limit);
        let q = match brand {
            Some(b) => q.bind(b),
            None => q,
        };
        convert(q.fetch_all(&mut **tx).await?)
    }
}

#[async_trait]
impl ReportQueue for PgStore {
    async fn claim_jobs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError> {
        let mut tx = self.begin().await?;
        // Replicas claim one at a time: the address check must see every other replica's
        // committed claims, which row locks alone (SKIP LOCKED) would not give.
        //
        // No sorts in this transaction: the claim must walk `report_jobs_claim` in deadline
        // order and stop at its limit. On a queue that grows faster than its statistics (the
        // first minutes of a burst) the planner took the due jobs by bitmap and sorted them
        // all, 0.2 s with 14 000 waiting against 0.08 s for the walk, and growing with them.
        sqlx::query("SELECT pg_advisory_xact_lock(7270001)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL enable_sort = off")
            .execute(&mut *tx)
            .await?;
        let probes: Vec<i64> = sqlx::query_scalar(
            "UPDATE iys_brand_health SET paused_until_ms = $2, updated_at_ms = $1
             WHERE failures > 0 AND paused_until_ms <= $1 RETURNING brand_code",
        )
        .bind(to_ms(now))
        .bind(to_ms(lease_until))
        .fetch_all(&mut *tx)
        .await?;
        let mut jobs = Vec::new();
        for brand in probes {
            let probe = Self::claim_in(&mut tx, owner, now, lease_until, 1, Some(brand)).await?;
            if probe.is_empty() {
                // Nothing to probe with: the next claim may try as soon as work arrives.
                sqlx::query(
                    "UPDATE iys_brand_health SET paused_until_ms = $2 WHERE brand_code = $1",
                )
                .bind(brand)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
            }
            jobs.extend(probe);
        }
        let rest = limit - jobs.len() as i64;
        if rest > 0 {
            jobs.extend(Self::claim_in(&mut tx, owner, now, lease_until, rest, None).await?);
        }
        tx.commit().await?;
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
        let (state, txid, error, due, give_back) = outcome_columns(outcome);
        let (due, iys_date) = match outcome {
            JobOutcome::ResendAfter { iys_date, .. } => (Some(to_ms(now)), Some(to_ms(*iys_date))),
            _ => (due, None),
        };
        let sql = match fence {
            Fence::Lease { .. } => FINISH_LEASED,
            Fence::Batch { .. } => FINISH_BATCHED,
        };
        let mut tx = self.begin().await?;
        let q = sqlx::query_as::<_, JobRow>(sql)
            .bind(job_id)
            .bind(state)
            .bind(txid)
            .bind(error)
            .bind(due)
            .bind(give_back)
            .bind(to_ms(now))
            .bind(iys_date);
        let q = match fence {
            Fence::Lease { owner, attempts } => q.bind(owner.as_str()).bind(*attempts),
            Fence::Batch { request_id } => q.bind(request_id.as_str()),
        };
        let Some(row) = q.fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let job = ReportJob::try_from(row)?;
        let a = &job.address;
        let alert = match outcome {
            JobOutcome::Done { .. } => {
                sqlx::query(
                    "UPDATE consent_state SET iys_confirmed = 1, updated_at_ms = $6
                     WHERE brand_code = $1 AND recipient = $2 AND recipient_type = $3
                       AND consent_type = $4 AND event_id = $5",
                )
                .bind(a.brand_code)
                .bind(a.recipient.as_str())
                .bind(a.recipient_type.as_str())
                .bind(a.consent_type.as_str())
                .bind(job.event_id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
                // Older movements still waiting can only be refused (H178): İYS has this one.
                sqlx::query(
                    "UPDATE report_jobs SET state = 'superseded', last_error = $7, updated_at_ms = $8
                     WHERE brand_code = $1 AND recipient = $2 AND recipient_type = $3
                       AND consent_type = $4 AND state = 'pending'
                       AND (consent_at_ms < $5 OR (consent_at_ms = $5 AND event_id < $6))",
                )
                .bind(a.brand_code)
                .bind(a.recipient.as_str())
                .bind(a.recipient_type.as_str())
                .bind(a.consent_type.as_str())
                .bind(to_ms(job.consent_at))
                .bind(job.event_id)
                .bind(format!("superseded by job {} (accepted by İYS)", job.id))
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await?;
                None
            }
            JobOutcome::Failed { error } => Some((AlertKind::Failed, error)),
            JobOutcome::Expired { error } => Some((AlertKind::Expired, error)),
            JobOutcome::SupersededByIys { reason } => Some((AlertKind::IysNewer, reason)),
            _ => None,
        };
        if let Some((kind, detail)) = alert {
            insert_alerts(&mut tx, kind, &[(job.id, detail.clone())], now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn brand_health(&self) -> Result<Vec<BrandHealth>, StoreError> {
        let rows: Vec<BrandHealthRow> = sqlx::query_as(
            "SELECT brand_code, failures, paused_until_ms, last_error FROM iys_brand_health
             WHERE failures > 0 ORDER BY brand_code",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(BrandHealth::from).collect())
    }

    async fn pause_brand(
        &self,
        brand_code: i64,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO iys_brand_health (brand_code, failures, paused_until_ms, last_error, updated_at_ms)
             VALUES ($1, 1, $2, $3, $4)
             ON CONFLICT (brand_code) DO UPDATE SET failures = iys_brand_health.failures + 1,
                 paused_until_ms = GREATEST(iys_brand_health.paused_until_ms, excluded.paused_until_ms),
                 last_error = excluded.last_error, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(brand_code)
        .bind(to_ms(until))
        .bind(error)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn brand_recovered(&self, brand_code: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM iys_brand_health WHERE brand_code = $1")
            .bind(brand_code)
            .execute(&self.pool)
            .await?;
        Ok(())
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
        let (ids, ats): (Vec<i64>, Vec<Option<i64>>) =
            dates.iter().map(|(id, at)| (*id, at.map(to_ms))).unzip();
        sqlx::query(
            "UPDATE report_jobs j SET iys_date_ms = d.at, updated_at_ms = $1
             FROM UNNEST($3::bigint[], $4::bigint[]) AS d(id, at)
             WHERE j.id = d.id AND j.state = 'leased' AND j.lease_owner = $2",
        )
        .bind(to_ms(now))
        .bind(owner)
        .bind(ids)
        .bind(ats)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn iys_dates(&self, keys: &[Address]) -> Result<Vec<SentDate>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<SentDateRow> = KeyArrays::of(keys)
            .bind(sqlx::query_as(IYS_DATES))
            .fetch_all(&self.pool)
            .await?;
        convert(rows)
    }

    async fn events_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        convert(
            sqlx::query_as::<_, EventRow>(EVENTS_BY_IDS)
                .bind(ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn iys_known_status(
        &self,
        keys: &[Address],
    ) -> Result<Vec<(Address, Status)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(sqlx::FromRow)]
        struct Known {
            #[sqlx(flatten)]
            address: super::rows::AddressRow,
            status: String,
        }
        let rows: Vec<Known> = KeyArrays::of(keys)
            .bind(sqlx::query_as(IYS_KNOWN_STATUS))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let status = r
                    .status
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("status: {e}")))?;
                Ok((Address::try_from(r.address)?, status))
            })
            .collect()
    }

    async fn batch_submitted(
        &self,
        batch: &NewBatch,
        jobs: &[(i64, Fence)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO iys_batches (request_id, brand_code, submitted_at_ms, poll_after_ms, polls,
                 items, state, updated_at_ms)
             VALUES ($1, $2, $3, $4, 0, $5, 'submitted', $6)",
        )
        .bind(batch.request_id.as_str())
        .bind(batch.brand_code)
        .bind(to_ms(batch.submitted_at))
        .bind(to_ms(batch.poll_after))
        .bind(jobs.len() as i64)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(jobs.len());
        let mut index = Vec::with_capacity(jobs.len());
        let mut owners = Vec::with_capacity(jobs.len());
        let mut attempts = Vec::with_capacity(jobs.len());
        // The index is the position in the submission, so a job without a lease keeps its slot.
        for (i, (job_id, fence)) in jobs.iter().enumerate() {
            if let Fence::Lease { owner, attempts: a } = fence {
                ids.push(*job_id);
                index.push(i as i64);
                owners.push(owner.as_str());
                attempts.push(*a);
            }
        }
        let moved = sqlx::query(
            "UPDATE report_jobs j SET state = 'batched', batch_id = $1, batch_index = f.idx,
                 lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $2
             FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::bigint[])
                 AS f(id, idx, owner, attempts)
             WHERE j.id = f.id AND j.state = 'leased' AND j.lease_owner = f.owner
               AND j.attempts = f.attempts",
        )
        .bind(batch.request_id.as_str())
        .bind(to_ms(now))
        .bind(ids)
        .bind(index)
        .bind(owners)
        .bind(attempts)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(moved as usize)
    }

    async fn claim_due_batches(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<IysBatch>, StoreError> {
        let rows: Vec<BatchRow> = sqlx::query_as(CLAIM_DUE_BATCHES)
            .bind(to_ms(now))
            .bind(to_ms(lease_until))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<IysBatch> = convert(rows)?;
        out.sort_by(|a, b| (a.submitted_at, &a.request_id).cmp(&(b.submitted_at, &b.request_id)));
        Ok(out)
    }

    async fn batch_jobs(&self, request_id: &str) -> Result<Vec<(i64, ReportJob)>, StoreError> {
        convert(
            sqlx::query_as::<_, BatchJobRow>(BATCH_JOBS)
                .bind(request_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn update_batch(
        &self,
        request_id: &str,
        state: BatchState,
        poll_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE iys_batches SET state = $2, poll_after_ms = $3, polls = polls + 1, updated_at_ms = $4
             WHERE request_id = $1",
        )
        .bind(request_id)
        .bind(state.as_str())
        .bind(to_ms(poll_after))
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        if state == BatchState::Abandoned {
            sqlx::query(
                "UPDATE report_jobs SET state = 'pending', due_at_ms = $2, batch_id = NULL,
                     batch_index = NULL, last_error = 'İYS never processed the batch', updated_at_ms = $2
                 WHERE batch_id = $1 AND state = 'batched'",
            )
            .bind(request_id)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn batch(&self, request_id: &str) -> Result<Option<IysBatch>, StoreError> {
        sqlx::query_as::<_, BatchRow>(BATCH)
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?
            .map(IysBatch::try_from)
            .transpose()
    }

    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let n = attempts.len();
        let mut job_id = Vec::with_capacity(n);
        let mut batch_id = Vec::with_capacity(n);
        let mut brand = Vec::with_capacity(n);
        let mut operation = Vec::with_capacity(n);
        let mut method = Vec::with_capacity(n);
        let mut path = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut code = Vec::with_capacity(n);
        let mut duration = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        for a in attempts {
            job_id.push(a.job_id);
            batch_id.push(a.batch_id.as_deref());
            brand.push(a.brand_code);
            operation.push(a.operation.as_str());
            method.push(a.method.as_str());
            path.push(a.path.as_str());
            status.push(a.status);
            code.push(a.code.as_deref());
            duration.push(a.duration_ms);
            at.push(to_ms(a.at));
        }
        sqlx::query(INSERT_ATTEMPTS)
            .bind(job_id)
            .bind(batch_id)
            .bind(brand)
            .bind(operation)
            .bind(method)
            .bind(path)
            .bind(status)
            .bind(code)
            .bind(duration)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn attempts_for_job(&self, job_id: i64) -> Result<Vec<Attempt>, StoreError> {
        let rows: Vec<super::rows::AttemptRow> = sqlx::query_as(ATTEMPTS_FOR_JOB)
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Attempt::from).collect())
    }

    async fn attempt_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM iys_attempts")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn reserve_iys_slot(
        &self,
        now: DateTime<Utc>,
        spacing_ms: i64,
    ) -> Result<DateTime<Utc>, StoreError> {
        // One statement: the row lock serialises replicas.
        let next: i64 = sqlx::query_scalar(
            "UPDATE iys_pacing SET next_slot_ms = GREATEST(next_slot_ms, $1) + $2 WHERE id = 1
             RETURNING next_slot_ms",
        )
        .bind(to_ms(now))
        .bind(spacing_ms.max(0))
        .fetch_one(&self.pool)
        .await?;
        Ok(from_ms(next - spacing_ms.max(0)))
    }

    async fn sync_cursor(
        &self,
        brand_code: i64,
        source: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT after FROM sync_cursors WHERE brand_code = $1 AND source = $2",
        )
        .bind(brand_code)
        .bind(source)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_sync_cursor(
        &self,
        brand_code: i64,
        source: &str,
        after: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_cursors (brand_code, source, after, updated_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (brand_code, source) DO UPDATE SET after = excluded.after,
                 updated_at_ms = excluded.updated_at_ms",
        )
        .bind(brand_code)
        .bind(source)
        .bind(after)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn expire_overdue(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError> {
        let mut tx = self.begin().await?;
        let rows: Vec<JobRow> = sqlx::query_as(EXPIRE_OVERDUE)
            .bind(to_ms(now))
            .fetch_all(&mut *tx)
            .await?;
        let jobs: Vec<ReportJob> = convert(rows)?;
        let alerts: Vec<(i64, String)> = jobs
            .iter()
            .map(|j| {
                let detail = format!(
                    "deadline {} passed before İYS accepted it",
                    j.deadline_at.to_rfc3339()
                );
                (j.id, detail)
            })
            .collect();
        insert_alerts(&mut tx, AlertKind::Expired, &alerts, now).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    async fn flag_past_target(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError> {
        let mut tx = self.begin().await?;
        let rows: Vec<JobRow> = sqlx::query_as(PAST_TARGET)
            .bind(to_ms(now))
            .fetch_all(&mut *tx)
            .await?;
        let jobs: Vec<ReportJob> = convert(rows)?;
        let alerts: Vec<(i64, String)> = jobs
            .iter()
            .map(|j| {
                let detail = format!("internal target {} missed", j.target_at.to_rfc3339());
                (j.id, detail)
            })
            .collect();
        let raised: HashSet<i64> = insert_alerts(&mut tx, AlertKind::TargetMissed, &alerts, now)
            .await?
            .into_iter()
            .collect();
        tx.commit().await?;
        Ok(jobs
            .into_iter()
            .filter(|j| raised.contains(&j.id))
            .collect())
    }

    async fn alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        convert(
            sqlx::query_as::<_, AlertRow>(ALERTS)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
