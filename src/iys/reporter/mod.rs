//! The reporter (outbox worker): claims due report jobs with a lease, coalesces per address,
//! pre-validates so doomed requests are not sent, reports to İYS (single v2 for a short queue,
//! async batches for a long one), and finishes each job with fencing. Deadlines are watched on
//! every round. `run_once` is one round (tests call it); `spawn` loops, woken by the ledger.
//!
//! What keeps İYS holding each address's current word:
//! * at most one movement per address is in flight (the claim skips an address with a job in a
//!   batch or under a live lease), and only the ledger's current movement is ever sent;
//! * dates go out in whole seconds, strictly later than any date already sent for the address
//!   ([`planner::iys_date`]), never in the future and never before the person's act;
//! * an out-of-order refusal (H178) is a question: İYS's record is read and compared
//!   ([`planner::out_of_order`]) before anything is concluded;
//! * an outage pauses the brand for every replica (`iys_brand_health`); one probe at a time
//!   finds out when İYS is back.

pub mod planner;
mod poller;
mod send;

use crate::telemetry::chain;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::collections::{BTreeMap, HashMap};

use self::planner::{RetDecision, RetryPolicy};
use super::paced::{CallError, PacedIys};
use super::wire::{ConsentRequest, mask_recipient};
use crate::config::ReporterConfig;
use crate::domain::Address;
use crate::domain::time::to_iys;
use crate::domain::{Recipient, Status};
use crate::ledger::Ledger;
use crate::store::queue::{Fence, JobOutcome};
use crate::store::{ReportJob, Store, StoreError, StoredEvent};

#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

/// What one round did (for tests, logs and metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub claimed: usize,
    pub superseded: usize,
    pub status_checks: usize,
    pub singles_sent: usize,
    pub batches_submitted: usize,
    pub batches_polled: usize,
    pub done: usize,
    pub nothing_to_revoke: usize,
    pub failed: usize,
    pub expired: usize,
    pub retried: usize,
    pub past_target: usize,
    /// Movements held back because their date (rounded up to the second) is still ahead.
    pub not_yet: usize,
    /// Out-of-order refusals resent dated after İYS's same-second record.
    pub resent_later: usize,
    /// İYS records newer than the ledger, brought into the ledger.
    pub imported_from_iys: usize,
    /// Outage answers that paused a brand.
    pub outages: usize,
    /// Brands failing at İYS (consecutive failures), as known this round.
    #[serde(skip)]
    pub(crate) failing: BTreeMap<i64, i64>,
    /// Brands paused this round, until when.
    #[serde(skip)]
    pub(crate) paused: BTreeMap<i64, DateTime<Utc>>,
    /// The earliest held-back movement's date: the loop wakes for it rather than idling.
    #[serde(skip)]
    pub(crate) next_due: Option<DateTime<Utc>>,
    /// The round stopped at its bound of claims while full claims were still coming back: the
    /// loop starts the next round at once instead of waiting for a wake-up.
    #[serde(skip)]
    pub more: bool,
}

pub struct Reporter {
    store: Arc<dyn Store>,
    ledger: Ledger,
    iys: PacedIys,
    cfg: ReporterConfig,
    retry: RetryPolicy,
    owner: String,
    wake: Arc<Notify>,
}

/// A job ready to go out, with its request body.
pub(crate) struct Ready {
    pub job: ReportJob,
    pub request: ConsentRequest,
    /// The consentDate in `request`, as an instant.
    pub date: DateTime<Utc>,
    /// Another job of the address sent an ONAY İYS never confirmed: it may still land there.
    pub onay_may_land: bool,
    /// An earlier attempt of this job went out (its date may be at İYS whatever happens now).
    pub sent_before: bool,
}

/// How many times a RET re-checks İYS for an ONAY the relay sent but never saw confirmed
/// (one batch processing delay apart) before it concludes there is nothing to revoke; the
/// audit's targeted check after a `nothing_to_revoke` is the net beyond that.
const ONAY_LANDING_CHECKS: i64 = 4;

