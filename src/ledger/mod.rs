//! The ledger: records each movement at once, durably, with its evidence, and answers
//! "may we send?" from the derived state.
//!
//! `record()` is the hot path of the whole service. Callers hand their intent to one writer task
//! that takes everything queued at that moment and commits it in ONE transaction (group commit):
//! under load, many concurrent webhooks share one fsync instead of paying one each. A caller gets
//! its answer only after that commit, so an acknowledged event is on disk.

mod suppression;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::domain::calendar::{BusinessCalendar, CalendarError};
use crate::domain::time::Clock;
use crate::domain::{Channel, ConsentIntent};
use crate::store::{InboundMessage, JobTimes, NewEvent, RecordOutcome, Store, StoreError};
use crate::telemetry::chain;

pub use suppression::{MaySend, SuppressionAnswer, SuppressionPolicy};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("cannot compute the İYS deadline: {0}")]
    Calendar(#[from] CalendarError),
    /// Shared: one failed group commit answers every caller in it.
    #[error("the ledger commit failed")]
    Commit(#[source] Arc<StoreError>),
    #[error("the ledger writer has stopped")]
    Unavailable,
}

/// What `record` returns: the stored event and, for reportable movements, the legal deadline.
pub type Recorded = RecordOutcome;

/// One write waiting for the next group commit.
enum Pending {
    Event(
        NewEvent,
        oneshot::Sender<Result<RecordOutcome, Arc<StoreError>>>,
    ),
    /// A message kept for review (not a command); answered once committed.
    Inbound(InboundMessage, oneshot::Sender<Result<(), Arc<StoreError>>>),
}

#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
    calendar: Arc<BusinessCalendar>,
    clock: Arc<dyn Clock>,
    tx: mpsc::Sender<Pending>,
    target_business_days: u32,
    /// Woken after a commit that created report jobs, so the reporter need not poll.
    pub reporter_wake: Arc<Notify>,
    pub policy: SuppressionPolicy,
}

impl Ledger {
    /// Starts the group-commit writer task. It ends when every `Ledger` clone is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        calendar: Arc<BusinessCalendar>,
        clock: Arc<dyn Clock>,
        group_commit_max: usize,
        target_business_days: u32,
        policy: SuppressionPolicy,
    ) -> Self {
        let (tx, rx) = mpsc::channel(group_commit_max.max(1) * 4);
        let reporter_wake = Arc::new(Notify::new());
        tokio::spawn(writer(
            store.clone(),
            clock.clone(),
            rx,
            group_commit_max.max(1),
            reporter_wake.clone(),
        ));
        Self {
            store,
            calendar,
            clock,
            tx,
            target_business_days,
            reporter_wake,
            policy,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn calendar(&self) -> &BusinessCalendar {
        &self.calendar
    }

    /// Report timing for a movement: due now, internal target, legal deadline. İYS (H467) counts
    /// from the consent date, so that date starts the clock when it is earlier than the receipt.
    pub fn job_times(
        &self,
        consent_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
    ) -> Result<JobTimes, CalendarError> {
        let start = consent_at.min(received_at);
        let deadline_at = self.calendar.iys_deadline(start)?;
        let target_at = self
            .calendar
            .end_of_nth_business_day(start, self.target_business_days)?
            .min(deadline_at);
        Ok(JobTimes {
            due_at: received_at,
            target_at,
            deadline_at,
        })
    }

    /// Records one movement; returns after it is committed. Duplicates return the original.
    pub async fn record(&self, intent: ConsentIntent) -> Result<Recorded, LedgerError> {
        let received_at = self.clock.now();
        // What came from İYS is never reported back: citizens' own changes, and any record
        // (HS_* included) that the audit found at İYS and brought into the ledger.
        let report = if intent.source.is_hs() && intent.channel != Channel::Iys {
            Some(self.job_times(intent.consent_at, received_at)?)
        } else {
            None
        };
        self.record_with_times(intent, received_at, report).await
    }

    /// Records one movement with report timing the caller decided (the bulk import: HS_2015
    /// rows and rows older than İYS's window get times from the import, not the consent date).
    pub async fn record_with_times(
        &self,
        intent: ConsentIntent,
        received_at: DateTime<Utc>,
        report: Option<JobTimes>,
    ) -> Result<Recorded, LedgerError> {
        let (reply, rx) = oneshot::channel();
        let event = NewEvent {
            intent,
            received_at,
            report,
        };
        self.tx
            .send(Pending::Event(event, reply))
            .await
            .map_err(|_| LedgerError::Unavailable)?;
        answer(rx.await)
    }

    /// Keeps a message that was not acted on, in the same group commit as the events.
    pub async fn keep_inbound(&self, msg: InboundMessage) -> Result<(), LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending::Inbound(msg, reply))
            .await
            .map_err(|_| LedgerError::Unavailable)?;
        answer(rx.await)
    }
}

