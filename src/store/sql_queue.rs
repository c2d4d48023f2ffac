//! [`ReportQueue`] over sqlx `Any`. The backend differences are the claim's row locking
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer, so a plain UPDATE is a claim)
//! and the two-argument maximum (`GREATEST` / `MAX`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::queue::{
    Alert, AlertKind, Attempt, BatchState, BrandHealth, Fence, IysBatch, JobOutcome, NewBatch,
    ReportQueue, SentDate, outcome_columns,
};
use super::rows::{JOB_COLUMNS, job_from_row, stored_event_from_row};
use super::{AddressKey, Backend, ReportJob, SqlStore, StoreError, StoredEvent};
use crate::domain::time::{from_ms, to_ms};
use crate::domain::{ConsentType, RecipientType, Status};

/// Open jobs a worker may take: pending and due, or leased by a worker whose lease lapsed.
const CLAIMABLE: &str =
    "((state = 'pending' AND due_at_ms <= $1) OR (state = 'leased' AND lease_until_ms < $1))";
const BATCH_COLUMNS: &str =
    "request_id, brand_code, submitted_at_ms, poll_after_ms, polls, items, state";
pub(super) const ATTEMPT_COLUMNS: &str =
    "job_id, batch_id, brand_code, operation, method, path, status, code, duration_ms, at_ms";
/// Rows per `IN (...)` list, well under both backends' parameter limits.
pub(super) const CHUNK: usize = 500;

impl SqlStore {
    fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// The claim itself, inside the caller's transaction: `brand` names the one brand a probe
    /// claims for (whose own pause it ignores); without it, paused brands are skipped.
    async fn claim_where(
        &self,
        tx: &mut Transaction<'static, Any>,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        brand: Option<i64>,
    ) -> Result<Vec<ReportJob>, StoreError> {
        let brand_sql = match brand {
            Some(_) => "AND j.brand_code = $5",
            None => {
                "AND NOT EXISTS (SELECT 1 FROM iys_brand_health h
                     WHERE h.brand_code = j.brand_code AND h.paused_until_ms > $1)"
            }
        };
        let sql = format!(
            "UPDATE report_jobs SET state = 'leased', lease_owner = $2, lease_until_ms = $3,
                 attempts = attempts + 1, updated_at_ms = $1
             WHERE id IN (SELECT j.id FROM report_jobs j WHERE {CLAIMABLE} {brand_sql}
                            AND NOT EXISTS (SELECT 1 FROM report_jobs o
                                WHERE o.brand_code = j.brand_code AND o.recipient = j.recipient
                                  AND o.recipient_type = j.recipient_type
                                  AND o.consent_type = j.consent_type AND o.id <> j.id
                                  AND (o.state = 'batched'
                                       OR (o.state = 'leased' AND o.lease_until_ms >= $1)))
                          ORDER BY j.deadline_at_ms, j.id LIMIT $4{})
             RETURNING {JOB_COLUMNS}",
            self.skip_locked()
        );
        let mut q = sqlx::query(&sql)
            .bind(to_ms(now))
            .bind(owner)
            .bind(to_ms(lease_until))
            .bind(limit);
        if let Some(b) = brand {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&mut **tx).await?;
        rows.iter().map(job_from_row).collect()
    }

    fn greatest(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "GREATEST",
            Backend::Sqlite => "MAX",
        }
    }
}

impl SqlStore {
    /// Runs `sql(list)` once per chunk of `recipients`, with brand, recipient type and type bound
    /// as `$1`–`$3` and `list` the placeholders of the chunk's recipients (`$4`…).
    pub(super) async fn rows_for_recipients(
        &self,
        (brand, rt, ct): (i64, RecipientType, ConsentType),
        recipients: &[&str],
        sql: impl Fn(&str) -> String,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in recipients.chunks(CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|n| format!("${}", n + 4)).collect();
            let sql = sql(&list.join(","));
            let mut q = sqlx::query(&sql)
                .bind(brand)
                .bind(rt.as_str())
                .bind(ct.as_str());
            for r in chunk {
                q = q.bind(*r);
            }
            out.extend(q.fetch_all(&self.read).await?);
        }
        Ok(out)
    }
}