/// Claims per round at most, so that a round always ends (deadline watch and polls run between
/// rounds); a round that uses them all is followed by the next at once.
const CLAIMS_PER_ROUND: usize = 10;

fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

fn masked(job: &ReportJob) -> String {
    mask_recipient(&job.address.recipient)
}

fn lease(job: &ReportJob, owner: &str) -> Fence {
    Fence::Lease {
        owner: owner.to_string(),
        attempts: job.attempts,
    }
}

impl Reporter {
    pub fn new(ledger: Ledger, iys: PacedIys, cfg: ReporterConfig, wake: Arc<Notify>) -> Self {
        let retry = RetryPolicy::new(cfg.retry_base_seconds, cfg.retry_max_seconds);
        Self {
            store: ledger.store().clone(),
            ledger,
            iys,
            cfg,
            retry,
            owner: format!("reporter-{}", uuid::Uuid::new_v4().simple()),
            wake,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn now(&self) -> DateTime<Utc> {
        self.iys.now()
    }

    /// One round: deadlines, due batch polls, then every due job.
    pub async fn run_once(&self) -> Result<Report, ReporterError> {
        let mut report = Report::default();
        let now = self.now();
        for h in self.store.brand_health().await? {
            report.failing.insert(h.brand_code, h.failures);
            if h.paused_until > now {
                report.paused.insert(h.brand_code, h.paused_until);
            }
        }
        self.watch_deadlines(&mut report).await?;
        self.poll_due(&mut report).await?;
        // Keep claiming while full claims come back (bounded, so a round always ends).
        for claim in 1..=CLAIMS_PER_ROUND {
            let now = self.now();
            let lease_until = now + secs(self.cfg.lease_seconds);
            let jobs = self
                .store
                .claim_jobs(&self.owner, now, lease_until, self.cfg.claim_limit)
                .await?;
            let n = jobs.len();
            if n == 0 {
                break;
            }
            report.claimed += n;
            self.handle_claimed(jobs, &mut report).await?;
            if i64::try_from(n).unwrap_or(i64::MAX) < self.cfg.claim_limit {
                break;
            }
            report.more = claim == CLAIMS_PER_ROUND;
        }
        Ok(report)
    }

    /// Loops until `shutdown`: a round, then wait for the ledger's wake-up or `idle_seconds`.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            // Names this replica's leases (report_jobs.lease_owner) in its log.
            tracing::info!(owner = %self.owner, "reporter started");
            let idle = std::time::Duration::from_secs(self.cfg.idle_seconds.max(1));
            loop {
                let mut wait = idle;
                match self.run_once().await {
                    Ok(r) => {
                        if r.claimed > 0 || r.batches_polled > 0 {
                            tracing::info!(?r, "reporter round");
                        }
                        // A movement held for its date's second should not wait a whole idle.
                        if let Some(d) = r.next_due.and_then(|d| (d - self.now()).to_std().ok()) {
                            wait = wait.min(d.max(std::time::Duration::from_millis(50)));
                        }
                        // A backlog drains at İYS's pace, not one round per idle period.
                        if r.more {
                            wait = std::time::Duration::ZERO;
                        }
                    }
                    Err(e) => tracing::error!(error = %chain(&e), "reporter round failed"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    async fn watch_deadlines(&self, report: &mut Report) -> Result<(), ReporterError> {
        let now = self.now();
        for j in self.store.expire_overdue(now).await? {
            tracing::error!(
                job = j.id, recipient = %masked(&j), deadline = %j.deadline_at,
                alert = "iys_deadline_expired", "İYS deadline passed: job expired"
            );
            report.expired += 1;
        }
        for j in self.store.flag_past_target(now).await? {
            tracing::warn!(
                job = j.id, recipient = %masked(&j), target = %j.target_at, deadline = %j.deadline_at,
                alert = "iys_target_missed", "report job is past its internal target"
            );
            report.past_target += 1;
        }
        Ok(())
    }

    /// Applies an outcome and counts it; a lost fence is logged, not an error.
    pub(crate) async fn finish(
        &self,
        job: &ReportJob,
        fence: &Fence,
        outcome: JobOutcome,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let now = self.now();
        if !self.store.finish_job(job.id, fence, &outcome, now).await? {
            tracing::warn!(
                job = job.id,
                "job changed hands before it could be finished"
            );
            return Ok(());
        }
        match &outcome {
            JobOutcome::Done { .. } => report.done += 1,
            JobOutcome::Superseded { .. } => report.superseded += 1,
            JobOutcome::SupersededByIys { reason } => {
                report.superseded += 1;
                tracing::warn!(job = job.id, recipient = %masked(job), %reason,
                    alert = "iys_newer", "İYS holds a newer word; brought into the ledger");
            }
            JobOutcome::ResendAfter { .. } => report.resent_later += 1,
            JobOutcome::NothingToRevoke => report.nothing_to_revoke += 1,
            JobOutcome::Failed { error } => {
                report.failed += 1;
                tracing::error!(job = job.id, recipient = %masked(job), %error,
                    alert = "iys_report_failed", "İYS refused the movement permanently");
            }
            JobOutcome::Expired { error } => {
                report.expired += 1;
                tracing::error!(job = job.id, recipient = %masked(job), %error,
                    alert = "iys_deadline_expired", "movement can no longer reach İYS");
            }
            JobOutcome::Retry { .. } => report.retried += 1,
            JobOutcome::Release { .. } => {}
        }
        Ok(())
    }

    /// Retry with back-off clamped to the deadline, or expire when no retry fits.
    pub(crate) fn retry_outcome(
        &self,
        job: &ReportJob,
        retry_after: Option<std::time::Duration>,
        error: String,
    ) -> JobOutcome {
        let retry_after = retry_after.and_then(|d| Duration::from_std(d).ok());
        match self.retry.retry_at(
            self.now(),
            job.attempts,
            job.deadline_at,
            retry_after,
            rand::random::<f64>(),
        ) {
            Some(due_at) => JobOutcome::Retry { due_at, error },
            None => JobOutcome::Expired {
                error: format!("no retry fits before the deadline; last error: {error}"),
            },
        }
    }

    async fn handle_claimed(
        &self,
        jobs: Vec<ReportJob>,
        report: &mut Report,
    ) -> Result<(), ReporterError> {
        let c = planner::coalesce(jobs);
        for (old, winner) in &c.losers {
            let reason = format!("superseded by job {winner} (newer movement for the address)");
            let fence = lease(old, &self.owner);
            self.finish(old, &fence, JobOutcome::Superseded { reason }, report)
                .await?;
        }
        let winners = self.current_only(c.winners, report).await?;
        let ids: Vec<i64> = winners.iter().map(|j| j.event_id).collect();
        let events: HashMap<i64, StoredEvent> = self
            .store
            .events_by_ids(&ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let now = self.now();
        let mut ready = Vec::new();
        for job in winners {
            let fence = lease(&job, &self.owner);
            if now >= job.deadline_at {
                let error = "the legal İYS deadline passed".to_string();
                self.finish(&job, &fence, JobOutcome::Expired { error }, report)
                    .await?;
                continue;
            }
            let request = events
                .get(&job.event_id)
                .ok_or_else(|| format!("event {} is missing", job.event_id))
                .and_then(|e| build_request(e).map_err(|m| m.to_string()));
            match request {
                Ok(request) => ready.push(Ready {
                    job,
                    request,
                    date: now,
                    onay_may_land: false,
                    sent_before: false,
                }),
                Err(error) => {
                    self.finish(&job, &fence, JobOutcome::Failed { error }, report)
                        .await?
                }
            }
        }
        let ready = self.date(ready, report).await?;
        let mut ready = self.precheck_rets(ready, report).await?;
        for r in &mut ready {
            r.sent_before = r.job.iys_date.is_some();
            r.job.iys_date = Some(r.date);
        }
        self.send(ready, report).await
    }

    /// Only the ledger's current movement of an address goes to İYS: an older one arriving late
    /// (an agent's entry dated before a RET already reported) would only be refused (H178), or
    /// worse, dated later and accepted over the newer word.
    async fn current_only(
        &self,
        jobs: Vec<ReportJob>,
        report: &mut Report,
    ) -> Result<Vec<ReportJob>, ReporterError> {
        let keys: Vec<Address> = jobs.iter().map(|j| j.address.clone()).collect();
        let mut current: HashMap<Address, i64> = HashMap::new();
        for ((brand, rt, ct), recipients) in Address::group(&keys) {
            let recipients: Vec<String> = recipients.into_iter().map(str::to_string).collect();
            for st in self
                .store
                .consent_states(brand, rt, ct, &recipients)
                .await?
            {
                let key = Address {
                    brand_code: st.brand_code,
                    recipient: st.recipient,
                    recipient_type: st.recipient_type,
                    consent_type: st.consent_type,
                };
                current.insert(key, st.event_id);
            }
        }
        let mut out = Vec::with_capacity(jobs.len());
        for j in jobs {
            match current.get(&j.address) {
                Some(&event) if event != j.event_id => {
                    let reason =
                        format!("not the address's current word: the ledger holds event {event}");
                    let fence = lease(&j, &self.owner);
                    self.finish(&j, &fence, JobOutcome::Superseded { reason }, report)
                        .await?;
                }
                _ => out.push(j),
            }
        }
        Ok(out)
    }

    /// Gives each movement its İYS date ([`planner::iys_date`]); one whose date is still ahead
    /// (İYS refuses future dates, H162) waits until then.
    async fn date(
        &self,
        ready: Vec<Ready>,
        report: &mut Report,
    ) -> Result<Vec<Ready>, ReporterError> {
        let keys: Vec<Address> = ready.iter().map(|r| r.job.address.clone()).collect();
        let mine: HashMap<&Address, i64> =
            ready.iter().map(|r| (&r.job.address, r.job.id)).collect();
        let mut others: HashMap<Address, Vec<DateTime<Utc>>> = HashMap::new();
        let mut may_land: std::collections::HashSet<Address> = Default::default();
        for d in self.store.iys_dates(&keys).await? {
            if d.job_id.is_some() && d.job_id == mine.get(&d.address).copied() {
                continue;
            }
            if d.unconfirmed_onay {
                may_land.insert(d.address.clone());
            }
            others.entry(d.address).or_default().push(d.at);
        }
        let now = self.now();
        let mut out = Vec::with_capacity(ready.len());
        for mut r in ready {
            let date = planner::iys_date(
                r.job.consent_at,
                r.job.iys_date,
                others.get(&r.job.address).into_iter().flatten().copied(),
            );
            if date > now {
                report.not_yet += 1;
                report.next_due = Some(report.next_due.map_or(date, |d| d.min(date)));
                let fence = lease(&r.job, &self.owner);
                self.finish(&r.job, &fence, JobOutcome::Release { due_at: date }, report)
                    .await?;
                continue;
            }
            r.date = date;
            r.request.consent_date = to_iys(date);
            r.onay_may_land = may_land.contains(&r.job.address);
            out.push(r);
        }
        Ok(out)
    }

    /// RETs İYS is not known to hold an ONAY for are checked with one multi-status query per
    /// (brand, recipient type, type) and 1000 addresses, instead of sending doomed H175/H174s.
    async fn precheck_rets(
        &self,
        ready: Vec<Ready>,
        report: &mut Report,
    ) -> Result<Vec<Ready>, ReporterError> {
        let keys: Vec<Address> = ready
            .iter()
            .filter(|r| r.request.status == Status::Ret)
            .map(|r| r.job.address.clone())
            .collect();
        if keys.is_empty() {
            return Ok(ready);
        }
        let known: std::collections::HashMap<Address, Status> = self
            .store
            .iys_known_status(&keys)
            .await?
            .into_iter()
            .collect();
        let (to_check, mut out): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| {
            r.request.status == Status::Ret
                && planner::ret_needs_status_check(known.get(&r.job.address).copied())
        });
        let mut groups: std::collections::BTreeMap<_, Vec<Ready>> = Default::default();
        for r in to_check {
            let a = &r.job.address;
            groups
                .entry((a.brand_code, a.recipient_type, a.consent_type))
                .or_default()
                .push(r);
        }
        for ((brand, rt, ct), items) in groups {
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                let chunk: Vec<Ready> =
                    items.by_ref().take(crate::iys::client::MAX_BATCH).collect();
                let recipients: Vec<String> =
                    chunk.iter().map(|r| r.request.recipient.clone()).collect();
                if let Some(&until) = report.paused.get(&brand) {
                    let hold = JobOutcome::Release { due_at: until };
                    self.release_rest(chunk.into_iter(), &hold, report).await?;
                    continue;
                }
                report.status_checks += 1;
                let onay = match self.iys.multi_status(brand, rt, ct, &recipients).await {
                    Ok(list) => list,
                    Err(CallError::Store(e)) => return Err(e.into()),
                    Err(CallError::Iys(e)) => {
                        // Without the answer a RET may be doomed: treat like a failed send. In
                        // an outage one job carries the error and the rest wait for the brand.
                        let mut chunk = chunk.into_iter();
                        while let Some(r) = chunk.next() {
                            let fence = lease(&r.job, &self.owner);
                            let outcome = self.refused(&r.job, &fence, &e, report).await?;
                            if send::is_outage(&e) {
                                self.release_rest(chunk, &outcome, report).await?;
                                break;
                            }
                        }
                        continue;
                    }
                };
                self.brand_answered(brand, report).await?;
                let onay: std::collections::HashSet<String> =
                    onay.into_iter().map(|r| r.to_lowercase()).collect();
                for r in chunk {
                    let k = known.get(&r.job.address).copied();
                    let listed = onay.contains(&r.request.recipient.to_lowercase());
                    let fence = lease(&r.job, &self.owner);
                    match planner::ret_decision(k, listed) {
                        RetDecision::Send => out.push(r),
                        RetDecision::AlreadyRet => {
                            let done = JobOutcome::Done {
                                transaction_id: None,
                            };
                            self.finish(&r.job, &fence, done, report).await?
                        }
                        RetDecision::NothingToRevoke
                            if r.onay_may_land && r.job.attempts < ONAY_LANDING_CHECKS =>
                        {
                            // İYS may yet process an ONAY the relay sent (a batch whose
                            // acceptance a crash lost): concluding now could leave that ONAY
                            // standing. Ask again once a batch would have been processed.
                            let due_at = self.now() + secs(self.cfg.poll_delay_seconds);
                            let error = "İYS holds no ONAY yet, but one the relay sent is \
                                         unconfirmed: checking again"
                                .to_string();
                            let wait = JobOutcome::Retry { due_at, error };
                            self.finish(&r.job, &fence, wait, report).await?
                        }
                        RetDecision::NothingToRevoke => {
                            self.finish(&r.job, &fence, JobOutcome::NothingToRevoke, report)
                                .await?
                        }
                    }
                }
            }
        }
        out.sort_by_key(|r| (r.job.deadline_at, r.job.id));
        Ok(out)
    }
}

/// The İYS body for a stored movement; refuses what İYS would certainly reject.
fn build_request(e: &StoredEvent) -> Result<ConsentRequest, String> {
    let recipient = Recipient::parse(&e.recipient).map_err(|x| x.to_string())?;
    ConsentRequest::new(
        &recipient,
        e.recipient_type,
        e.consent_type,
        e.status,
        e.source,
        e.consent_at,
    )
    .map_err(|x| x.to_string())
}
