//! Sync back from İYS: the pull loop on `consents/changes?source=IYS` per brand, with the cursor
//! persisted after each page is recorded (at-least-once; the ledger dedupes by transactionId).
//! Citizens' changes enter the ledger with their `IYS_*` source, so they are never reported back.

use crate::telemetry::chain;
use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::paced::{CallError, PacedIys};
use sha2::{Digest, Sha256};

use super::wire::{Movement, StatusResponse};
use crate::domain::time::{from_iys, latest_plausible, to_iys};
use crate::domain::{Channel, ConsentIntent, Evidence, ProviderMessageId, Recipient, Source};
use crate::ledger::{Ledger, LedgerError};
use crate::store::StoreError;
use chrono::{DateTime, Utc};

/// The ledger's provider name for İYS; with the transactionId it is the dedupe key, shared by
/// pull and push so a movement seen both ways is recorded once.
pub const IYS_PROVIDER: &str = "iys";
const CURSOR_SOURCE: &str = "IYS";
/// Pages per brand per round, so one round always ends.
const MAX_PAGES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub pages: usize,
    pub recorded: usize,
    pub duplicates: usize,
    /// Not a citizen movement, or not usable (bad recipient, no transactionId).
    pub skipped: usize,
    /// Brands whose pull failed this round (retried next round).
    pub failed_brands: usize,
}

/// A citizen's movement as a ledger intent; `None` for anything that is not one (or whose
/// transactionId is not a usable dedupe key). A consent date later than `now` plus the skew the
/// agent API allows is capped there (see [`cap_future_consent`]).
pub fn movement_intent(brand_code: i64, m: &Movement, now: DateTime<Utc>) -> Option<ConsentIntent> {
    if !m.is_iys() {
        return None;
    }
    let transaction_id = ProviderMessageId::parse(m.transaction_id.trim()).ok()?;
    let recipient = Recipient::parse_for(&m.recipient, m.consent_type).ok()?;
    // İYS adds IYS_* sources over time; an unknown one is kept verbatim in the evidence.
    let source = m
        .parsed_source()
        .filter(|s| s.is_iys())
        .unwrap_or(Source::IysWeb);
    // Operator line closures may carry no consent date: the creation date stands in.
    let consent_at = m.consent_at().or_else(|| m.created_at())?;
    let consent_at = cap_future_consent(consent_at, now, brand_code, transaction_id.as_str());
    Some(ConsentIntent {
        brand_code,
        recipient,
        recipient_type: m.recipient_type,
        consent_type: m.consent_type,
        status: m.status,
        source,
        channel: Channel::Iys,
        consent_at,
        provider: IYS_PROVIDER.into(),
        provider_message_id: transaction_id.into_string(),
        evidence: Evidence {
            // The movement as İYS sent it: its own consentDate even when capped above.
            raw: serde_json::to_value(m).unwrap_or_default(),
            ..Evidence::default()
        },
    })
}

/// A consent date from İYS later than `now` plus the skew the agent API allows, capped there.
/// Left as it is, a change dated (say) 2099 would stay the newest word for ever: the citizen's
/// later RET would never become current. Capping raises an alert (log `alert=` and a counter),
/// because İYS sending such a date means something upstream is wrong.
pub fn cap_future_consent(
    consent_at: DateTime<Utc>,
    now: DateTime<Utc>,
    brand_code: i64,
    transaction_id: &str,
) -> DateTime<Utc> {
    let latest = latest_plausible(now);
    if consent_at <= latest {
        return consent_at;
    }
    metrics::counter!("iys_relay_iys_future_consent_dates_total").increment(1);
    tracing::warn!(
        alert = "iys_future_consent_date",
        brand = brand_code,
        transaction_id,
        consent_date = %consent_at,
        capped_to = %latest,
        "İYS sent a consent date in the future; recorded at now + skew, the original kept as evidence"
    );
    latest
}