fn batch_from_row(row: &AnyRow) -> Result<IysBatch, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(IysBatch {
        request_id: row.try_get("request_id")?,
        brand_code: row.try_get("brand_code")?,
        submitted_at: from_ms(row.try_get("submitted_at_ms")?),
        poll_after: from_ms(row.try_get("poll_after_ms")?),
        polls: row.try_get("polls")?,
        items: row.try_get("items")?,
        state: BatchState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("batch state {state:?}")))?,
    })
}

pub(super) fn attempt_from_row(row: &AnyRow) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        job_id: row.try_get("job_id")?,
        batch_id: row.try_get("batch_id")?,
        brand_code: row.try_get("brand_code")?,
        operation: row.try_get("operation")?,
        method: row.try_get("method")?,
        path: row.try_get("path")?,
        status: row.try_get("status")?,
        code: row.try_get("code")?,
        duration_ms: row.try_get("duration_ms")?,
        at: from_ms(row.try_get("at_ms")?),
    })
}

pub(super) async fn insert_alert(
    tx: &mut Transaction<'static, Any>,
    job_id: i64,
    kind: AlertKind,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO alerts (job_id, kind, severity, detail, at_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (job_id, kind) DO NOTHING RETURNING id",
    )
    .bind(job_id)
    .bind(kind.as_str())
    .bind(kind.severity())
    .bind(detail)
    .bind(to_ms(now))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.is_some())
}

pub(super) fn alert_from_row(r: &AnyRow) -> Result<Alert, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(Alert {
        id: r.try_get("id")?,
        job_id: r.try_get("job_id")?,
        kind: AlertKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("alert kind {kind:?}")))?,
        severity: r.try_get("severity")?,
        detail: r.try_get("detail")?,
        at: from_ms(r.try_get("at_ms")?),
    })
}

