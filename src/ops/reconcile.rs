//! `reconcile`: compares the ledger with İYS's daily changes file for one Istanbul day.
//!
//! Per address it finds (1) citizen (`IYS_*`) movements the ledger has not pulled yet, which
//! `apply` records through the ledger exactly as the pull loop would (same dedupe key), (2) HS
//! movements in the file that no report job of ours carries, (3) our accepted report jobs (done
//! with a transaction id, finished that day) missing from the file, and (4) addresses whose
//! last movement of the day disagrees with the ledger's current state while the ledger holds
//! nothing newer. Recipients are masked in every text this module produces.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;
use serde::Serialize;

use super::OpsError;
use crate::domain::Address;
use crate::domain::{ConsentType, Recipient, RecipientType, Status};
use crate::iys::IysClient;
use crate::iys::sync::movement_intent;
use crate::iys::wire::{FileRow, mask_recipient};
use crate::ledger::Ledger;
use crate::store::Store;

/// İYS serves the file for the last 7 days only (H502).
const FILE_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A citizen's İYS movement the ledger lacks (not pulled yet).
    MissingInLedger,
    /// An HS movement in İYS that none of our report jobs carries.
    UnknownHsMovement,
    /// A report İYS accepted (by our records) that the day's file lacks.
    MissingInIys,
    /// İYS's last movement of the day and the ledger's state disagree.
    StateMismatch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissingInLedger => "missing_in_ledger",
            Kind::UnknownHsMovement => "unknown_hs_movement",
            Kind::MissingInIys => "missing_in_iys",
            Kind::StateMismatch => "state_mismatch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub kind: Kind,
    pub brand_code: i64,
    /// Masked (`+90532*****67`).
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub transaction_id: Option<String>,
    pub iys_status: Option<Status>,
    pub ledger_status: Option<Status>,
    pub detail: String,
    /// Fixed by `--apply` (recorded in the ledger).
    pub applied: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub date: Option<NaiveDate>,
    pub brands: Vec<i64>,
    pub file_rows: usize,
    pub done_jobs: usize,
    pub discrepancies: Vec<Discrepancy>,
}

impl ReconcileReport {
    /// Discrepancies `--apply` did not fix: the command exits non-zero when there are any.
    pub fn remaining(&self) -> usize {
        self.discrepancies.iter().filter(|d| !d.applied).count()
    }
    pub fn applied(&self) -> usize {
        self.discrepancies.len() - self.remaining()
    }
}

/// [start, end) of an Istanbul calendar day, in UTC.
pub fn istanbul_day(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| {
        Istanbul
            .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    };
    (start(date), start(date + Duration::days(1)))
}

/// The ledger's spelling of a file recipient (e-mails lower-case, phones E.164).
fn ledger_recipient(r: &FileRow) -> String {
    Recipient::parse_for(&r.recipient, r.consent_type)
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|_| r.recipient.clone())
}

fn key_of(brand_code: i64, r: &FileRow) -> Address {
    Address {
        brand_code,
        recipient: ledger_recipient(r),
        recipient_type: r.recipient_type,
        consent_type: r.consent_type,
    }
}

fn discrepancy(kind: Kind, key: &Address, tx: Option<&str>, detail: String) -> Discrepancy {
    Discrepancy {
        kind,
        brand_code: key.brand_code,
        recipient: mask_recipient(&key.recipient),
        recipient_type: key.recipient_type,
        consent_type: key.consent_type,
        transaction_id: tx.map(str::to_string),
        iys_status: None,
        ledger_status: None,
        detail,
        applied: false,
    }
}

/// Reconciles `date` for each brand; `apply` records the missing citizen movements.
pub async fn reconcile(
    ledger: &Ledger,
    client: &IysClient,
    brands: &[i64],
    date: NaiveDate,
    apply: bool,
) -> Result<ReconcileReport, OpsError> {
    let mut report = ReconcileReport {
        date: Some(date),
        brands: brands.to_vec(),
        ..ReconcileReport::default()
    };
    for &brand in brands {
        let rows = client.changes_file(brand, date).await?;
        report.file_rows += rows.len();
        reconcile_brand(ledger, client, brand, date, rows, apply, &mut report).await?;
    }
    Ok(report)
}