/// İYS's own record of an address (the single status query) as a ledger intent, for the audit
/// when İYS holds a newer word than the ledger. `None` when it cannot be one (no usable source,
/// recipient or date). The dedupe key is the record's transactionId, the same key pull, push and
/// reconcile use, so a movement seen both ways is recorded once; a record without one gets a
/// hash of what identifies it, so a repeated audit dedupes too. The channel is `Iys` for every
/// source: an `HS_*` record found at İYS is İYS's, and the ledger creates no report job for it.
pub fn iys_record_intent(brand_code: i64, r: &StatusResponse) -> Option<ConsentIntent> {
    let recipient = Recipient::parse_for(&r.recipient, r.consent_type).ok()?;
    let wire_source = r.source.as_deref().map(str::trim).unwrap_or_default();
    let source = match wire_source.parse::<Source>() {
        Ok(s) => s,
        // As in `movement_intent`: an unknown IYS_* source is kept verbatim in the evidence.
        Err(_) if wire_source.starts_with("IYS_") => Source::IysWeb,
        Err(_) => return None,
    };
    let consent_at = r
        .consent_date
        .as_deref()
        .and_then(from_iys)
        .or_else(|| r.creation_date.as_deref().and_then(from_iys))?;
    let provider_message_id = match r
        .transaction_id
        .as_deref()
        .and_then(|t| ProviderMessageId::parse(t.trim()).ok())
    {
        Some(t) => t.into_string(),
        _ => {
            let key = format!(
                "{brand_code}|{}|{}|{}|{}|{}|{wire_source}",
                recipient.as_str(),
                r.recipient_type,
                r.consent_type,
                to_iys(consent_at),
                r.status
            );
            format!("status:{}", hex::encode(Sha256::digest(key.as_bytes())))
        }
    };
    Some(ConsentIntent {
        brand_code,
        recipient,
        recipient_type: r.recipient_type,
        consent_type: r.consent_type,
        status: r.status,
        source,
        channel: Channel::Iys,
        consent_at,
        provider: IYS_PROVIDER.into(),
        provider_message_id,
        evidence: Evidence {
            raw: serde_json::to_value(r).unwrap_or_default(),
            ..Evidence::default()
        },
    })
}

pub struct IysSync {
    iys: PacedIys,
    ledger: Ledger,
    brands: Vec<i64>,
    page_limit: u32,
    interval: std::time::Duration,
}

impl IysSync {
    pub fn new(
        iys: PacedIys,
        ledger: Ledger,
        brands: Vec<i64>,
        page_limit: u32,
        interval_secs: u64,
    ) -> Self {
        Self {
            iys,
            ledger,
            brands,
            page_limit: page_limit.clamp(1, 1000),
            interval: std::time::Duration::from_secs(interval_secs.max(1)),
        }
    }

