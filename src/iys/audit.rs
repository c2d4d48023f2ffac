//! The İYS agreement audit. The project's invariant: for every İYS address, once the reporter is
//! idle, İYS holds the status of the ledger's current movement, or has no record where that
//! word is RET. The audit checks it for every address the relay has reported and repairs what
//! it can:
//!
//! * one multi-status query per (brand, recipientType, type) and 1000 addresses (it lists the
//!   ONAY ones), through the shared pacing slot like every other worker;
//! * per divergence one single status query for İYS's record, then a decision: İYS's record is
//!   newer → recorded in the ledger as the movement it is (never reported back); the ledger is
//!   newer, or İYS has no record of its ONAY → the movement's report job is re-opened so the
//!   reporter sends it again; anything else → an `audit_divergence` alert.
//!
//! Addresses with open report jobs are skipped: the reporter is still working on them.

use crate::telemetry::chain;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::paced::{CallError, PacedIys};
use super::sync::iys_record_intent;
use super::wire::{StatusResponse, mask_recipient};
use crate::config::AuditConfig;
use crate::domain::Address;
use crate::domain::calendar::CalendarError;
use crate::domain::time::from_iys;
use crate::domain::{ConsentType, Recipient, RecipientType, Source, Status};
use crate::ledger::{Ledger, LedgerError};
use crate::ops::outside_iys_window;
use crate::store::audit::AuditEntry;
use crate::store::queue::AlertKind;
use crate::store::{JobState, JobTimes, Store, StoreError};

/// İYS's multi-status query takes at most this many recipients.
pub const MULTI_STATUS_MAX: usize = 1000;
/// Addresses read from the store per page of the sweep.
const PAGE: i64 = 1000;
/// Ended jobs read per targeted round.
const TARGETED_PAGE: i64 = 1000;
/// A claimed full sweep belongs to its replica this long; one that failed or died is taken over
/// after it.
const SWEEP_LEASE_HOURS: i64 = 1;
/// Marks the audit's re-reports in the job's error and its `requeued` alert.
const REREPORT_NOTE: &str = "İYS audit re-report";
/// Divergences kept in a report for printing; the counts stay exact beyond it.
const MAX_LISTED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("calendar: {0}")]
    Calendar(#[from] CalendarError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditMode {
    /// Every reported address.
    Full,
    /// The addresses of report jobs that ended other than `done` since the last targeted round.
    Targeted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// İYS's record is newer than the ledger's current movement: record it in the ledger.
    RecordFromIys,
    /// The ledger is newer, or İYS lacks its ONAY: send the current movement again.
    Rereport,
    /// Neither can be done: an operator must look (alert raised when repairing).
    Alert,
    /// İYS could not be asked (or the job moved meanwhile): the next round tries again.
    Retry,
}

impl Decision {
    /// The label the CLI prints, Turkish first.
    pub fn label(self) -> &'static str {
        match self {
            Decision::RecordFromIys => {
                "İYS kaydı deftere işlenir / record İYS's record in the ledger"
            }
            Decision::Rereport => "hareket İYS'ye yeniden bildirilir / re-report the movement",
            Decision::Alert => "uyarı: elle düzeltilmeli / alert: needs an operator",
            Decision::Retry => "sonra yeniden denenir / retried later",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub brand_code: i64,
    /// Masked (`+90532*****67`).
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub ledger_status: Status,
    /// İYS's word: from its record, or what the multi-status query implied when it could not
    /// be read. `None`: no record.
    pub iys_status: Option<Status>,
    pub decision: Decision,
    pub reason: String,
    /// The decision was carried out.
    pub repaired: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub mode: AuditMode,
    pub repair: bool,
    /// Addresses compared with İYS.
    pub checked: usize,
    /// Addresses skipped because the reporter still has open jobs for them.
    pub skipped_open: usize,
    /// Addresses İYS could not be asked about (multi-status failed).
    pub unchecked: usize,
    pub multi_status_requests: usize,
    pub status_queries: usize,
    pub divergent: usize,
    /// The first [`MAX_LISTED`] divergences.
    pub divergences: Vec<Divergence>,
}

impl AuditReport {
    fn new(mode: AuditMode, repair: bool) -> Self {
        Self {
            mode,
            repair,
            checked: 0,
            skipped_open: 0,
            unchecked: 0,
            multi_status_requests: 0,
            status_queries: 0,
            divergent: 0,
            divergences: Vec::new(),
        }
    }

