//! Sending: one v2 call per movement when the queue is short, async batches when it is long.
//! An outage answer pauses the brand for every replica (İYS is down or limiting; hammering it
//! would only lower our success rate): the rest waits for the pause, then one probe goes first.

use crate::telemetry::chain;
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::planner::{self, OutOfOrder, Verdict};
use super::{Ready, Report, Reporter, ReporterError, lease, secs};
use crate::domain::time::from_iys;
use crate::iys::paced::CallError;
use crate::iys::sync::iys_record_intent;
use crate::iys::{ErrorClass, IysError};
use crate::store::ReportJob;
use crate::store::queue::{Fence, JobOutcome, NewBatch};

impl Reporter {
    pub(super) async fn send(
        &self,
        ready: Vec<Ready>,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let mut by_brand: BTreeMap<i64, Vec<Ready>> = BTreeMap::new();
        for r in ready {
            by_brand
                .entry(r.job.address.brand_code)
                .or_default()
                .push(r);
        }
        for (brand, items) in by_brand {
            if let Some(&until) = report.paused.get(&brand) {
                let hold = JobOutcome::Release { due_at: until };
                self.release_rest(items.into_iter(), &hold, report).await?;
                continue;
            }
            if planner::use_batches(items.len(), self.cfg.batch_threshold) {
                self.send_batches(brand, items, report).await?;
            } else {
                self.send_singles(brand, items, report).await?;
            }
        }
        Ok(())
    }

    /// What an İYS refusal means for one job, applied.
    pub(super) async fn refused(
        &self,
        job: &ReportJob,
        fence: &Fence,
        e: &IysError,
        report: &mut Report,
    ) -> Result<JobOutcome, ReporterError> {
        let error = e.to_string();
        let brand = job.address.brand_code;
        let outcome = match planner::verdict(e.class()) {
            Verdict::Retry => self.retry_after_failure(job, e, error, report).await?,
            Verdict::Superseded => {
                self.brand_answered(brand, report).await?;
                return self.out_of_order(job, fence, e, report).await;
            }
            verdict => {
                self.brand_answered(brand, report).await?;
                match verdict {
                    Verdict::Done => JobOutcome::Done {
                        transaction_id: None,
                    },
                    Verdict::NothingToRevoke => JobOutcome::NothingToRevoke,
                    Verdict::Expired => JobOutcome::Expired { error },
                    _ => JobOutcome::Failed { error },
                }
            }
        };
        self.finish(job, fence, outcome.clone(), report).await?;
        Ok(outcome)
    }

    /// İYS said the movement is out of order (H178). That is a question, not a verdict: read
    /// İYS's record for the address and compare it with what was sent.
    async fn out_of_order(
        &self,
        job: &ReportJob,
        fence: &Fence,
        e: &IysError,
        report: &mut Report,
    ) -> Result<JobOutcome, ReporterError> {
        let brand = job.address.brand_code;
        let a = &job.address;
        let event = self.store.event(job.event_id).await?;
        let (Some(event), Ok(recipient)) = (
            event,
            crate::domain::Recipient::parse_for(&a.recipient, a.consent_type),
        ) else {
            let error = format!("{e}; the movement or its recipient cannot be read back");
            let outcome = JobOutcome::Failed { error };
            self.finish(job, fence, outcome.clone(), report).await?;
            return Ok(outcome);
        };
        report.status_checks += 1;
        let record = match self
            .iys
            .consent_status(
                Some(job.id),
                brand,
                &recipient,
                a.recipient_type,
                a.consent_type,
            )
            .await
        {
            Ok(r) => r,
            Err(CallError::Store(x)) => return Err(x.into()),
            Err(CallError::Iys(x)) => {
                let error = format!("{e}; İYS's record could not be read: {x}");
                let outcome = self.retry_after_failure(job, &x, error, report).await?;
                self.finish(job, fence, outcome.clone(), report).await?;
                return Ok(outcome);
            }
        };
        let outcome = match record {
            // İYS refused against a record it no longer shows: ask again later.
            None => self.retry_outcome(job, None, format!("{e}; İYS shows no record")),
            Some(rec) => {
                let at = rec.consent_date.as_deref().and_then(from_iys);
                match planner::out_of_order(
                    event.status,
                    event.consent_at,
                    job.iys_date,
                    rec.status,
                    at,
                ) {
                    OutOfOrder::AlreadyHeld => JobOutcome::Done {
                        transaction_id: None,
                    },
                    OutOfOrder::ResendAfter(iys_date) => JobOutcome::ResendAfter {
                        iys_date,
                        error: format!(
                            "{e}; İYS holds an older record of the same second, resending"
                        ),
                    },
                    OutOfOrder::IysNewer => {
                        let reason = format!(
                            "İYS holds {} from {} dated {}, newer than this {} ({e})",
                            rec.status.as_str(),
                            rec.source.as_deref().unwrap_or("?"),
                            rec.consent_date.as_deref().unwrap_or("?"),
                            event.status.as_str(),
                        );
                        match iys_record_intent(brand, &rec) {
                            Some(intent) => {
                                // İYS already holds it: recorded without a report job.
                                self.ledger
                                    .record_with_times(intent, self.now(), None)
                                    .await?;
                                report.imported_from_iys += 1;
                                JobOutcome::SupersededByIys { reason }
                            }
                            None => JobOutcome::Failed {
                                error: format!("{reason}; the record cannot be brought in"),
                            },
                        }
                    }
                }
            }
        };
        self.finish(job, fence, outcome.clone(), report).await?;
        Ok(outcome)
    }