async fn reconcile_brand(
    ledger: &Ledger,
    client: &IysClient,
    brand: i64,
    date: NaiveDate,
    rows: Vec<FileRow>,
    apply: bool,
    report: &mut ReconcileReport,
) -> Result<(), OpsError> {
    let store: &dyn Store = ledger.store().as_ref();
    let ids: Vec<String> = rows.iter().map(|r| r.transaction_id.clone()).collect();
    let known: HashSet<String> = store
        .known_transaction_ids(brand, &ids)
        .await?
        .into_iter()
        .collect();
    // Addresses already reported as an unfixed missing movement skip the state comparison.
    let mut unresolved: HashSet<Address> = HashSet::new();
    for r in rows.iter().filter(|r| !known.contains(&r.transaction_id)) {
        let key = key_of(brand, r);
        let (kind, detail) = if r.is_iys() {
            (
                Kind::MissingInLedger,
                format!("citizen movement {} not pulled yet", r.source),
            )
        } else {
            (
                Kind::UnknownHsMovement,
                format!("{} movement no report job of ours carries", r.source),
            )
        };
        let mut d = discrepancy(kind, &key, Some(&r.transaction_id), detail);
        d.iys_status = Some(r.status);
        if kind == Kind::MissingInLedger && apply {
            match movement_intent(brand, r, ledger.clock().now()) {
                Some(intent) => {
                    ledger.record(intent).await?;
                    d.applied = true;
                }
                None => d
                    .detail
                    .push_str(" (not recordable: bad recipient or dates)"),
            }
        }
        if !d.applied {
            unresolved.insert(key);
        }
        report.discrepancies.push(d);
    }

    // Our accepted reports that day must be in the file. A batch processed just before
    // midnight is polled after it: such a job may sit in the previous day's file.
    let (from, to) = istanbul_day(date);
    let done = store.done_jobs_between(brand, from, to).await?;
    report.done_jobs += done.len();
    let in_file: HashSet<&str> = rows.iter().map(|r| r.transaction_id.as_str()).collect();
    let mut missing: Vec<_> = done
        .iter()
        .filter(|j| {
            j.transaction_id
                .as_deref()
                .is_some_and(|t| !in_file.contains(t))
        })
        .collect();
    let today = ledger.clock().now().with_timezone(&Istanbul).date_naive();
    let prev = date - Duration::days(1);
    if !missing.is_empty() && prev >= today - Duration::days(FILE_DAYS) {
        let before: HashSet<String> = client
            .changes_file(brand, prev)
            .await?
            .into_iter()
            .map(|r| r.transaction_id)
            .collect();
        missing.retain(|j| {
            j.transaction_id
                .as_ref()
                .is_some_and(|t| !before.contains(t))
        });
    }
    for j in missing {
        report.discrepancies.push(discrepancy(
            Kind::MissingInIys,
            &j.address,
            j.transaction_id.as_deref(),
            format!("job {} was accepted by İYS but is not in its file", j.id),
        ));
    }

    // The day's last movement per address against the ledger's state (after any apply).
    let mut last: HashMap<Address, &FileRow> = HashMap::new();
    for r in &rows {
        let k = key_of(brand, r);
        let newer = last.get(&k).is_none_or(|l| {
            (r.created_at(), &r.transaction_id) > (l.created_at(), &l.transaction_id)
        });
        if newer {
            last.insert(k, r);
        }
    }
    let mut keys: Vec<_> = last.keys().cloned().collect();
    keys.sort_by(|a, b| (&a.recipient, a.consent_type).cmp(&(&b.recipient, b.consent_type)));
    for key in keys {
        if unresolved.contains(&key) {
            continue;
        }
        let r = last[&key];
        let iys_at = r.consent_at().or_else(|| r.created_at());
        let state = store.consent_state(&key).await?;
        let mismatch = match &state {
            None => true,
            Some(s) => s.status != r.status && iys_at.is_none_or(|at| s.consent_at <= at),
        };
        if mismatch {
            let mut d = discrepancy(
                Kind::StateMismatch,
                &key,
                Some(&r.transaction_id),
                match &state {
                    None => "the ledger holds no state for this address".into(),
                    Some(s) => format!(
                        "İYS ends the day at {} ({}), the ledger holds {} ({})",
                        r.status, r.source, s.status, s.source
                    ),
                },
            );
            d.iys_status = Some(r.status);
            d.ledger_status = state.map(|s| s.status);
            report.discrepancies.push(d);
        }
    }
    Ok(())
}

/// The summary and the table the CLI prints (recipients masked).
pub fn render(r: &ReconcileReport) -> String {
    let date = r.date.map(|d| d.to_string()).unwrap_or_default();
    let count = |k: Kind| r.discrepancies.iter().filter(|d| d.kind == k).count();
    let mut s = format!(
        "reconciliation of {date} for brand(s) {:?}: {} file rows, {} accepted reports that day\n",
        r.brands, r.file_rows, r.done_jobs
    );
    for k in [
        Kind::MissingInLedger,
        Kind::UnknownHsMovement,
        Kind::MissingInIys,
        Kind::StateMismatch,
    ] {
        s.push_str(&format!("  {:<20} {}\n", k.as_str(), count(k)));
    }
    s.push_str(&format!(
        "  applied {}, remaining {}\n",
        r.applied(),
        r.remaining()
    ));
    if !r.discrepancies.is_empty() {
        s.push_str(&format!(
            "{:<20} {:>8} {:<18} {:<8} {:<6} {:<5} {:<5} {:<8} detail\n",
            "kind", "brand", "recipient", "rtype", "type", "iys", "ours", "applied"
        ));
        let st = |x: Option<Status>| x.map_or("-", |x| x.as_str());
        for d in &r.discrepancies {
            s.push_str(&format!(
                "{:<20} {:>8} {:<18} {:<8} {:<6} {:<5} {:<5} {:<8} {}\n",
                d.kind.as_str(),
                d.brand_code,
                d.recipient,
                d.recipient_type.as_str(),
                d.consent_type.as_str(),
                st(d.iys_status),
                st(d.ledger_status),
                if d.applied { "yes" } else { "no" },
                d.detail
            ));
        }
    }
    s
}