    fn push(&mut self, d: Divergence) {
        self.divergent += 1;
        if self.divergences.len() < MAX_LISTED {
            self.divergences.push(d);
        }
    }

    /// Divergences still there after this run: all of them without repair; with repair those
    /// not settled in the ledger (a re-reported movement counts until İYS has it).
    pub fn remaining(&self) -> usize {
        let settled = self
            .divergences
            .iter()
            .filter(|d| d.repaired && d.decision == Decision::RecordFromIys)
            .count();
        self.divergent - settled
    }
}

type Group = (i64, RecipientType, ConsentType);

fn group_of(e: &AuditEntry) -> Group {
    (
        e.address.brand_code,
        e.address.recipient_type,
        e.address.consent_type,
    )
}

/// Multi-status answers as given; e-mails compared case-insensitively (İYS stores them
/// lower-cased, R12).
fn same_recipient(a: &str) -> String {
    if a.contains('@') {
        a.to_lowercase()
    } else {
        a.to_string()
    }
}

/// When İYS's record took effect: its consent date, or its creation date when it has none.
fn record_at(r: &StatusResponse) -> Option<DateTime<Utc>> {
    r.consent_date
        .as_deref()
        .and_then(from_iys)
        .or_else(|| r.creation_date.as_deref().and_then(from_iys))
}

pub struct Auditor {
    iys: PacedIys,
    ledger: Ledger,
    cfg: AuditConfig,
    /// Carry decisions out (the service, `audit --repair`) or only report them.
    repair: bool,
}

impl Auditor {
    pub fn new(iys: PacedIys, ledger: Ledger, cfg: AuditConfig, repair: bool) -> Self {
        Self {
            iys,
            ledger,
            cfg,
            repair,
        }
    }

    /// The same auditor, carrying its decisions out or only reporting them.
    pub fn repairing(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.ledger.store()
    }

    /// One round. A full sweep in repair mode that could ask İYS about every address records
    /// its end time and what it left divergent (shared by replicas; see [`Auditor::spawn`] for
    /// when one is due).
    pub async fn run_once(&self, mode: AuditMode) -> Result<AuditReport, AuditError> {
        let mut report = AuditReport::new(mode, self.repair);
        match mode {
            AuditMode::Full => self.sweep(&mut report).await?,
            AuditMode::Targeted => self.targeted(&mut report).await?,
        }
        // The gauges are read from this row at scrape time, so every replica reports them.
        if mode == AuditMode::Full && self.repair && report.unchecked == 0 {
            let divergent = i64::try_from(report.remaining()).unwrap_or(i64::MAX);
            self.store()
                .full_sweep_finished(self.iys.now(), divergent)
                .await?;
        }
        Ok(report)
    }

    /// Pages through every reported address in multi-status order; at most one group of up to
    /// 1000 addresses is held, so memory stays flat however many there are.
    async fn sweep(&self, report: &mut AuditReport) -> Result<(), AuditError> {
        let mut after: Option<Address> = None;
        let mut group: Vec<AuditEntry> = Vec::with_capacity(MULTI_STATUS_MAX);
        loop {
            let page = self
                .store()
                .audit_entries_after(after.as_ref(), PAGE)
                .await?;
            let last_page = (page.len() as i64) < PAGE;
            for e in page {
                after = Some(e.address.clone());
                self.feed(&mut group, e, report).await?;
            }
            if last_page {
                break;
            }
        }
        self.check_group(&group, report).await
    }