    /// Writes the date each movement goes out with before the request leaves (`going`), so a
    /// crash cannot forget a date İYS may hold; or takes it back (`!going`) once İYS answered
    /// that it stored nothing. A date that went out in an earlier attempt is never taken back.
    async fn stamp(&self, items: &[Ready], going: bool) -> Result<(), ReporterError> {
        let dates: Vec<(i64, Option<DateTime<Utc>>)> = items
            .iter()
            .filter(|r| going || !r.sent_before)
            .map(|r| (r.job.id, going.then_some(r.date)))
            .collect();
        self.store
            .stamp_iys_dates(self.owner(), &dates, self.now())
            .await?;
        Ok(())
    }

    /// A retry after a failed call: an outage pauses the brand and the job waits for the pause;
    /// any other retryable answer backs the job off on its own.
    async fn retry_after_failure(
        &self,
        job: &ReportJob,
        e: &IysError,
        error: String,
        report: &mut Report,
    ) -> Result<JobOutcome, ReporterError> {
        let wait = if is_outage(e) {
            let until = self.brand_outage(job.address.brand_code, e, report).await?;
            (until - self.now()).to_std().ok()
        } else {
            e.retry_after
        };
        Ok(self.retry_outcome(job, wait, error))
    }

    /// İYS failed for the brand: pause it for every replica and return until when.
    pub(super) async fn brand_outage(
        &self,
        brand: i64,
        e: &IysError,
        report: &mut Report,
    ) -> Result<DateTime<Utc>, ReporterError> {
        let now = self.now();
        let failures = report.failing.get(&brand).copied().unwrap_or(0) + 1;
        let retry_after = e.retry_after.and_then(|d| Duration::from_std(d).ok());
        let until = self
            .retry
            .brand_pause(now, failures, retry_after, rand::random::<f64>());
        self.store
            .pause_brand(brand, until, &e.to_string(), now)
            .await?;
        report.failing.insert(brand, failures);
        report.paused.insert(brand, until);
        report.outages += 1;
        metrics::counter!("iys_relay_iys_outage_pauses_total").increment(1);
        tracing::warn!(brand, failures, until = %until, error = %chain(&e),
            "İYS is failing for the brand: its movements wait, one probe follows");
        Ok(until)
    }

    /// İYS answered for the brand (success or a business refusal): the outage is over.
    pub(super) async fn brand_answered(
        &self,
        brand: i64,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        if report.failing.remove(&brand).is_some() {
            report.paused.remove(&brand);
            self.store.brand_recovered(brand).await?;
            tracing::info!(brand, "İYS answers the brand again");
        }
        Ok(())
    }

    /// Hands the untried rest back, due when the failed one will be retried.
    pub(super) async fn release_rest(
        &self,
        rest: impl Iterator<Item = Ready>,
        after: &JobOutcome,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let due_at = match after {
            JobOutcome::Retry { due_at, .. } | JobOutcome::Release { due_at } => *due_at,
            _ => self.now() + Duration::seconds(1),
        };
        for r in rest {
            let fence = lease(&r.job, self.owner());
            self.finish(&r.job, &fence, JobOutcome::Release { due_at }, report)
                .await?;
        }
        Ok(())
    }