fn answer<T>(
    r: Result<Result<T, Arc<StoreError>>, oneshot::error::RecvError>,
) -> Result<T, LedgerError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(LedgerError::Commit(e)),
        Err(_) => Err(LedgerError::Unavailable),
    }
}

/// Group commits in flight at once. While one waits for its fsync the next gathers the
/// requests that arrived meanwhile; a store with a single writer (SQLite) merges those queued
/// behind each other into one transaction, a pooled one (PostgreSQL) runs them side by side.
const COMMITS_IN_FLIGHT: usize = 4;

async fn writer(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Pending>,
    max: usize,
    wake: Arc<Notify>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(COMMITS_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch: Vec<Pending> = Vec::with_capacity(max);
        if rx.recv_many(&mut batch, max).await == 0 {
            // Every sender is gone: wait for the commits still in flight, then stop.
            let _ = slots.acquire_many(COMMITS_IN_FLIGHT as u32).await;
            return;
        }
        let (store, clock, wake) = (store.clone(), clock.clone(), wake.clone());
        tokio::spawn(async move {
            commit(store.as_ref(), clock.as_ref(), batch, &wake).await;
            drop(slot);
        });
    }
}

/// Writes one group commit and answers each caller in it.
async fn commit(store: &dyn Store, clock: &dyn Clock, batch: Vec<Pending>, wake: &Notify) {
    metrics::histogram!("iys_relay_ledger_group_commit_size").record(batch.len() as f64);
    let mut events = Vec::new();
    let mut inbound = Vec::new();
    let mut replies = Vec::with_capacity(batch.len());
    for p in batch {
        match p {
            Pending::Event(e, reply) => {
                replies.push(Reply::Event(
                    e.intent.channel.as_str(),
                    e.intent.status.as_str(),
                    reply,
                ));
                events.push(e);
            }
            Pending::Inbound(m, reply) => {
                replies.push(Reply::Inbound(reply));
                inbound.push(m);
            }
        }
    }
    let now = clock.now();
    let (event_results, inbound_result) = match store.write_batch(&events, &inbound, now).await {
        Ok(outcomes) => (outcomes.into_iter().map(Ok).collect(), Ok(())),
        // One bad item must not fail its neighbours: fall back to one transaction each.
        Err(e) if replies.len() > 1 => {
            tracing::warn!(error = %chain(&e), size = replies.len(), "group commit failed; retrying items one by one");
            let mut out = Vec::with_capacity(events.len());
            for ev in &events {
                let r = store.write_batch(std::slice::from_ref(ev), &[], now).await;
                // The only writer task must not panic on a store that answers with no row.
                out.push(match r {
                    Ok(v) => v.into_iter().next().ok_or_else(|| {
                        Arc::new(StoreError::Corrupt("the store returned no outcome".into()))
                    }),
                    Err(e) => Err(Arc::new(e)),
                });
            }
            let kept = store
                .write_batch(&[], &inbound, now)
                .await
                .map(|_| ())
                .map_err(Arc::new);
            (out, kept)
        }
        Err(e) => {
            tracing::error!(error = %chain(&e), "ledger commit failed");
            let e = Arc::new(e);
            (events.iter().map(|_| Err(e.clone())).collect(), Err(e))
        }
    };
    if event_results.iter().any(|r: &Result<RecordOutcome, Arc<StoreError>>| matches!(r, Ok(o) if !o.duplicate && o.job_id.is_some())) {
        wake.notify_one();
    }
    let mut event_results = event_results.into_iter();
    for r in replies {
        // The caller may have gone away (client disconnect); the write stands regardless.
        match r {
            Reply::Event(channel, status, reply) => {
                let r = event_results.next().unwrap_or_else(|| {
                    Err(Arc::new(StoreError::Corrupt("missing outcome".into())))
                });
                if let Ok(o) = &r {
                    let name = if o.duplicate {
                        "iys_relay_duplicate_events_total"
                    } else {
                        "iys_relay_events_total"
                    };
                    metrics::counter!(name, "channel" => channel, "status" => status).increment(1);
                }
                let _ = reply.send(r);
            }
            Reply::Inbound(reply) => {
                let _ = reply.send(inbound_result.clone());
            }
        }
    }
}

/// Who is waiting for a group commit's answer, and the labels its event is counted under.
enum Reply {
    Event(
        &'static str,
        &'static str,
        oneshot::Sender<Result<RecordOutcome, Arc<StoreError>>>,
    ),
    Inbound(oneshot::Sender<Result<(), Arc<StoreError>>>),
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failed_ledger_commit_keeps_the_store_error() {
        let store = crate::store::StoreError::Corrupt("no outcome".into());
        let e = crate::ledger::LedgerError::Commit(std::sync::Arc::new(store));
        assert_eq!(
            crate::telemetry::chain(&e).to_string(),
            "the ledger commit failed: stored data is not valid: no outcome"
        );
    }
}