    /// Adds an entry to the group being collected (entries come sorted by group), checking the
    /// group first when the entry starts another one or the group is full. Addresses with open
    /// jobs are left to the reporter.
    async fn feed(
        &self,
        group: &mut Vec<AuditEntry>,
        e: AuditEntry,
        report: &mut AuditReport,
    ) -> Result<(), AuditError> {
        if e.open_jobs > 0 {
            report.skipped_open += 1;
            return Ok(());
        }
        if group
            .first()
            .is_some_and(|g| group_of(g) != group_of(&e) || group.len() >= MULTI_STATUS_MAX)
        {
            self.check_group(group, report).await?;
            group.clear();
        }
        group.push(e);
        Ok(())
    }

    /// The addresses of jobs that ended other than `done` at least `targeted_delay_seconds` ago.
    async fn targeted(&self, report: &mut AuditReport) -> Result<(), AuditError> {
        let delay = Duration::seconds(i64::try_from(self.cfg.targeted_delay_seconds).unwrap_or(0));
        let cutoff = self.iys.now() - delay;
        loop {
            let keys = self.store().claim_ended_jobs(cutoff, TARGETED_PAGE).await?;
            let full = keys.len() as i64 >= TARGETED_PAGE;
            let mut entries = self.store().audit_entries(&keys).await?;
            entries.sort_by(|a, b| {
                (group_of(a), &a.address.recipient).cmp(&(group_of(b), &b.address.recipient))
            });
            let mut group = Vec::new();
            for e in entries {
                self.feed(&mut group, e, report).await?;
            }
            self.check_group(&group, report).await?;
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// One multi-status query for up to 1000 addresses of one group, then each divergence.
    async fn check_group(
        &self,
        entries: &[AuditEntry],
        report: &mut AuditReport,
    ) -> Result<(), AuditError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let (brand, rt, ct) = group_of(first);
        let recipients: Vec<String> = entries
            .iter()
            .map(|e| e.address.recipient.clone())
            .collect();
        report.multi_status_requests += 1;
        let listed = match self.iys.multi_status(brand, rt, ct, &recipients).await {
            Ok(list) => list,
            Err(CallError::Store(e)) => return Err(e.into()),
            Err(CallError::Iys(e)) => {
                tracing::warn!(brand, recipient_type = %rt, consent_type = %ct, error = %chain(&e),
                    "İYS multi-status query failed; these addresses are checked next round");
                report.unchecked += entries.len();
                return Ok(());
            }
        };
        let onay: HashSet<String> = listed.iter().map(|r| same_recipient(r)).collect();
        for e in entries {
            report.checked += 1;
            let onay_at_iys = onay.contains(&same_recipient(&e.address.recipient));
            if onay_at_iys == (e.status == Status::Onay) {
                continue;
            }
            if let Some(d) = self.resolve(e, onay_at_iys, report).await? {
                if d.decision == Decision::Alert && self.repair {
                    self.alert(e, &d).await?;
                }
                report.push(d);
            }
        }
        Ok(())
    }

    /// What to do about one address where the multi-status query disagrees with the ledger.
    /// `None` when İYS's own record agrees after all (it changed between the two queries, or
    /// it holds no record where the ledger says RET).
    async fn resolve(
        &self,
        e: &AuditEntry,
        onay_at_iys: bool,
        report: &mut AuditReport,
    ) -> Result<Option<Divergence>, AuditError> {
        let a = &e.address;
        let implied = onay_at_iys.then_some(Status::Onay);
        let mut d = Divergence {
            brand_code: a.brand_code,
            recipient: mask_recipient(&a.recipient),
            recipient_type: a.recipient_type,
            consent_type: a.consent_type,
            ledger_status: e.status,
            iys_status: implied,
            decision: Decision::Alert,
            reason: String::new(),
            repaired: false,
        };
        let Ok(recipient) = Recipient::parse_for(&a.recipient, a.consent_type) else {
            d.reason = "the ledger's recipient is not valid for its type".into();
            return Ok(Some(d));
        };
        report.status_queries += 1;
        let record = match self
            .iys
            .consent_status(
                None,
                a.brand_code,
                &recipient,
                a.recipient_type,
                a.consent_type,
            )
            .await
        {
            Ok(r) => r,
            Err(CallError::Store(e)) => return Err(e.into()),
            Err(CallError::Iys(err)) => {
                d.decision = Decision::Retry;
                d.reason = format!("İYS's status query failed: {err}");
                return Ok(Some(d));
            }
        };
        d.iys_status = record.as_ref().map(|r| r.status);
        match &record {
            None if e.status == Status::Ret => return Ok(None),
            Some(r) if r.status == e.status => return Ok(None),
            _ => {}
        }
        if let Some(r) = &record {
            let iys_at = record_at(r);
            let ledger_s = e.consent_at.timestamp();
            let newer = iys_at.is_some_and(|t| t.timestamp() > ledger_s);
            let unknown_citizen = match r.source.as_deref() {
                Some(s) if s.starts_with("IYS_") => match r.transaction_id.as_deref() {
                    Some(tx) if !tx.trim().is_empty() => self
                        .store()
                        .known_transaction_ids(a.brand_code, &[tx.trim().to_string()])
                        .await?
                        .is_empty(),
                    _ => true,
                },
                _ => false,
            };
            if newer || unknown_citizen {
                d.decision = Decision::RecordFromIys;
                d.reason = if newer {
                    "İYS's record is newer than the ledger's current movement".into()
                } else {
                    "İYS holds a citizen's movement the ledger does not have".into()
                };
                if !self.repair {
                    return Ok(Some(d));
                }
                if self.record_from_iys(a, r).await? {
                    d.repaired = true;
                    return Ok(Some(d));
                }
                if newer {
                    d.decision = Decision::Alert;
                    d.reason = format!(
                        "İYS's newer record ({}) could not be brought into the ledger",
                        r.source.as_deref().unwrap_or("no source")
                    );
                    return Ok(Some(d));
                }
                // Recorded as evidence, but the ledger's own movement is newer: İYS must get it.
            }
            if !newer && iys_at.is_some_and(|t| t.timestamp() == ledger_s) {
                d.decision = Decision::Alert;
                d.reason = "İYS and the ledger hold different words with the same consent date: \
                            which is newer cannot be told"
                    .into();
                return Ok(Some(d));
            }
        }
        self.rereport(e, d).await.map(Some)
    }

    /// Records İYS's record through the ledger (channel `Iys`: no report job); `true` when the
    /// ledger's current word is İYS's afterwards.
    async fn record_from_iys(&self, a: &Address, r: &StatusResponse) -> Result<bool, AuditError> {
        let Some(intent) = iys_record_intent(a.brand_code, r) else {
            return Ok(false);
        };
        let now = self.iys.now();
        self.ledger.record_with_times(intent, now, None).await?;
        let agrees = self
            .store()
            .consent_state(a)
            .await?
            .is_some_and(|s| s.status == r.status);
        if agrees {
            metrics::counter!("iys_relay_audit_repairs_total", "kind" => "recorded_from_iys")
                .increment(1);
        }
        Ok(agrees)
    }

    /// Sends the ledger's current movement to İYS again through the normal queue, when İYS can
    /// still take it.
    async fn rereport(&self, e: &AuditEntry, mut d: Divergence) -> Result<Divergence, AuditError> {
        d.decision = Decision::Alert;
        let Some((job_id, state)) = e.job.filter(|_| e.source.is_hs()) else {
            d.reason = format!(
                "the ledger's current movement ({}) is not one the relay reports",
                e.source
            );
            return Ok(d);
        };
        // İYS refused it permanently: the same request would be refused again (and count
        // against the IP's success rate); an operator fixes it and uses `requeue`.
        if state == JobState::Failed {
            d.reason = "İYS refused the ledger's movement permanently (job failed): fix it and \
                        requeue it"
                .into();
            return Ok(d);
        }
        // Once is enough: İYS answers an identical v2 resend with the first transactionId
        // without applying it again, so a movement still missing after a re-report would be
        // re-reported every round without effect.
        let earlier = self.store().alerts_for_job(job_id).await?;
        if earlier
            .iter()
            .any(|a| a.kind == AlertKind::Requeued && a.detail.contains(REREPORT_NOTE))
        {
            d.reason =
                "İYS still lacks the ledger's movement after the audit re-reported it once".into();
            return Ok(d);
        }
        let now = self.iys.now();
        let cal = self.ledger.calendar();
        // HS_2015 consents are exempt from the 3-business-day window (as in the operator
        // requeue); any other movement İYS would refuse once the window has passed (H467).
        let times = if e.source == Source::Hs2015 {
            let d = cal.iys_deadline(now)?;
            JobTimes {
                due_at: now,
                target_at: d,
                deadline_at: d,
            }
        } else if outside_iys_window(cal, e.consent_at, now) {
            d.reason = "İYS does not hold the ledger's movement and its 3-business-day window \
                        has passed (H467): it cannot be re-reported"
                .into();
            return Ok(d);
        } else {
            self.ledger.job_times(e.consent_at, now)?
        };
        d.decision = Decision::Rereport;
        d.reason = match d.iys_status {
            None => "İYS has no record of the ledger's movement".into(),
            Some(_) => "the ledger's movement is newer than İYS's record".into(),
        };
        if !self.repair {
            return Ok(d);
        }
        let note = format!("{REREPORT_NOTE} at {}: {}", now.to_rfc3339(), d.reason);
        if self
            .store()
            .reopen_job_for_audit(job_id, times, &note, now)
            .await?
        {
            d.repaired = true;
            metrics::counter!("iys_relay_audit_repairs_total", "kind" => "rereported").increment(1);
            self.ledger.reporter_wake.notify_one();
        } else {
            d.decision = Decision::Retry;
            d.reason = "the report job changed state meanwhile".into();
        }
        Ok(d)
    }

    async fn alert(&self, e: &AuditEntry, d: &Divergence) -> Result<(), AuditError> {
        let iys = d.iys_status.map_or("kayıt yok / no record", |s| s.as_str());
        let detail = format!(
            "brand {} {} {} {}: ledger {} (event {}), İYS {iys}: {}",
            d.brand_code,
            d.recipient,
            d.recipient_type,
            d.consent_type,
            d.ledger_status,
            e.event_id,
            d.reason
        );
        tracing::error!(alert = "iys_divergence", brand = d.brand_code, recipient = %d.recipient,
            consent_type = %d.consent_type, ledger = %d.ledger_status, iys = iys,
            reason = %d.reason, "İYS and the ledger disagree and the audit cannot repair it");
        let job_id = e.job.map_or(e.last_job_id, |(id, _)| id);
        self.store()
            .audit_alert(job_id, &detail, self.iys.now())
            .await?;
        Ok(())
    }

    /// The service's loop: the targeted check every `min(targeted_delay_seconds, 60)` seconds,
    /// and a full sweep whenever none ended in the last `full_sweep_hours` (replicas agree
    /// through the store, so one of them runs it).
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let tick = std::time::Duration::from_secs(self.cfg.targeted_delay_seconds.clamp(1, 60));
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.round().await {
                    tracing::error!(error = %chain(&e), "İYS audit round failed");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(tick) => {}
                }
            }
        })
    }

    async fn round(&self) -> Result<(), AuditError> {
        let now = self.iys.now();
        let progress = self.store().audit_progress().await?;
        let period = Duration::hours(i64::try_from(self.cfg.full_sweep_hours).unwrap_or(24));
        let due = progress.sweep_finished_at.is_none_or(|t| t <= now - period);
        if due
            && self
                .store()
                .claim_full_sweep(now - period, now - Duration::hours(SWEEP_LEASE_HOURS), now)
                .await?
        {
            let r = self.run_once(AuditMode::Full).await?;
            tracing::info!(
                checked = r.checked,
                divergent = r.divergent,
                remaining = r.remaining(),
                skipped_open = r.skipped_open,
                unchecked = r.unchecked,
                requests = r.multi_status_requests + r.status_queries,
                "İYS audit: full sweep done"
            );
        }
        let r = self.run_once(AuditMode::Targeted).await?;
        if r.divergent > 0 {
            tracing::warn!(
                checked = r.checked,
                divergent = r.divergent,
                "İYS audit: targeted check found divergences"
            );
        }
        Ok(())
    }
}

