//! Sending: one v2 call per movement when the queue is short, async batches when it is long.
//! A transient failure stops the round for that brand (İYS is down or limiting; hammering it
//! would only lower our success rate), the rest waits for the same retry time.

use std::collections::BTreeMap;

use chrono::Duration;

use super::planner::{self, Verdict};
use super::{Ready, Report, Reporter, ReporterError, lease, secs};
use crate::iys::IysError;
use crate::iys::paced::CallError;
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
        let outcome = match planner::verdict(e.class()) {
            Verdict::Retry => self.retry_outcome(job, e.retry_after, error),
            Verdict::Done => JobOutcome::Done {
                transaction_id: None,
            },
            Verdict::NothingToRevoke => JobOutcome::NothingToRevoke,
            Verdict::Expired => JobOutcome::Expired { error },
            Verdict::Superseded => JobOutcome::Superseded {
                reason: format!("İYS holds a newer movement: {error}"),
            },
            Verdict::Failed => JobOutcome::Failed { error },
        };
        self.finish(job, fence, outcome.clone(), report).await?;
        Ok(outcome)
    }

    /// Hands the untried rest back, due when the failed one will be retried.
    async fn release_rest(
        &self,
        rest: impl Iterator<Item = Ready>,
        after: &JobOutcome,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let due_at = match after {
            JobOutcome::Retry { due_at, .. } => *due_at,
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
            match self.iys.add_consent(r.job.id, brand, &r.request).await {
                Ok(resp) => {
                    let done = JobOutcome::Done {
                        transaction_id: Some(resp.transaction_id),
                    };
                    self.finish(&r.job, &fence, done, report).await?;
                }
                Err(CallError::Store(e)) => return Err(e.into()),
                Err(CallError::Iys(e)) => {
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
            match self.iys.add_batch(brand, &requests).await {
                Ok(accepted) => {
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