#[async_trait]
impl ReportQueue for SqlStore {
    async fn claim_jobs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ReportJob>, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Replicas claim one at a time: the address check below must see every other
            // replica's committed claims, which row locks alone (SKIP LOCKED) would not give.
            sqlx::query("SELECT pg_advisory_xact_lock(7270001)")
                .execute(&mut *tx)
                .await?;
        }
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
            let probe = self
                .claim_where(&mut tx, owner, now, lease_until, 1, Some(brand))
                .await?;
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
            jobs.extend(
                self.claim_where(&mut tx, owner, now, lease_until, rest, None)
                    .await?,
            );
        }
        tx.commit().await?;
        // RETURNING has no defined order.
        jobs.sort_by_key(|j| (j.deadline_at, j.id));
        Ok(jobs)
    }

    async fn brand_health(&self) -> Result<Vec<BrandHealth>, StoreError> {
        let rows = sqlx::query(
            "SELECT brand_code, failures, paused_until_ms, last_error FROM iys_brand_health
             WHERE failures > 0 ORDER BY brand_code",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BrandHealth {
                    brand_code: r.try_get("brand_code")?,
                    failures: r.try_get("failures")?,
                    paused_until: from_ms(r.try_get("paused_until_ms")?),
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    async fn pause_brand(
        &self,
        brand_code: i64,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO iys_brand_health (brand_code, failures, paused_until_ms, last_error, updated_at_ms)
             VALUES ($1, 1, $2, $3, $4)
             ON CONFLICT (brand_code) DO UPDATE SET failures = iys_brand_health.failures + 1,
                 paused_until_ms = {}(iys_brand_health.paused_until_ms, excluded.paused_until_ms),
                 last_error = excluded.last_error, updated_at_ms = excluded.updated_at_ms",
            self.greatest()
        );
        sqlx::query(&sql)
            .bind(brand_code)
            .bind(to_ms(until))
            .bind(error)
            .bind(to_ms(now))
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn brand_recovered(&self, brand_code: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM iys_brand_health WHERE brand_code = $1")
            .bind(brand_code)
            .execute(&self.write)
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
        let mut tx = self.begin_write().await?;
        // One statement per chunk: CASE id WHEN … THEN … picks each job's own date.
        for chunk in dates.chunks(CHUNK / 2) {
            let mut cases = String::new();
            let mut ids = Vec::with_capacity(chunk.len());
            for n in 0..chunk.len() {
                let (id, at) = (3 + 2 * n, 4 + 2 * n);
                cases.push_str(&format!(" WHEN ${id} THEN ${at}"));
                ids.push(format!("${id}"));
            }
            let sql = format!(
                "UPDATE report_jobs SET iys_date_ms = CASE id{cases} END, updated_at_ms = $1
                 WHERE state = 'leased' AND lease_owner = $2 AND id IN ({})",
                ids.join(",")
            );
            let mut q = sqlx::query(&sql).bind(to_ms(now)).bind(owner);
            for (id, at) in chunk {
                q = q.bind(*id).bind(at.map(to_ms));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn iys_dates(&self, keys: &[AddressKey]) -> Result<Vec<SentDate>, StoreError> {
        let mut out = Vec::new();
        for (kind, recipients) in AddressKey::group(keys) {
            let rows = self
                .rows_for_recipients(kind, &recipients, |list| {
                    format!(
                        "SELECT j.recipient, j.id AS job_id, j.iys_date_ms AS at_ms,
                             CASE WHEN e.status = 'ONAY' AND j.state <> 'done' THEN 1 ELSE 0 END
                                 AS unconfirmed_onay
                         FROM report_jobs j JOIN consent_events e ON e.id = j.event_id
                         WHERE j.brand_code = $1 AND j.recipient_type = $2 AND j.consent_type = $3
                           AND j.recipient IN ({list}) AND j.iys_date_ms IS NOT NULL
                         UNION ALL
                         SELECT recipient, NULL AS job_id, MAX(consent_at_ms) AS at_ms,
                             0 AS unconfirmed_onay
                         FROM consent_events
                         WHERE brand_code = $1 AND recipient_type = $2 AND consent_type = $3
                           AND recipient IN ({list})
                           AND (substr(source, 1, 4) = 'IYS_' OR channel = 'iys')
                         GROUP BY recipient"
                    )
                })
                .await?;
            let (brand, rt, ct) = kind;
            for row in rows {
                out.push(SentDate {
                    address: AddressKey {
                        brand_code: brand,
                        recipient: row.try_get("recipient")?,
                        recipient_type: rt,
                        consent_type: ct,
                    },
                    job_id: row.try_get("job_id")?,
                    at: from_ms(row.try_get("at_ms")?),
                    unconfirmed_onay: row.try_get::<i64, _>("unconfirmed_onay")? != 0,
                });
            }
        }
        Ok(out)
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
        let fence_sql = match fence {
            Fence::Lease { .. } => "state = 'leased' AND lease_owner = $9 AND attempts = $10",
            Fence::Batch { .. } => "state = 'batched' AND batch_id = $9",
        };
        let sql = format!(
            "UPDATE report_jobs SET state = $2, transaction_id = COALESCE($3, transaction_id),
                 last_error = $4, due_at_ms = COALESCE($5, due_at_ms), attempts = attempts - $6,
                 iys_date_ms = COALESCE($8, iys_date_ms),
                 lease_owner = NULL, lease_until_ms = NULL,
                 batch_id = CASE WHEN $2 = 'pending' THEN NULL ELSE batch_id END,
                 batch_index = CASE WHEN $2 = 'pending' THEN NULL ELSE batch_index END,
                 updated_at_ms = $7
             WHERE id = $1 AND {fence_sql}
             RETURNING {JOB_COLUMNS}"
        );
        let mut tx = self.begin_write().await?;
        let q = sqlx::query(&sql)
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
        let row = q.fetch_optional(&mut *tx).await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let job = job_from_row(&row)?;
        let a = &job.address;
        match outcome {
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
            }
            JobOutcome::Failed { error } => {
                insert_alert(&mut tx, job.id, AlertKind::Failed, error, now).await?;
            }
            JobOutcome::Expired { error } => {
                insert_alert(&mut tx, job.id, AlertKind::Expired, error, now).await?;
            }
            JobOutcome::SupersededByIys { reason } => {
                insert_alert(&mut tx, job.id, AlertKind::IysNewer, reason, now).await?;
            }
            _ => {}
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn events_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|n| format!("${}", n + 1)).collect();
            let sql = format!(
                "SELECT id, brand_code, recipient, recipient_type, consent_type, status, source,
                     channel, consent_at_ms, received_at_ms, provider, provider_message_id, evidence
                 FROM consent_events WHERE id IN ({})",
                list.join(",")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(stored_event_from_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn iys_known_status(
        &self,
        keys: &[AddressKey],
    ) -> Result<Vec<(AddressKey, Status)>, StoreError> {
        let mut newest: HashMap<AddressKey, (i64, i64, Status)> = HashMap::new();
        for (kind, recipients) in AddressKey::group(keys) {
            let rows = self
                .rows_for_recipients(kind, &recipients, |list| {
                    format!(
                        "SELECT e.recipient, e.status, e.consent_at_ms, e.id FROM consent_events e
                         WHERE e.brand_code = $1 AND e.recipient_type = $2 AND e.consent_type = $3
                           AND e.recipient IN ({list})
                           AND (substr(e.source, 1, 4) = 'IYS_' OR e.channel = 'iys'
                                OR EXISTS (SELECT 1 FROM report_jobs j
                                           WHERE j.event_id = e.id AND j.state = 'done'))"
                    )
                })
                .await?;
            let (brand, rt, ct) = kind;
            for row in rows {
                let status: String = row.try_get("status")?;
                let status: Status = status
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("status: {e}")))?;
                let key = AddressKey {
                    brand_code: brand,
                    recipient: row.try_get("recipient")?,
                    recipient_type: rt,
                    consent_type: ct,
                };
                let rank = (
                    row.try_get::<i64, _>("consent_at_ms")?,
                    row.try_get::<i64, _>("id")?,
                );
                let e = newest.entry(key).or_insert((rank.0, rank.1, status));
                if (rank.0, rank.1) > (e.0, e.1) {
                    *e = (rank.0, rank.1, status);
                }
            }
        }
        Ok(newest.into_iter().map(|(k, (_, _, s))| (k, s)).collect())
    }

    async fn batch_submitted(
        &self,
        batch: &NewBatch,
        jobs: &[(i64, Fence)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
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
        let mut moved = 0;
        for (index, (job_id, fence)) in jobs.iter().enumerate() {
            let Fence::Lease { owner, attempts } = fence else {
                continue;
            };
            let n = sqlx::query(
                "UPDATE report_jobs SET state = 'batched', batch_id = $2, batch_index = $3,
                     lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $4
                 WHERE id = $1 AND state = 'leased' AND lease_owner = $5 AND attempts = $6",
            )
            .bind(*job_id)
            .bind(batch.request_id.as_str())
            .bind(index as i64)
            .bind(to_ms(now))
            .bind(owner.as_str())
            .bind(*attempts)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            moved += n as usize;
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn claim_due_batches(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<IysBatch>, StoreError> {
        let sql = format!(
            "UPDATE iys_batches SET poll_after_ms = $2, updated_at_ms = $1
             WHERE request_id IN (SELECT request_id FROM iys_batches
                                  WHERE state = 'submitted' AND poll_after_ms <= $1
                                  ORDER BY poll_after_ms, request_id LIMIT $3{})
             RETURNING {BATCH_COLUMNS}",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .bind(to_ms(lease_until))
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        let mut out: Vec<IysBatch> = rows.iter().map(batch_from_row).collect::<Result<_, _>>()?;
        out.sort_by_key(|b| (b.submitted_at, b.request_id.clone()));
        Ok(out)
    }

    async fn batch_jobs(&self, request_id: &str) -> Result<Vec<(i64, ReportJob)>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS}, batch_index FROM report_jobs
             WHERE batch_id = $1 AND state = 'batched' ORDER BY batch_index"
        );
        let rows = sqlx::query(&sql)
            .bind(request_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<Option<i64>, _>("batch_index")?.unwrap_or(-1),
                    job_from_row(r)?,
                ))
            })
            .collect()
    }

    async fn update_batch(
        &self,
        request_id: &str,
        state: BatchState,
        poll_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
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
        let sql = format!("SELECT {BATCH_COLUMNS} FROM iys_batches WHERE request_id = $1");
        let row = sqlx::query(&sql)
            .bind(request_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for a in attempts {
            sqlx::query(&format!(
                "INSERT INTO iys_attempts ({ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(a.job_id)
            .bind(a.batch_id.as_deref())
            .bind(a.brand_code)
            .bind(a.operation.as_str())
            .bind(a.method.as_str())
            .bind(a.path.as_str())
            .bind(a.status)
            .bind(a.code.as_deref())
            .bind(a.duration_ms)
            .bind(to_ms(a.at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn attempts_for_job(&self, job_id: i64) -> Result<Vec<Attempt>, StoreError> {
        let sql =
            format!("SELECT {ATTEMPT_COLUMNS} FROM iys_attempts WHERE job_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(job_id).fetch_all(&self.read).await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn attempt_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM iys_attempts")
            .fetch_one(&self.read)
            .await?)
    }

    async fn reserve_iys_slot(
        &self,
        now: DateTime<Utc>,
        spacing_ms: i64,
    ) -> Result<DateTime<Utc>, StoreError> {
        // One statement: the row lock (PostgreSQL) or the single writer (SQLite) serialises it.
        let sql = format!(
            "UPDATE iys_pacing SET next_slot_ms = {}(next_slot_ms, $1) + $2 WHERE id = 1
             RETURNING next_slot_ms",
            self.greatest()
        );
        let next: i64 = sqlx::query_scalar(&sql)
            .bind(to_ms(now))
            .bind(spacing_ms.max(0))
            .fetch_one(&self.write)
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
        .fetch_optional(&self.read)
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn expire_overdue(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError> {
        let sql = format!(
            "UPDATE report_jobs SET state = 'expired', last_error = 'the legal İYS deadline passed',
                 lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $1
             WHERE id IN (SELECT id FROM report_jobs WHERE {CLAIMABLE} AND deadline_at_ms < $1{})
             RETURNING {JOB_COLUMNS}",
            self.skip_locked()
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .fetch_all(&mut *tx)
            .await?;
        let jobs: Vec<ReportJob> = rows.iter().map(job_from_row).collect::<Result<_, _>>()?;
        for j in &jobs {
            let detail = format!(
                "deadline {} passed before İYS accepted it",
                j.deadline_at.to_rfc3339()
            );
            insert_alert(&mut tx, j.id, AlertKind::Expired, &detail, now).await?;
        }
        tx.commit().await?;
        Ok(jobs)
    }

    async fn flag_past_target(&self, now: DateTime<Utc>) -> Result<Vec<ReportJob>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM report_jobs
             WHERE state IN ('pending', 'leased', 'batched') AND target_at_ms < $1
               AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.job_id = report_jobs.id AND a.kind = 'target_missed')
             ORDER BY deadline_at_ms, id LIMIT 1000"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .fetch_all(&mut *tx)
            .await?;
        let mut flagged = Vec::new();
        for row in &rows {
            let j = job_from_row(row)?;
            let detail = format!("internal target {} missed", j.target_at.to_rfc3339());
            if insert_alert(&mut tx, j.id, AlertKind::TargetMissed, &detail, now).await? {
                flagged.push(j);
            }
        }
        tx.commit().await?;
        Ok(flagged)
    }

    async fn alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, job_id, kind, severity, detail, at_ms FROM alerts ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }
}