/// The report as the CLI prints it; recipients are masked.
pub fn render(r: &AuditReport) -> String {
    let mut s = String::new();
    for d in &r.divergences {
        let iys = d.iys_status.map_or("kayıt yok/no record", |s| s.as_str());
        let done = if d.repaired {
            "yapıldı/done"
        } else if r.repair {
            "YAPILMADI/not done"
        } else {
            "önizleme/preview"
        };
        s.push_str(&format!(
            "{:>8} {:<16} {:<8} {:<6} defter/ledger {:<4} İYS {:<19} → {} [{done}] ({})\n",
            d.brand_code,
            d.recipient,
            d.recipient_type.as_str(),
            d.consent_type.as_str(),
            d.ledger_status.as_str(),
            iys,
            d.decision.label(),
            d.reason
        ));
    }
    if r.divergent > r.divergences.len() {
        s.push_str(&format!(
            "… {} ayrışma daha / more divergences not listed\n",
            r.divergent - r.divergences.len()
        ));
    }
    s.push_str(&format!(
        "İYS uyum denetimi / İYS agreement audit: {} adres denetlendi / checked, {} ayrışma / divergent, \
         {} kalan / remaining, {} açık işi olan atlandı / skipped with open jobs, {} sorulamadı / unchecked; \
         İYS istekleri / requests: {} çoklu durum / multi-status, {} tekil durum / status\n",
        r.checked,
        r.divergent,
        r.remaining(),
        r.skipped_open,
        r.unchecked,
        r.multi_status_requests,
        r.status_queries
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn divergence(decision: Decision, repaired: bool) -> Divergence {
        Divergence {
            brand_code: 1,
            recipient: "+90532*****67".into(),
            recipient_type: RecipientType::Bireysel,
            consent_type: ConsentType::Mesaj,
            ledger_status: Status::Onay,
            iys_status: None,
            decision,
            reason: "test".into(),
            repaired,
        }
    }

    #[test]
    fn only_records_taken_from_iys_settle_a_divergence_at_once() {
        let mut r = AuditReport::new(AuditMode::Full, true);
        r.push(divergence(Decision::RecordFromIys, true));
        r.push(divergence(Decision::Rereport, true));
        r.push(divergence(Decision::Alert, false));
        r.push(divergence(Decision::RecordFromIys, false));
        assert_eq!((r.divergent, r.remaining()), (4, 3));
        let text = render(&r);
        assert!(text.contains("yeniden bildirilir"), "Turkish first: {text}");
        assert!(text.contains("4 ayrışma"), "{text}");
    }

    #[test]
    fn record_date_falls_back_to_creation_and_emails_compare_lower_case() {
        let mut s = StatusResponse {
            consent_date: None,
            creation_date: Some("2026-03-01 09:00:00".into()),
            source: Some("IYS_AHS_HAT_KAPATMA".into()),
            recipient: "+905321234567".into(),
            recipient_type: RecipientType::Bireysel,
            status: Status::Ret,
            consent_type: ConsentType::Mesaj,
            retailer_code: None,
            retailer_title: None,
            retailer_access_count: None,
            transaction_id: None,
        };
        assert_eq!(record_at(&s), from_iys("2026-03-01 09:00:00"));
        s.consent_date = Some("2026-03-02 09:00:00".into());
        assert_eq!(record_at(&s), from_iys("2026-03-02 09:00:00"));
        assert_eq!(same_recipient("Ali@Example.com"), "ali@example.com");
        assert_eq!(same_recipient("+905321234567"), "+905321234567");
    }
}
