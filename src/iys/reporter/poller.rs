//! Batch polls: never before `poll_after` (İYS: 300 s after submission), then every
//! `poll_interval_seconds` until each item is `success` or `failure`.

use crate::telemetry::chain;
use std::collections::HashMap;

use super::{Report, Reporter, ReporterError, secs};
use crate::iys::paced::CallError;
use crate::iys::wire::PollStatus;
use crate::iys::{IysError, IysErrorKind};
use crate::store::queue::{BatchState, Fence, IysBatch, JobOutcome};

impl Reporter {
    pub(super) async fn poll_due(&self, report: &mut Report) -> Result<(), ReporterError> {
        let now = self.now();
        let lease_until = now + secs(self.cfg.lease_seconds);
        for b in self.store.claim_due_batches(now, lease_until, 50).await? {
            if report.paused.contains_key(&b.brand_code) {
                // Polled once the brand's pause is over (the claim moved the poll a lease on).
                continue;
            }
            report.batches_polled += 1;
            self.poll_one(&b, report).await?;
        }
        Ok(())
    }

    async fn poll_one(&self, b: &IysBatch, report: &mut Report) -> Result<(), ReporterError> {
        let items = match self.iys.poll_batch(b.brand_code, &b.request_id).await {
            Ok(items) => items,
            Err(CallError::Store(e)) => return Err(e.into()),
            Err(CallError::Iys(e)) => {
                let now = self.now();
                let (state, next) = if super::send::is_outage(&e) {
                    let until = self.brand_outage(b.brand_code, &e, report).await?;
                    (BatchState::Submitted, until)
                } else if e.class().is_retryable() {
                    (
                        BatchState::Submitted,
                        now + secs(self.cfg.poll_interval_seconds),
                    )
                } else {
                    // A poll İYS refuses outright will not get better: resend the movements.
                    tracing::error!(iys_request_id = %b.request_id, error = %chain(&e), "İYS refused the batch poll");
                    (BatchState::Abandoned, now)
                };
                self.store
                    .update_batch(&b.request_id, state, next, now)
                    .await?;
                return Ok(());
            }
        };
        self.brand_answered(b.brand_code, report).await?;
        let fence = Fence::Batch {
            request_id: b.request_id.clone(),
        };
        let jobs: HashMap<i64, _> = self
            .store
            .batch_jobs(&b.request_id)
            .await?
            .into_iter()
            .collect();
        let mut settled = 0usize;
        for (pos, item) in items.iter().enumerate() {
            let index = item.index.unwrap_or(pos);
            let Some(job) = i64::try_from(index).ok().and_then(|i| jobs.get(&i)) else {
                continue;
            };
            match item.status {
                PollStatus::Success => {
                    let done = JobOutcome::Done {
                        transaction_id: item.transaction_id.clone(),
                    };
                    self.finish(job, &fence, done, report).await?;
                    settled += 1;
                }
                PollStatus::Failure => {
                    let e = IysError {
                        kind: IysErrorKind::Http,
                        status: None,
                        errors: item.error.clone().into_iter().collect(),
                        retry_after: None,
                        detail: format!("batch {} item {index}", b.request_id),
                    };
                    self.refused(job, &fence, &e, report).await?;
                    settled += 1;
                }
                PollStatus::Enqueue | PollStatus::Unknown => {}
            }
        }
        let now = self.now();
        let open = jobs.len().saturating_sub(settled);
        let (state, next) = if open == 0 {
            (BatchState::Complete, now)
        } else if now - b.submitted_at > secs(self.cfg.batch_give_up_hours * 3600) {
            tracing::error!(request_id = %b.request_id, open, "İYS never processed the batch; resending");
            (BatchState::Abandoned, now)
        } else {
            (
                BatchState::Submitted,
                now + secs(self.cfg.poll_interval_seconds),
            )
        };
        self.store
            .update_batch(&b.request_id, state, next, now)
            .await?;
        Ok(())
    }
}