    /// Pulls every brand until İYS has nothing new (204 or a short page).
    pub async fn run_once(&self) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        let store = self.ledger.store().clone();
        for &brand in &self.brands {
            for _ in 0..MAX_PAGES {
                let after = store.sync_cursor(brand, CURSOR_SOURCE).await?;
                let page = match self
                    .iys
                    .pull_changes(brand, after.as_deref(), self.page_limit)
                    .await
                {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(CallError::Store(e)) => return Err(e.into()),
                    Err(CallError::Iys(e)) => {
                        tracing::warn!(brand, error = %chain(&e), "İYS pull failed; retrying next round");
                        report.failed_brands += 1;
                        break;
                    }
                };
                report.pages += 1;
                let now = self.iys.now();
                for m in &page.list {
                    let Some(intent) = movement_intent(brand, m, now) else {
                        report.skipped += 1;
                        continue;
                    };
                    if self.ledger.record(intent).await?.duplicate {
                        report.duplicates += 1;
                    } else {
                        report.recorded += 1;
                    }
                }
                // Only after the page is committed: a crash re-reads it, and dedupe absorbs that.
                if !page.after.is_empty() {
                    store
                        .set_sync_cursor(brand, CURSOR_SOURCE, &page.after, self.iys.now())
                        .await?;
                }
                if page.list.len() < self.page_limit as usize || page.after.is_empty() {
                    break;
                }
            }
        }
        Ok(report)
    }

    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(r) if r.recorded > 0 => {
                        tracing::info!(?r, "İYS pull recorded citizen changes")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %chain(&e), "İYS pull round failed"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.interval) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConsentType, RecipientType, Status};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-05T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn movement(source: &str) -> Movement {
        Movement {
            consent_date: Some("2026-03-04 10:00:00".into()),
            creation_date: "2026-03-04 10:00:05".into(),
            source: source.into(),
            recipient: "+905321234567".into(),
            recipient_type: RecipientType::Bireysel,
            status: Status::Ret,
            consent_type: ConsentType::Mesaj,
            transaction_id: "abc123".into(),
            citizen_name: None,
        }
    }

    #[test]
    fn citizen_movements_become_iys_intents() {
        let i = movement_intent(7, &movement("IYS_KISAMESAJ"), now()).unwrap();
        assert_eq!(i.source, Source::IysKisamesaj);
        assert_eq!(
            (i.provider.as_str(), i.provider_message_id.as_str()),
            ("iys", "abc123")
        );
        assert_eq!(i.channel, Channel::Iys);
        assert_eq!(i.brand_code, 7);
        assert_eq!(
            crate::domain::time::to_iys(i.consent_at),
            "2026-03-04 10:00:00"
        );
        assert_eq!(i.evidence.raw["source"], "IYS_KISAMESAJ");
    }

    #[test]
    fn own_and_unusable_movements_are_skipped() {
        assert!(
            movement_intent(7, &movement("HS_MESAJ"), now()).is_none(),
            "never our own"
        );
        let mut m = movement("IYS_WEB");
        m.transaction_id = " ".into();
        assert!(movement_intent(7, &m, now()).is_none());
        let mut m = movement("IYS_WEB");
        m.recipient = "ali@example.com".into();
        assert!(
            movement_intent(7, &m, now()).is_none(),
            "MESAJ needs a phone"
        );
    }

    #[test]
    fn future_consent_dates_are_capped_at_now_plus_skew_and_kept_as_evidence() {
        let mut m = movement("IYS_WEB");
        m.consent_date = Some("2099-01-01 00:00:00".into());
        let i = movement_intent(7, &m, now()).unwrap();
        assert_eq!(i.consent_at, latest_plausible(now()));
        assert_eq!(i.evidence.raw["consentDate"], "2099-01-01 00:00:00");
        // Within the skew the date stands as sent.
        m.consent_date = Some(to_iys(now() + chrono::Duration::minutes(4)));
        let i = movement_intent(7, &m, now()).unwrap();
        assert_eq!(i.consent_at, now() + chrono::Duration::minutes(4));
    }

    #[test]
    fn transaction_ids_that_are_no_dedupe_key_are_skipped() {
        for bad in ["", "tx\0", "tx 1", &"a".repeat(200)] {
            let mut m = movement("IYS_WEB");
            m.transaction_id = bad.to_string();
            assert!(movement_intent(7, &m, now()).is_none(), "{bad:?}");
        }
        let mut r = record(Some("IYS_WEB"), Some("tx\0"));
        let hashed = iys_record_intent(7, &r).unwrap().provider_message_id;
        assert!(hashed.starts_with("status:"), "{hashed}");
        r.transaction_id = Some(" tx9 ".into());
        assert_eq!(iys_record_intent(7, &r).unwrap().provider_message_id, "tx9");
    }

    fn record(source: Option<&str>, transaction_id: Option<&str>) -> StatusResponse {
        StatusResponse {
            consent_date: Some("2026-03-04 10:00:00".into()),
            creation_date: Some("2026-03-01 09:00:00".into()),
            source: source.map(Into::into),
            recipient: "+905321234567".into(),
            recipient_type: RecipientType::Bireysel,
            status: Status::Ret,
            consent_type: ConsentType::Mesaj,
            retailer_code: None,
            retailer_title: None,
            retailer_access_count: None,
            transaction_id: transaction_id.map(Into::into),
        }
    }

    #[test]
    fn iys_records_become_iys_channel_intents() {
        let i = iys_record_intent(7, &record(Some("IYS_MOBIL"), Some("tx1"))).unwrap();
        assert_eq!((i.source, i.channel), (Source::IysMobil, Channel::Iys));
        assert_eq!(
            (i.provider.as_str(), i.provider_message_id.as_str()),
            ("iys", "tx1"),
            "the same key as pull and push"
        );
        let hs = iys_record_intent(7, &record(Some("HS_WEB"), Some("tx2"))).unwrap();
        assert_eq!(
            (hs.source, hs.channel),
            (Source::HsWeb, Channel::Iys),
            "an HS record found at İYS stays İYS's: channel Iys, never reported"
        );
        assert!(iys_record_intent(7, &record(None, Some("tx3"))).is_none());
        assert!(iys_record_intent(7, &record(Some("HS_YOK"), Some("tx3"))).is_none());
    }

    #[test]
    fn iys_records_without_transaction_id_get_a_stable_key() {
        let a = iys_record_intent(7, &record(Some("IYS_WEB"), None)).unwrap();
        let b = iys_record_intent(7, &record(Some("IYS_WEB"), Some(" "))).unwrap();
        assert!(a.provider_message_id.starts_with("status:"));
        assert_eq!(a.provider_message_id, b.provider_message_id);
        let mut r = record(Some("IYS_WEB"), None);
        r.status = Status::Onay;
        assert_ne!(
            iys_record_intent(7, &r).unwrap().provider_message_id,
            a.provider_message_id
        );
        r.consent_date = None;
        let c = iys_record_intent(7, &r).unwrap();
        assert_eq!(
            crate::domain::time::to_iys(c.consent_at),
            "2026-03-01 09:00:00",
            "the creation date stands in"
        );
    }

    #[test]
    fn unknown_iys_sources_and_missing_dates_are_kept() {
        let mut m = movement("IYS_YENI_BIR_KANAL");
        m.consent_date = None;
        let i = movement_intent(7, &m, now()).unwrap();
        assert_eq!(i.source, Source::IysWeb);
        assert_eq!(i.evidence.raw["source"], "IYS_YENI_BIR_KANAL");
        assert_eq!(
            crate::domain::time::to_iys(i.consent_at),
            "2026-03-04 10:00:05"
        );
    }
}