    async fn send_singles(
        &self,
        brand: i64,
        items: Vec<Ready>,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let mut items = items.into_iter();
        while let Some(r) = items.next() {
            let fence = lease(&r.job, self.owner());
            report.singles_sent += 1;
            self.stamp(std::slice::from_ref(&r), true).await?;
            match self.iys.add_consent(r.job.id, brand, &r.request).await {
                Ok(resp) => {
                    self.brand_answered(brand, report).await?;
                    let done = JobOutcome::Done {
                        transaction_id: Some(resp.transaction_id),
                    };
                    self.finish(&r.job, &fence, done, report).await?;
                }
                Err(CallError::Store(e)) => return Err(e.into()),
                Err(CallError::Iys(e)) => {
                    if never_stored(&e) {
                        self.stamp(std::slice::from_ref(&r), false).await?;
                    }
                    let outcome = self.refused(&r.job, &fence, &e, report).await?;
                    if e.class().is_retryable() {
                        return self.release_rest(items, &outcome, report).await;
                    }
                }
            }
        }
        Ok(())
    }

    async fn send_batches(
        &self,
        brand: i64,
        items: Vec<Ready>,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let max = self
            .cfg
            .max_batch_size
            .clamp(1, crate::iys::client::MAX_BATCH);
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<Ready> = items.by_ref().take(max).collect();
            let requests: Vec<_> = chunk.iter().map(|r| r.request.clone()).collect();
            let submitted_at = self.now();
            self.stamp(&chunk, true).await?;
            match self.iys.add_batch(brand, &requests).await {
                Ok(accepted) => {
                    self.brand_answered(brand, report).await?;
                    report.batches_submitted += 1;
                    let batch = NewBatch {
                        request_id: accepted.request_id,
                        brand_code: brand,
                        submitted_at,
                        poll_after: submitted_at + secs(self.cfg.poll_delay_seconds),
                    };
                    let fences: Vec<(i64, Fence)> = chunk
                        .iter()
                        .map(|r| (r.job.id, lease(&r.job, self.owner())))
                        .collect();
                    let moved = self
                        .store
                        .batch_submitted(&batch, &fences, self.now())
                        .await?;
                    tracing::info!(request_id = %batch.request_id, brand, items = moved, "İYS batch submitted");
                }
                Err(CallError::Store(e)) => return Err(e.into()),
                Err(CallError::Iys(e)) => {
                    if never_stored(&e) {
                        self.stamp(&chunk, false).await?;
                    }
                    let indexed: Vec<_> = e
                        .errors
                        .iter()
                        .filter_map(|x| x.index.map(|i| (i, x)))
                        .collect();
                    if e.class().is_retryable() || indexed.is_empty() {
                        // The whole request failed: every item shares the verdict.
                        let mut chunk = chunk.into_iter();
                        let first = chunk.next();
                        let Some(first) = first else { continue };
                        let fence = lease(&first.job, self.owner());
                        let outcome = self.refused(&first.job, &fence, &e, report).await?;
                        if e.class().is_retryable() {
                            self.release_rest(chunk.chain(items), &outcome, report)
                                .await?;
                            return Ok(());
                        }
                        for r in chunk {
                            let fence = lease(&r.job, self.owner());
                            self.refused(&r.job, &fence, &e, report).await?;
                        }
                        continue;
                    }
                    // Per-item validation: settle the named items, resend the others next round.
                    let mut named = std::collections::HashMap::new();
                    for (i, item) in indexed {
                        named.entry(i).or_insert(item);
                    }
                    let mut rest = Vec::new();
                    for (i, r) in chunk.into_iter().enumerate() {
                        match named.get(&i) {
                            Some(item) => {
                                let one = IysError {
                                    errors: vec![(*item).clone()],
                                    ..e.clone()
                                };
                                let fence = lease(&r.job, self.owner());
                                self.refused(&r.job, &fence, &one, report).await?;
                            }
                            None => rest.push(r),
                        }
                    }
                    let soon = JobOutcome::Release { due_at: self.now() };
                    self.release_rest(rest.into_iter(), &soon, report).await?;
                }
            }
        }
        Ok(())
    }
}

/// An answer that says İYS (or what stands in front of it) is not serving: 5xx, timeouts, 429,
/// and a 4xx without an İYS error code (an edge or WAF page). Not a verdict on the movement.
pub(super) fn is_outage(e: &IysError) -> bool {
    matches!(e.class(), ErrorClass::Transient | ErrorClass::RateLimited)
}

/// An answer after which İYS certainly holds nothing of the request: a refusal (4xx, 429) or an
/// explicit 503. A 500/502/504, a timeout or a dropped connection may come after İYS stored it.
fn never_stored(e: &IysError) -> bool {
    e.kind == crate::iys::IysErrorKind::Http && matches!(e.status, Some(400..=499 | 503))
}
